"""Checks of ``tbptt`` targets: ``fn(module, x, hx, cotangent, k, scheme) -> dict[str, Tensor]``.

The module is a float64 ``torch.nn.RNN``/``LSTM``/``GRU`` (seq-first, unidirectional, 1-2
layers) holding the case's weights; ``x`` (T, B, D), ``hx`` = h0 (L, B, H) or (h0, c0),
``cotangent`` (T, B, H); ``scheme`` is ``"k"`` (sliding window of k steps, f(t)=max(0,t-k+1)),
``"subsequence"`` (detach every k steps) or ``"williams-peng"`` (k = (h, h′)). The result must
hold the gradient of ``L = Σ output·cotangent`` under the SPEC §3 window rule for every
parameter name, "input", "h0" (and "c0"), and equal the O(T²) pair-sum. Before the call every
parameter's ``.grad`` is poisoned with NaN (the result must not depend on it) and the inputs
and weights are compared afterwards (the target must not change them). On a mismatch the
report says whether a neighbouring convention (k±1, the other scheme) would have passed.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np

from bpttcheck.reference.cells import TORCH_CELLS, cell_spec
from bpttcheck.reference.truncation import SlidingWindow, Subsequence, WilliamsPeng

from ..compare import Mismatch, compare
from ..judge import compare_truncated, truncated_gradients
from ..reproduce import JUDGE_LINES
from ..runner import PropertyCheck
from ..strategies import cases, configs
from ..tolerance import implementation_tolerance
from ..torch_adapter import protocol_inputs
from .common import Guarded, TargetFailure, call_target, check_id, devices_for, require_same_inputs, snapshot

__all__ = ["Protocol", "SCHEMES", "as_scheme", "neighbours", "tbptt_checks", "with_initial_states"]

SCHEMES = ("k", "subsequence", "williams-peng")


def as_scheme(name: str, k):
    """The reference scheme for the protocol's ``(scheme, k)``."""
    if name == "k":
        return SlidingWindow(int(k))
    if name == "subsequence":
        return Subsequence(int(k))
    return WilliamsPeng(int(k[0]), int(k[1]))


def neighbours(name: str, k) -> list[tuple[str, object]]:
    """The conventions most often confused with ``(scheme, k)``: k off by one, the other scheme."""
    out = []
    if name == "williams-peng":
        h, hp = k
        for h2, hp2, why in ((h + 1, hp, "h+1"), (h - 1, hp, "h-1"), (hp, h, "h and h' swapped")):
            if h2 >= hp2 >= 1:
                out.append((f"williams-peng k=({h2}, {hp2}) ({why})", WilliamsPeng(h2, hp2)))
        out.append((f"subsequence k={hp}", Subsequence(hp)))
        return out
    if name == "k":
        out.append((f"sliding window k={k + 1}, i.e. the seeds' convention f(t)=max(0, t-k) counting Jacobian "
                    f"factors instead of steps", SlidingWindow(k + 1)))
        if k > 1:
            out.append((f"sliding window k={k - 1} (one step short)", SlidingWindow(k - 1)))
        out.append((f"subsequence k={k} (the other scheme)", Subsequence(k)))
        return out
    out.append((f"subsequence k={k + 1}", Subsequence(k + 1)))
    if k > 1:
        out.append((f"subsequence k={k - 1}", Subsequence(k - 1)))
    out.append((f"sliding window k={k} (the other scheme)", SlidingWindow(k)))
    return out


def with_initial_states(case):
    """The case with h0 (and c0) present (zeros where it had none): the protocol always passes hx."""
    cfg = case.config
    L = cfg.num_layers * cfg.num_directions
    h0 = case.h0 if case.h0 is not None else np.zeros((L, case.B, cfg.output_size))
    c0 = case.c0 if case.c0 is not None or not cell_spec(cfg.cell).has_cell_state else np.zeros((L, case.B, cfg.hidden_size))
    return replace(case, h0=h0, c0=c0)


def _first_mismatch(got: dict, expected: dict, T: int, tolerances: dict | None = None):
    for key, e in expected.items():
        tol = (tolerances or {}).get(key) or implementation_tolerance(
            "float64", T=T, scale=float(np.max(np.abs(e))) if e.size else 1.0)
        if key not in got:
            return key, None
        c = compare(key, got[key], e, tol)
        if not c.ok:
            return key, c
    return None, None


def _expected(case, scheme):
    return truncated_gradients(case, scheme)


def explain(got: dict, case, name: str, k) -> str:
    """Which neighbouring convention the result matches exactly, or that none does."""
    for text, scheme in neighbours(name, k):
        if _first_mismatch(got, _expected(case, scheme), case.T)[0] is None:
            return f"convention: the result matches {text} exactly"
    if name == "subsequence" and _last_chunk_only(got, case, k):
        return ("trainer: the parameter gradients are only the last chunk's — the loop zeroes .grad before each "
                "chunk (zero_grad(); backward(); step()) and .grad was read at the end; record each chunk's "
                "gradient in step() (examples/tbptt_trainers.py: RecordingOptimizer)")
    return "convention: no neighbouring convention (k±1, the other scheme) matches either"


