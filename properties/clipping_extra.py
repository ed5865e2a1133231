"""Clipping checks that need more than the clip function: PyTorch agreement and clipping hidden
inside a loss (the clipping benchmark is :mod:`bpttcheck.bench.clipping`). Re-exported by
:mod:`bpttcheck.properties.clipping`.
"""

from __future__ import annotations

import numpy as np

from bpttcheck.reference.clip_frameworks import (
    torch_clip_grad_norm,
    torch_clip_grad_value,
    torch_clip_grads_with_norm,
    torch_get_total_norm,
)
from bpttcheck.reference.validation import InvalidArgument, check_bool, check_int, describe, fail
from bpttcheck.reference.clipping import NonFiniteNorm

from .compare import Mismatch, assert_close, compare
from .tolerance import (
    Tolerance,
    clipped_gradient_tolerance,
    exact,
    finite_difference_tolerance,
    implementation_tolerance,
    norm_tolerance,
)

__all__ = [
    "LossClipsGradients",
    "TORCH_FUNCTIONS",
    "check_loss_gradient",
    "check_torch_agreement",
    "diagnose_clipped_gradient",
    "gradient_lists",
    "torch_functions",
]

#: The torch.nn.utils functions compared, where the installed torch has them.
TORCH_FUNCTIONS = ("clip_grad_norm_", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_")

_BITWISE = exact("bitwise: the same operations in the same order")


def torch_functions() -> dict:
    """name -> function for each of :data:`TORCH_FUNCTIONS` that the installed torch has."""
    import torch.nn.utils as nn_utils

    return {n: getattr(nn_utils, n) for n in TORCH_FUNCTIONS if hasattr(nn_utils, n)}


def torch_parameters(grads):
    """torch Parameters whose .grad are copies of ``grads`` (None: a Parameter without .grad)."""
    import torch

    params = []
    for g in grads:
        if g is None:
            p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
        else:
            p = torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.from_numpy(g[:0] if g.ndim else g.reshape(1)[:0]).dtype))
            p.grad = torch.from_numpy(np.array(g, copy=True))
        params.append(p)
    return params


def gradients_of(params):
    """The .grad of each Parameter as a NumPy copy (None where it has none)."""
    return [None if p.grad is None else p.grad.detach().numpy().copy() for p in params]


def clip_call_snippet(grads, max_norm, norm_type, call="clip_fn"):
    """The call of a clipping function on ``grads`` as a line of Python (small arrays spelled out)."""
    shown = ", ".join("None" if g is None else f"np.array({np.asarray(g).tolist()!r}, dtype=np.{g.dtype})"
                      if g.size <= 12 else f"<{g.dtype} array shape {g.shape}>" for g in grads)
    return f"{call}([{shown}], max_norm={max_norm!r}, norm_type={norm_type!r})"


def _as_list(grads):
    return [grads] if isinstance(grads, np.ndarray) else list(grads)


def _params(grads):
    """torch Parameters whose .grad are copies of ``grads`` (a single one stays single)."""
    params = torch_parameters(_as_list(grads))
    return params[0] if isinstance(grads, np.ndarray) else params


def _grads(params):
    return gradients_of([params] if not isinstance(params, list) else params)


def _same(quantity, got, want, tol, ctx, rep):
    for i, (a, e) in enumerate(zip(got, want)):
        if e is None or a is None:
            if (a is None) != (e is None):
                raise Mismatch(f"GradientMismatch: {quantity}[{i}] is {a!r} where {e!r} was expected ({ctx})", None)
            continue
        if a.dtype != e.dtype:
            raise Mismatch(f"GradientMismatch: {quantity}[{i}] has dtype {a.dtype} where {e.dtype} was expected ({ctx})", None)
        assert_close(f"{quantity}[{i}]", a, e, tol, context=ctx, reproducer=rep)


