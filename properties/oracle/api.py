"""The Python API: which checks a target gets, and running them into a :class:`Report`.

A target is a spec string (``"pkg.mod:MyLSTM"``) or the object itself (a class, a function, a
step object or its factory); its kind is detected or given, and its checks come from the kind
registry (:mod:`.kinds`). The keyword options are those of the option table
(:mod:`bpttcheck.options`), validated the same way as on the command line.
"""

from __future__ import annotations

import time
import warnings

from bpttcheck.options import OPTIONS, OptionError, id_matches, read_id_file, validate
from bpttcheck.profiles import default_profile

from ..results import CheckResult, Report, Status, environment
from ..runner import PropertyCheck, run_check
from ..torch_checks import cuda_available
from .common import DTYPE_VARIANTS, check_device, dtype_variant
from .kinds import CheckOptions, checks_for, resolve, spec_of
from .sandbox import DEFAULT_TIMEOUT, WorkerPool, can_isolate, default_memory, stub
from .sandbox_worker import Guard, guarded_result
from .targets import TargetError

#: The exit status of a run the user interrupted (Ctrl-C), as shells report SIGINT.
EXIT_INTERRUPTED = 130

__all__ = ["BUILTIN_TARGETS", "EXIT_INTERRUPTED", "NotIsolatedWarning", "RunInterrupted", "builtin_checks", "default_dtypes", "run_one", "target_checks", "verify_target"]

#: What ``bpttcheck verify`` checks with no target: PyTorch's own built-ins (and the detach
#: loop and hook-scaled estimator of :mod:`.builtins`, written with torch as users write them).
BUILTIN_TARGETS = (
    ("torch.nn:RNN", "module"), ("torch.nn:LSTM", "module"), ("torch.nn:GRU", "module"),
    ("torch.nn:RNNCell", "cell"), ("torch.nn:LSTMCell", "cell"), ("torch.nn:GRUCell", "cell"),
    ("torch.nn.utils:clip_grad_norm_", "clip"), ("torch.nn.utils:clip_grad_value_", "clip"),
    ("bpttcheck.properties.oracle.builtins:detach_loop_tbptt", "tbptt"),
    ("bpttcheck.properties.oracle.builtins:hook_randomized", "randomized"),
)


def default_dtypes(device: str) -> tuple:
    """float64 and float32, and every CUDA precision where CUDA may run."""
    return tuple(DTYPE_VARIANTS) if device in ("cuda", "all") else ("float64", "float32")


def target_checks(spec, kind: str | None = None, *, device: str = "cpu",
                  dtypes: tuple = ("float64", "float32")) -> list[PropertyCheck]:
    """The checks of a target (a spec "pkg.mod:attr" or the object) as :class:`PropertyCheck` objects.

    ``kind``: one of :data:`~.kinds.KINDS` (``"module:lstm"`` names the cell), or None to detect it.
    Every check has a stable id such as ``"module/lstm/gradients[cpu,float64]"``.
    """
    check_device(device)  # before the target is imported
    if isinstance(dtypes, str) or not isinstance(dtypes, (tuple, list)):
        raise TargetError(f"dtypes={dtypes!r} (type={type(dtypes).__name__}): expected a tuple of precision "
                          "names, e.g. ('float64', 'float32')")
    for name in dtypes:
        dtype_variant(name)  # an unknown precision is a TargetError naming it
    return checks_for(resolve(spec, kind), CheckOptions(device=device, dtypes=tuple(dtypes)))


def builtin_checks(device: str = "all") -> list[PropertyCheck]:
    """The checks of :data:`BUILTIN_TARGETS` (PyTorch's own implementations)."""
    checks = []
    for spec, kind in BUILTIN_TARGETS:
        checks += target_checks(spec, kind, device=device, dtypes=default_dtypes(device))
    return checks


def run_one(check: PropertyCheck, profile: str = "dev", seed: int | None = None, progress=None,
            *, xfail: bool = False) -> CheckResult:
    """:func:`~bpttcheck.properties.runner.run_check` (kept for callers of the first API)."""
    return run_check(check, profile, seed, progress, xfail=xfail)


def _options(**given) -> dict:
    """The API keywords checked by the option table (None: not given)."""
    return {name: validate(name, value) for name, value in given.items()}


