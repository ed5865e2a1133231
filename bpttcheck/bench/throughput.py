"""Throughput of the oracle on a module target, against ``torch.autograd.gradcheck`` on the
same configurations, and the time to a verdict.

The cases are the ones the oracle really draws: one check of ``torch.nn:LSTM`` (by default
``module/lstm/gradients[cpu,float64]``) is run under the ``ci`` profile with a fixed seed,
main draw and coverage phases, and every case its body receives is recorded with the phase
that drew it. "ours" is that whole check again (Hypothesis, the torch target, the reference,
the judge); "peer" is ``gradcheck`` on each recorded case: the same layer and weights, every
gradient the oracle compares (parameters, input, h0, c0), float64, default settings.

``python -m bpttcheck.bench.throughput`` prints the per-phase breakdown (cases, oracle time,
gradcheck time) and the wall time of ``bpttcheck verify --target torch.nn:LSTM --device cpu
--profile ci`` in a fresh process.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time

from bpttcheck.properties.case_space import Phase
from bpttcheck.properties.oracle import target_checks
from bpttcheck.properties.runner import run_check
from bpttcheck.properties.torch_adapter import build_module

from .core import Benchmark

__all__ = ["benchmarks", "gradcheck_case", "record", "verify_seconds"]

#: the target, the check and the profile the throughput is measured on
TARGET = "torch.nn:LSTM"
CHECK = "module/lstm/gradients[cpu,float64]"
PROFILE = "ci"
SEED = 0
#: goal: oracle cases per second at least this many times gradcheck's
SPEEDUP_GOAL = 20
#: goal for the time to verdict: within 2x of the 2.7 s measured before the case space widened
VERIFY_GOAL_S = 5.4


def _check(check_id: str = CHECK):
    for c in target_checks(TARGET, device="cpu", dtypes=("float64", "float32")):
        if c.check_id == check_id:
            return c
    raise LookupError(f"{TARGET} has no check {check_id!r}")


def record(check_id: str = CHECK, profile: str = PROFILE, seed: int = SEED):
    """Run one check as the oracle does and return ``(result, [(phase, case, seconds)])``:
    every case its body received, the phase that drew it and the body's time."""
    check = _check(check_id)
    seen, current = [], ["main"]

    def tag(label):
        def mark(case):
            current[0] = label
            return case
        return mark

    def body(case):
        start = time.perf_counter()
        try:
            return check.body(case)
        finally:
            seen.append((current[0], case, time.perf_counter() - start))

    def coverage(p):
        return [Phase(ph.label, ph.strategy.map(tag(ph.label)), ph.max_examples) for ph in check.coverage(p)]

    tagged = dataclasses.replace(check, strategy=check.strategy.map(tag("main")), body=body, coverage=coverage)
    result = run_check(tagged, profile, seed)
    return result, seen


def gradcheck_case(case):
    """A zero-argument call running ``torch.autograd.gradcheck`` on the case's layer: a
    function of (input, h0, c0, every parameter) returning (output, h_n, c_n), float64."""
    import torch

    cfg = case.config
    module = build_module(None, cfg, batch_first=case.batch_first, dtype="float64")
    names = [n for n, _ in module.named_parameters()]
    weights = [torch.tensor(case.params[n], dtype=torch.float64, requires_grad=True) for n in names]
    x = torch.tensor(case.x, dtype=torch.float64, requires_grad=True)
    LD, B = cfg.num_layers * cfg.num_directions, case.B
    h0 = torch.zeros(LD, B, cfg.output_size, dtype=torch.float64) if case.h0 is None else torch.tensor(case.h0)
    c0 = torch.zeros(LD, B, cfg.hidden_size, dtype=torch.float64) if case.c0 is None else torch.tensor(case.c0)
    h0.requires_grad_(case.h0 is not None)
    c0.requires_grad_(case.c0 is not None)

    def fn(x, h0, c0, *ws):
        out, (h_n, c_n) = torch.func.functional_call(module, dict(zip(names, ws)), (x, (h0, c0)))
        return out, h_n, c_n

    inputs = (x, h0, c0, *weights)
    return lambda: torch.autograd.gradcheck(fn, inputs)