def check_torch_agreement(grads, max_norm, norm_type=2.0, *, error_if_nonfinite: bool = False, context=""):
    """The reference against the installed torch's clipping functions (SPEC §5).

    Bitwise where the operations are the same: clip_grads_with_norm_ (ours given torch's
    total), clip_grad_norm_'s grads against ours given the total it returned, clip_grad_value_,
    and torch's own clip_grad_norm_ = get_total_norm + clip_grads_with_norm_. The totals
    (whose summation order differs) within :func:`norm_tolerance`. ``grads``: a list (None
    allowed, dtypes may mix) or a single array, as torch accepts a single tensor.
    """
    import torch

    fns = torch_functions()
    flat = _as_list(grads)
    present = [g for g in flat if g is not None]
    p = float(norm_type)
    ctx = f"{context + '; ' if context else ''}max_norm={max_norm!r}, norm_type={p:g}, torch {torch.__version__}"
    rep = clip_call_snippet(flat, max_norm, p, "check_torch_agreement")
    tol = norm_tolerance(flat, p)

    def ours_total():
        return torch_get_total_norm(grads, p, error_if_nonfinite, exact_torch=True)

    t_total = None
    if "get_total_norm" in fns:
        try:
            t_total = fns["get_total_norm"]([torch.from_numpy(g.copy()) for g in present], p, error_if_nonfinite).numpy()[()]
        except RuntimeError:
            try:
                ours_total()
            except (NonFiniteNorm, InvalidArgument):  # non-finite, or an inf-norm of an empty tensor
                return
            raise Mismatch(f"GradientMismatch: get_total_norm raised but the reference did not ({ctx})", None)
        o_total = ours_total()
        if np.asarray(o_total).dtype != np.asarray(t_total).dtype:
            raise Mismatch(f"GradientMismatch: total_norm dtype {np.asarray(o_total).dtype} where torch gives "
                           f"{np.asarray(t_total).dtype} ({ctx})", None)
        assert_close("total_norm (get_total_norm)", o_total, t_total, tol, context=ctx, reproducer=rep)
    params = _params(grads)
    returned = fns["clip_grad_norm_"](params, max_norm, p, error_if_nonfinite, foreach=True).numpy()[()]
    t_grads = _grads(params)
    if t_total is not None:
        assert_close("total_norm returned by clip_grad_norm_ vs get_total_norm", returned, t_total,
                     _BITWISE, context=ctx, reproducer=rep)
    given = torch_clip_grads_with_norm(flat, max_norm, returned, exact_torch=True).grads
    _same("clipped grads given torch's total", given, t_grads, _BITWISE, ctx, rep)
    if "clip_grads_with_norm_" in fns and t_total is not None:
        params2 = _params(grads)
        fns["clip_grads_with_norm_"](params2, max_norm, torch.tensor(t_total))
        _same("clip_grads_with_norm_(get_total_norm) vs clip_grad_norm_", _grads(params2), t_grads, _BITWISE, ctx, rep)
    full = torch_clip_grad_norm(flat, max_norm, p, exact_torch=True).grads
    _same("clipped grads (reference total vs torch total)", full, t_grads,
          clipped_gradient_tolerance(tol, present), ctx, rep)
    if np.isfinite(max_norm) and max_norm > 0:
        params3 = _params(grads)
        fns["clip_grad_value_"](params3, max_norm, foreach=True)
        _same("clip_grad_value_ grads", torch_clip_grad_value(flat, max_norm).grads, _grads(params3), _BITWISE, ctx, rep)


# --------------------------------------------------------------------------- generated gradients