def verify_target(spec=None, kind=None, *, device="all", profile=None, seed=None, skip_ids=(), xfail_ids=(),
                  progress=None, dtypes=None, select=None, timeout=None, skip=None, xfail=None,
                  report=None, memory=None, in_process=None) -> Report:
    """Verify one target (or, with ``spec=None``, PyTorch's built-ins) and return a :class:`Report`.

    ``spec``: a spec string, the target object itself, or a list of them. ``skip_ids`` /
    ``xfail_ids``: check ids (shell patterns, ``target::id``); ``skip``/``xfail``: files of
    them. ``progress(text, end)``: called as checks run. Each target runs in a worker process of
    its own (:mod:`.sandbox`; docs/isolation.md): ``timeout`` is the seconds allowed per case
    (default :data:`~.sandbox.DEFAULT_TIMEOUT`), ``memory`` the worker's memory cap in bytes or a
    size such as ``"8G"`` (default: half of the machine's memory; none on CUDA), and
    ``in_process=True`` runs the targets here instead (for pdb; no limits). A Ctrl-C raises
    :class:`RunInterrupted` carrying the report of the checks that finished.
    ``report``: also write the JSON report there.
    """
    started = time.time()
    opts = _options(device=device, profile=profile, seed=seed, dtype=dtypes, select=select, timeout=timeout,
                    skip=skip, xfail=xfail, report=report, kind=kind, memory=memory, in_process=in_process)
    device = opts["device"] or OPTIONS["device"].default
    profile = opts["profile"] or default_profile()
    dtypes = tuple(opts["dtype"]) if opts["dtype"] else None
    for name, ids in (("skip_ids", skip_ids), ("xfail_ids", xfail_ids)):
        if isinstance(ids, str) or not isinstance(ids, (list, tuple, set)) or not all(isinstance(i, str) for i in ids):
            raise OptionError(f"{name}={ids!r} (type={type(ids).__name__}): expected a list of check ids "
                              "(shell patterns such as 'module/gru/*')")
    if progress is not None and not callable(progress):
        raise OptionError(f"progress={progress!r} (type={type(progress).__name__}): expected None or a "
                          "callable progress(text, end)")
    skip_ids = list(skip_ids) + (read_id_file(opts["skip"]) if opts["skip"] else [])
    xfail_ids = list(xfail_ids) + (read_id_file(opts["xfail"]) if opts["xfail"] else [])
    _check_spec(spec)
    targets = [spec] if isinstance(spec, str) or (spec is not None and not isinstance(spec, (list, tuple))) \
        else list(spec or [])
    pairs = [(t, kind) for t in targets] if targets else list(BUILTIN_TARGETS)
    isolated = not opts["in_process"]
    timeout = opts["timeout"] or DEFAULT_TIMEOUT
    memory = opts["memory"] if opts["memory"] is not None else (0 if device in ("cuda", "all") and cuda_available()
                                                                else default_memory())
    pool = WorkerPool() if isolated else None
    checks, origin, dropped, workers = [], [], [], []
    try:
        for t, k in pairs:
            wanted = dtypes or default_dtypes(device)
            if isolated and not can_isolate(t):
                warnings.warn(_not_isolated(t), NotIsolatedWarning, stacklevel=2)
            if isolated and can_isolate(t):
                found = [stub(d) for d in pool.get(t, k, device=device, dtypes=wanted, memory=memory,
                                                   timeout=timeout).checks]
                key = pool.key(t, k, device, wanted, memory)
            else:
                found, key = target_checks(t, k, device=device, dtypes=wanted), None
            if dtypes:  # kinds that always run in their own precision are kept only when it was asked for
                found = [c for c in found if set(_precisions(c.check_id)) & set(dtypes)]
            checks += found
            origin += [(t, k)] * len(found)
            workers += [(t, k, wanted, key)] * len(found)
            if not found:
                dropped.append(t)
                if key is not None:
                    pool.release(key)
        total = len(checks)
        if opts["select"]:
            keep = [i for i, c in enumerate(checks) if opts["select"] in c.check_id or opts["select"] in c.name]
            checks, origin, workers = [checks[i] for i in keep], [origin[i] for i in keep], [workers[i] for i in keep]
        results: list = [None] * len(checks)
        todo = []
        for i, check in enumerate(checks):
            pattern = id_matches(check.target, check.check_id, skip_ids)
            if pattern is not None:
                results[i] = CheckResult(check.name, Status.SKIP, id=check.check_id, target=check.target,
                                         kind=check.kind, message=f"listed in the skip file ({pattern})")
            elif check.skip:
                results[i] = run_check(check, profile, opts["seed"])
            else:
                todo.append(i)
        xfails = {i: id_matches(checks[i].target, checks[i].check_id, xfail_ids) is not None for i in todo}
        try:
            _run(checks, xfails, results, todo, workers, pool, profile=profile, seed=opts["seed"], timeout=timeout,
                 device=device, memory=memory, progress=progress)
        except KeyboardInterrupt:
            finished = [r for r in results if r is not None]
            out = _report(finished, pairs, profile, opts, kind, device, dtypes, total)
            if opts["report"]:
                out.write_json(opts["report"], run={"seconds": round(time.time() - started, 3), "interrupted": True,
                                                    "exitstatus": EXIT_INTERRUPTED})
            raise RunInterrupted(out) from None
    finally:
        if pool is not None:
            pool.close()
    for r, (t, _, _, key) in zip(results, workers):
        r.nodeid = r.nodeid or f"bpttcheck[{r.target}]::{r.id}"
        if isolated and key is None and r.status != Status.SKIP:
            r.details = dict(r.details, isolation=_not_isolated(t))
    out = _report(results, pairs, profile, opts, kind, device, dtypes, total)
    if opts["report"]:
        out.write_json(opts["report"], run={"seconds": round(time.time() - started, 3)})
    return out