def _without_long(check):
    """The check with its long-sequence phase left out (gradcheck there costs a minute)."""
    return dataclasses.replace(check, coverage=lambda p: [ph for ph in check.coverage(p)
                                                          if not ph.label.startswith("long")])


def _make(check_id, long: bool):
    def make():
        check = _check(check_id)
        if not long:
            check = _without_long(check)
        _, seen = record(check_id)
        calls = [gradcheck_case(case) for label, case, _ in seen if long or not label.startswith("long")]

        def ours():
            run_check(check, PROFILE, SEED)

        def peer():
            for call in calls:
                call()

        return ours, peer

    return make


#: the thread variables the bench pins (bpttcheck.bench.runner.THREAD_VARS)
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                "NUMEXPR_NUM_THREADS")


def verify_seconds(profile: str = PROFILE, extra=(), pinned: bool = True) -> float:
    """Wall seconds of ``bpttcheck verify --target torch.nn:LSTM --device cpu --profile …`` in
    a fresh process (torch's import included, as a user waits for it). ``pinned=False`` drops
    the thread pinning the bench's child runs under: torch then uses its default threads."""
    cmd = [sys.executable, "-m", "bpttcheck", "verify", "--target", TARGET, "--device", "cpu", "--profile",
           profile, "-q", *extra]
    env = dict(os.environ)
    if not pinned:
        for var in _THREAD_VARS:
            env.pop(var, None)
    start = time.perf_counter()
    subprocess.run(cmd, capture_output=True, text=True, env=env)
    return time.perf_counter() - start


def _make_verify(extra=(), pinned=True):
    def make():
        return (lambda: verify_seconds(extra=extra, pinned=pinned)), None

    return make


def benchmarks() -> list[Benchmark]:
    out = []
    for long, rounds in ((False, None), (True, 1)):
        what = "main + every coverage phase" if long else "main + coverage phases but the long one"
        out.append(Benchmark(
            name=f"throughput: oracle {CHECK} at {PROFILE}, {what}",
            make=_make(CHECK, long),
            peer_name="torch.autograd.gradcheck on the same cases",
            goal=1 / SPEEDUP_GOAL,
            needs=("torch",),
            group="throughput",
            rounds=rounds,
            warmup=long is False,
            notes="ratio = 1 / speed-up in cases per second (the same cases on both sides)",
        ))
    for extra, pinned, how, rounds in (((), True, "one thread", 3), (("--in-process",), True, "one thread", 3),
                                       ((), False, "torch's default threads", 2)):
        out.append(Benchmark(
            name=f"time to verdict: bpttcheck verify --target {TARGET} --device cpu --profile {PROFILE}"
                 + "".join(" " + e for e in extra) + f" ({how})",
            make=_make_verify(extra, pinned),
            goal=VERIFY_GOAL_S,
            goal_kind="seconds",
            group="throughput",
            needs=("torch",),
            rounds=rounds,
            warmup=False,
        ))
    return out


def _breakdown(check_id: str, with_gradcheck: bool = True) -> None:
    result, seen = record(check_id)
    phases: dict = {}
    for label, case, sec in seen:
        p = phases.setdefault(label, [0, 0.0, 0.0, []])
        p[0] += 1
        p[1] += sec
        p[3].append(case)
    print(f"{check_id}: {result.status}, {result.cases} cases, {result.seconds:.2f} s in run_check")
    print(f"{'phase':45s} {'cases':>5s} {'oracle':>9s} {'gradcheck':>10s}  sizes")
    for label, (n, sec, _, cs) in phases.items():
        g = float("nan")
        if with_gradcheck:
            start = time.perf_counter()
            for case in cs:
                gradcheck_case(case)()
            g = time.perf_counter() - start
        sizes = sorted({(c.config.num_layers, c.T) for c in cs})
        print(f"{label[:45]:45s} {n:5d} {sec:8.3f}s {g:9.3f}s  (L,T) {sizes[:6]}{'…' if len(sizes) > 6 else ''}")


if __name__ == "__main__":
    args = sys.argv[1:]
    ids = [a for a in args if not a.startswith("-")] or [CHECK]
    for cid in ids:
        _breakdown(cid, "--no-gradcheck" not in args)
    if "--verify" in args:
        print(f"verify wall: {verify_seconds():.2f} s")