def gradient_lists(*, nonfinite: bool = False, max_tensors: int = 5, max_side: int = 6):
    """Hypothesis strategy: lists of float32/float64 arrays of mixed shapes with None entries.

    Entries span zeros to 1e3 in magnitude; with ``nonfinite`` one entry of one tensor is
    set to NaN, inf or -inf. At least one gradient is not None.
    """
    check_bool("nonfinite", nonfinite)
    check_int("max_tensors", max_tensors, minimum=1)
    check_int("max_side", max_side, minimum=1)
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    def tensor(dtype):
        width = 32 if dtype == np.float32 else 64
        scale = st.sampled_from([0.0, 1e-3, 1.0, 1e3])
        values = hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=max_side),
                            elements=st.floats(-1, 1, width=width))
        return st.builds(lambda a, s: np.asarray(a * dtype(s), dtype=dtype), values, scale)

    one = st.one_of(st.none(), tensor(np.float32), tensor(np.float64))
    lists = st.lists(one, min_size=1, max_size=max_tensors).filter(lambda gs: any(g is not None for g in gs))
    if not nonfinite:
        return lists

    @st.composite
    def poisoned(draw):
        gs = [None if g is None else g.copy() for g in draw(lists)]
        i = draw(st.sampled_from([k for k, g in enumerate(gs) if g is not None]))
        flat = gs[i].reshape(-1)
        flat[draw(st.integers(0, flat.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        return gs

    return poisoned()


# --------------------------------------------------------------------------- clipping inside a loss


class LossClipsGradients(AssertionError):
    """The gradient a loss returns is clipped, so finite differences of the loss cannot match it."""


def diagnose_clipped_gradient(analytic, numeric, tolerance: Tolerance) -> str | None:
    """Why ``analytic`` differs from ``numeric``, if the difference is clipping; else None.

    Norm clipping: analytic = c·numeric with one c < 1 in every coordinate. Value clipping:
    every mismatching coordinate equals ±v (v = max |analytic|) with the sign of its finite
    difference, which exceeds v, while every matching coordinate has |numeric| ≤ v.
    """
    a = np.concatenate([np.ravel(x) for x in analytic]).astype(np.float64)
    f = np.concatenate([np.ravel(x) for x in numeric]).astype(np.float64)
    ff = float(f @ f)
    if ff == 0:
        return None
    allowed = tolerance.allowed(f)
    c = float(a @ f) / ff
    if c < 1 - 1e-6 and np.all(np.abs(a - c * f) <= allowed + 1e-9 * np.abs(f)):
        return (f"the analytic gradient is {c:.6g} × the finite-difference one in every coordinate: "
                f"its norm was clipped to {np.sqrt(a @ a):.6g} from {np.sqrt(ff):.6g}")
    bad = ~(np.abs(a - f) <= allowed)
    v = float(np.max(np.abs(a)))
    if bad.any() and v > 0:
        clamped = np.abs(np.abs(a[bad]) - v) <= 1e-12 * v
        same_sign = np.sign(a[bad]) == np.sign(f[bad])
        beyond = np.abs(f[bad]) > v
        inside = np.abs(f[~bad]) <= v + allowed[~bad]
        if clamped.all() and same_sign.all() and beyond.all() and inside.all():
            return (f"{int(bad.sum())} coordinate(s) equal ±{v:.6g} where finite differences reach "
                    f"{np.max(np.abs(f)):.6g}: the gradient's values were clamped to [-{v:.6g}, {v:.6g}]")
    return None


def _central(loss, params, name, idx, h):
    def at(delta):
        q = {k: v.copy() for k, v in params.items()}
        q[name][idx] += delta
        return float(loss(q))

    return (at(h) - at(-h)) / (2 * h)


def check_loss_gradient(loss_and_grad, params: dict, *, context=""):
    """Compare a loss's own gradient with central differences of the loss (float64).

    ``loss_and_grad(params) -> (loss, grads)``, both keyed by parameter name. A mismatch
    explained by clipping raises :class:`LossClipsGradients` ("the loss clips gradients
    inside: finite differences of this loss cannot match …") instead of a bare Mismatch.
    Steps h = ε^(1/3)·max(1, |θ|); each difference's error is estimated from D(2h) − D(h).
    """
    if not callable(loss_and_grad):
        fail("loss_and_grad", loss_and_grad, "a callable loss_and_grad(params) -> (loss, grads)")
    if not isinstance(params, dict) or not all(isinstance(v, np.ndarray) for v in params.values()):
        fail("params", params, "a dict of parameter name -> NumPy array")
    returned = loss_and_grad(params)
    if not isinstance(returned, tuple) or len(returned) != 2 or not isinstance(returned[1], dict):
        raise InvalidArgument(f"loss_and_grad(params) returned {describe(returned)}: expected a pair "
                              "(loss, grads) with grads a dict keyed by parameter name")
    missing = [n for n in params if n not in returned[1]]
    if missing:
        raise InvalidArgument(f"loss_and_grad(params) returned grads with keys {sorted(returned[1])}: "
                              f"expected every parameter name (missing {missing})")
    _, grads = returned
    loss = lambda q: loss_and_grad(q)[0]  # noqa: E731
    analytic, numeric, estimates = [], [], []
    for name, value in params.items():
        d, est = np.zeros(value.shape), np.zeros(value.shape)
        for idx in np.ndindex(value.shape):
            h = np.finfo(np.float64).eps ** (1 / 3) * max(1.0, abs(float(value[idx])))
            d1, d2 = _central(loss, params, name, idx, h), _central(loss, params, name, idx, 2 * h)
            d[idx], est[idx] = d1, abs(d2 - d1) / 3 + 1e-15 * abs(d1)
        analytic.append(np.asarray(grads[name], dtype=np.float64))
        numeric.append(d)
        estimates.append(est)
    tol = finite_difference_tolerance(np.concatenate([e.ravel() for e in estimates]),
                                      implementation_tolerance("float64"))
    results = [(n, compare(f"{n} (loss gradient vs finite differences)", a, f, tol))
               for n, a, f in zip(params, analytic, numeric)]
    if all(r.ok for _, r in results):
        return
    why = diagnose_clipped_gradient(analytic, numeric, tol)
    if why is not None:
        raise LossClipsGradients(
            f"the loss clips gradients inside: finite differences of this loss cannot match ({why}). "
            f"Check the gradient before clipping and clip outside the loss{' (' + context + ')' if context else ''}")
    n, r = next((n, r) for n, r in results if not r.ok)
    raise Mismatch(r.message(context), r)