def _last_chunk_only(got: dict, case, k) -> bool:
    """Do the parameter gradients equal the last chunk's alone (losses before it dropped)?"""
    start = k * ((case.T - 1) // k)
    if start == 0:
        return False
    last = replace(case, d_output=case.d_output * (np.arange(case.T) >= start)[:, None, None])
    want = _expected(last, Subsequence(k))
    return _first_mismatch(got, {n: e for n, e in want.items() if n not in ("input", "h0", "c0")}, case.T)[0] is None


class Protocol:
    """The torch side of the tbptt/randomized protocols for one case: the float64 module with
    the case's weights and the input tensors (the torch adapter's
    :func:`~bpttcheck.properties.torch_adapter.protocol_inputs`), built once and called many
    times."""

    def __init__(self, case, device):
        import torch


        self.torch = torch
        self.module, self.x, self.hx, self.cot = protocol_inputs(case, device)
        self.h0, self.c0 = self.hx if isinstance(self.hx, tuple) else (self.hx, None)
        self.weights = [p.detach().clone() for p in self.module.parameters()]
        self.before = snapshot(self.x, self.h0, self.c0, self.cot)

    def call(self, fn, args: tuple, *, what, context, reproducer) -> dict:
        """Poison .grad, call ``fn(module, x, hx, cotangent, *args)``, check nothing was changed
        and return the result as float64 NumPy arrays (validated: a dict of tensors)."""
        torch = self.torch
        for p in self.module.parameters():
            p.grad = torch.full_like(p, float("nan"))  # poison: a correct target never reads it
        got = call_target(what, fn, self.module, self.x, self.hx, self.cot, *args, context=context,
                          reproducer=reproducer)
        require_same_inputs(("x", "h0", "c0", "cotangent"), self.before, (self.x, self.h0, self.c0, self.cot),
                            context, reproducer)
        if any(not torch.equal(w, p.detach()) for w, p in zip(self.weights, self.module.parameters())):
            raise TargetFailure(f"InputMutated: the target changed the module's weights; it must leave them as "
                                f"they were ({context})")
        if not isinstance(got, dict):
            raise TargetFailure(f"WrongType: returned {type(got).__name__}; expected a dict of parameter name / "
                                f"'input' / 'h0'{' / c0' if self.c0 is not None else ''} -> Tensor ({context})")
        out = {}
        for key, v in got.items():
            if not hasattr(v, "detach"):
                raise TargetFailure(f"WrongType: result[{key!r}] is {type(v).__name__}; expected a Tensor ({context})")
            out[key] = v.detach().double().cpu().numpy()
        return out


def run_protocol(fn, case, args: tuple, *, device, what, context, reproducer) -> dict:
    """One call of a tbptt/randomized target on ``case`` (see :class:`Protocol`)."""
    return Protocol(case, device).call(fn, args, what=what, context=context, reproducer=reproducer)


def _snippet(spec, case, name, k, scheme, device):
    return case.reproducer(f"""from bpttcheck.properties.oracle import load_target
from bpttcheck.properties.judge import compare_truncated
from bpttcheck.properties.torch_adapter import protocol_inputs
from bpttcheck.reference.truncation import {type(scheme).__name__}
fn = load_target({spec!r})
module, xt, hx, cotangent = protocol_inputs(case, device={device!r})
got = fn(module, xt, hx, cotangent, {k!r}, {name!r})
got = {{n: v.detach().cpu().double().numpy() for n, v in got.items()}}
comparisons = compare_truncated(case, got, {scheme!r}, raise_on_mismatch=False)
""" + JUDGE_LINES)


def _body(fn, spec, device, name, drawn):
    case, k = drawn
    case = with_initial_states(case)
    scheme = as_scheme(name, k)
    ctx = f"{spec} on {device}, scheme={name!r}, k={k!r} ({scheme.describe()}); {case.describe()}"
    rep = lambda: _snippet(spec, case, name, k, scheme, device)  # noqa: E731
    got = run_protocol(fn, case, (k, name), device=device, what=f"{spec}(module, x, hx, cotangent, {k!r}, {name!r})",
                       context=ctx, reproducer=rep)
    # judged by compare_truncated: in the oracle's own process when the target runs in a worker
    comparisons = compare_truncated(case, got, scheme, raise_on_mismatch=False)
    comp = next((c for c in comparisons if not c.ok), None)
    if comp is None:
        return comparisons
    if comp.quantity not in got:
        raise TargetFailure(f"GradientMismatch: {comp.quantity} missing from the target's result (keys {sorted(got)}) "
                            f"({ctx})")
    lines = ["oracle: the O(T²) pair-sum over windows f(t)..t (SPEC §1, §3)"]
    if any(np.isnan(got[n]).any() for n in got if n not in ("input", "h0", "c0")):
        lines.append("the result holds NaN where the pair-sum is finite: it depends on .grad, which was poisoned "
                     "with NaN before the call (use torch.autograd.grad, or zero .grad first)")
    lines.append(explain(got, case, name, k))
    text = comp.message(ctx) + "".join("\n  " + s for s in lines)
    text += "\n  reproduce:\n" + "\n".join("    " + s for s in rep().rstrip().splitlines())
    raise Mismatch(text, comp)


def _strategy(cell, name):
    from hypothesis import strategies as st


    conf = configs(cells=(cell,), activations=("tanh", "relu"), bidirectional=False, proj=False)

    @st.composite
    def drawn(draw):
        case = draw(cases(conf, lengths=False, batch_first=False))
        T = case.T
        if name == "williams-peng":
            hp = draw(st.integers(1, T))
            return case, (draw(st.integers(hp, T + 1)), hp)
        return case, draw(st.integers(1, T + 1))

    return drawn()


def tbptt_checks(target, options) -> list[PropertyCheck]:
    spec, fn, device = target.spec, target.obj, options.device
    out = []
    for dev, skip in devices_for(device):
        for name in SCHEMES:
            for cell in TORCH_CELLS:
                out.append(PropertyCheck(
                    name=f"{spec} (tbptt) scheme={name!r} {cell} on {dev}",
                    strategy=_strategy(cell, name),
                    body=Guarded(partial(_body, fn, spec, dev, name)),
                    skip=skip,
                    id=check_id("tbptt", name, cell, dev, "float64"),
                ))
    return out