def _report(results, pairs, profile, opts, kind, device, dtypes, total) -> Report:
    return Report(results, environment(device), [spec_of(t) for t, _ in pairs],
                  profile, opts["seed"], kind=kind, device=device, dtypes=None if dtypes is None else list(dtypes),
                  select=opts["select"], skip_file=opts["skip"], xfail_file=opts["xfail"],
                  reason=_reason(results, total, opts["select"], dtypes, device))


class NotIsolatedWarning(UserWarning):
    """A target given as an object that cannot be sent to a worker process ran in the oracle's."""


def _not_isolated(target) -> str:
    where = "in the __main__ script" if getattr(target, "__module__", None) == "__main__" else \
        "inside a function, or holding something that cannot be pickled"
    return (f"bpttcheck: the target {spec_of(target)} was defined {where}, so it cannot be sent to a worker "
            "process: its checks ran in this process, without the time and memory limits and with the oracle's "
            "judge beside it (define it at the top level of an importable module, or pass 'module:Name', to "
            "isolate it)")


class RunInterrupted(KeyboardInterrupt):
    """The user pressed Ctrl-C: ``.report`` holds the checks that finished (the command line prints
    it and exits with status 130; the JSON report, when asked for, was written)."""

    def __init__(self, report):
        super().__init__("interrupted")
        self.report = report


def _run(checks, xfails, results, todo, workers, pool, *, profile, seed, timeout, device, memory, progress):
    """Run the checks ``todo`` (indices), each in its target's worker or, with no worker (in-process,
    or a target that cannot be sent to one), here, with the global state guarded; a target's
    worker is closed after its last check."""
    last = {workers[i][3]: i for i in todo}
    for n, i in enumerate(todo, 1):
        check, xfail = checks[i], xfails[i]
        target, kind, wanted, key = workers[i]
        label = f"[{n}/{len(todo)}] {check.check_id}"
        tick = None
        if progress is not None:
            progress(f"{label} ...", False)
            tick = lambda text, label=label: progress(f"\r{label} ... {text}", False)  # noqa: E731
        if key is None:
            guard = Guard()
            results[i] = guarded_result(run_check(check, profile, seed, tick, xfail=xfail), guard)
        else:
            worker = pool.get(target, kind, device=device, dtypes=wanted, memory=memory, timeout=timeout)
            described = next(d for d in worker.checks if d["id"] == check.check_id)
            results[i] = worker.run(described, xfail, profile=profile, seed=seed, timeout=timeout, tick=tick)
            if last[key] == i:
                pool.release(key)
        if progress is not None:
            r = results[i]
            progress(f"\r{label} ... {r.status} ({r.cases} cases, {r.seconds:.1f} s)", True)


def _check_spec(spec) -> None:
    """A target is a spec string or an object one can call or construct (a list of them):
    a number, a bool, bytes or a dict is a mistake, named with what is expected."""
    for one in (spec if isinstance(spec, (list, tuple)) else [spec]):
        if one is None and spec is not None or isinstance(one, (bool, int, float, complex, bytes, dict, set)):
            raise TargetError(f"spec={one!r} (type={type(one).__name__}): expected a target: 'module:attribute' or "
                              "the object itself (a class, a function, a step object or its factory)")


def _precisions(check_id: str) -> list[str]:
    """The precisions in a check id's brackets: ``…[cpu,float32+float64]`` -> float32, float64."""
    inside = check_id.rpartition("[")[2].rstrip("]")
    return inside.partition(",")[2].split("+")


def _reason(results, total, select, dtypes, device) -> str:
    """Why nothing could be checked, when the results alone cannot say it ("" otherwise)."""
    cuda_only = [d for d in dtypes or () if dtype_variant(d).cuda_only]
    if cuda_only and all(d in cuda_only for d in dtypes) and not cuda_available():
        return f"{', '.join(cuda_only)} {'needs' if len(cuda_only) == 1 else 'need'} CUDA; this machine has none"
    if results:
        return ""
    if select and total:
        return f"-k {select!r} matched none of {total} checks"
    if cuda_only and device == "cpu":
        return f"{', '.join(cuda_only)} {'needs' if len(cuda_only) == 1 else 'need'} CUDA; pass --device cuda"
    if dtypes:
        return f"no check of these targets runs in {', '.join(dtypes)}"
    return "no checks to run"
