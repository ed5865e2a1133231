"""Properties of gradient clipping (SPEC §5), usable on any clipping function.

A clipping function under test takes ``(grads, max_norm, norm_type)`` — grads a list of
NumPy arrays (None allowed) — and returns ``(clipped_grads, total_norm)`` with PyTorch's
meaning (the pre-clip norm). :func:`reference_clip` and :func:`torch_clip` are two such
functions. Every check raises :class:`~bpttcheck.properties.compare.Mismatch` naming the
quantity that broke, with a reproducer.

Rounding. For float32, ``‖clip(g)‖`` exceeds ``max_norm`` by the relative error of the
total norm the function computed, plus a few roundings (SPEC §5). That error grows with
the number of elements n: see :func:`norm_tolerance` for the bound used and the figures
measured for PyTorch on this machine.
"""

from __future__ import annotations

import math

import numpy as np

from bpttcheck.reference.validation import InvalidArgument, describe, fail
from bpttcheck.reference.clip_frameworks import (
    torch_clip_grad_norm,
    torch_clip_grad_value,
    torch_clip_grads_with_norm,
    torch_get_total_norm,
)
from bpttcheck.reference.clipping import EPS, check_max_norm, check_norm_type, clip_by_global_norm

from .clipping_extra import (  # split for size; re-exported here
    TORCH_FUNCTIONS,
    LossClipsGradients,
    check_loss_gradient,
    check_torch_agreement,
    diagnose_clipped_gradient,
    gradient_lists,
    torch_functions,
)
from .clipping_extra import clip_call_snippet, gradients_of, torch_parameters
from .compare import Mismatch, assert_close
from .tolerance import (
    coefficient_tolerance,
    evaluation_slack,
    exact,
    idempotence_tolerance,
    norm_tolerance,
    scaled_copy_tolerance,
    unit_roundoff_of,
    with_subnormal_floor,
)

__all__ = [
    "LossClipsGradients",
    "TORCH_FUNCTIONS",
    "accurate_norm",
    "check_bound",
    "check_clipping",
    "check_descent_step",
    "check_direction",
    "check_lipschitz_step",
    "check_loss_gradient",
    "check_near_idempotent",
    "check_nonfinite",
    "check_returned_norm",
    "check_threshold",
    "check_torch_agreement",
    "diagnose_clipped_gradient",
    "gradient_lists",
    "norm_tolerance",
    "reference_clip",
    "torch_clip",
    "torch_functions",
]

BITWISE = exact("bitwise: the same operations in the same order")


# --------------------------------------------------------------------------- tolerance


def _unit_roundoff(arrays) -> float:
    return unit_roundoff_of(arrays)


def accurate_norm(grads, norm_type: float = 2.0) -> float:
    """The total p-norm in float64 with exact power-of-two scaling (no overflow, no underflow).

    Used as the truth for ``‖clip(g)‖`` and for the returned norm; its own error (≈ log₂n
    float64 roundings) is far below any float32 tolerance and within the float64 one.
    """
    a = np.concatenate([np.abs(np.asarray(g, dtype=np.float64)).ravel() for g in grads if g is not None])
    if a.size == 0:
        return 0.0
    p = float(norm_type)
    big = a.max()
    if p == np.inf or not np.isfinite(big) or big == 0:
        return float(big)
    scale = 2.0 ** np.frexp(big)[1]
    return float(scale * np.sum((a / scale) ** p) ** (1.0 / p))


# --------------------------------------------------------------------------- functions under test


def reference_clip(grads, max_norm, norm_type=2.0):
    """The reference (PyTorch semantics) as a clipping function under test."""
    res = clip_by_global_norm(list(grads), max_norm, norm_type)
    return res.grads, res.total_norm


def torch_clip(grads, max_norm, norm_type=2.0):
    """``torch.nn.utils.clip_grad_norm_`` (foreach) as a clipping function under test."""
    import torch

    params = torch_parameters(grads)
    total = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type, foreach=True)
    return gradients_of(params), total.numpy()[()]


def _call(clip_fn, grads, max_norm, norm_type):
    returned = clip_fn([None if g is None else g.copy() for g in grads], max_norm, norm_type)
    if not isinstance(returned, (tuple, list)) or len(returned) != 2:
        raise InvalidArgument(f"clip_fn returned {describe(returned)}: expected a pair (clipped grads, total norm)")
    out, total = returned
    out = list(out)
    if len(out) != len(grads):
        raise Mismatch(f"GradientMismatch: clip returned {len(out)} gradients for {len(grads)}", None)
    return out, total


def _present(grads):
    return [(i, g) for i, g in enumerate(grads) if g is not None]


def _ctx(context, grads, max_norm, norm_type):
    base = f"max_norm={max_norm:g}, norm_type={float(norm_type):g}, {len(grads)} tensors"
    return f"{context}; {base}" if context else base


# --------------------------------------------------------------------------- properties


def _finite(grads):
    return all(np.isfinite(g).all() for _, g in _present(grads))


def check_bound(clip_fn, grads, max_norm, norm_type=2.0, *, context=""):
    """‖clip(g)‖_p ≤ max_norm within :func:`norm_tolerance` (finite gradients)."""
    M, p = check_max_norm("max_norm", max_norm), check_norm_type(norm_type)
    out, _ = _call(clip_fn, grads, M, p)
    got = accurate_norm(out, p)
    assert_close("clipped norm ‖clip(g)‖ (at most max_norm)", max(got, M) if got == got else got, M,
                 norm_tolerance(grads, p), context=_ctx(context, grads, M, p),
                 reproducer=clip_call_snippet(grads, M, p))


def _coefficient(grads, out):
    """c with clip(g) = c·g, read off the entry of largest |g| (None if g = 0)."""
    best = None
    for (i, g), o in zip(_present(grads), [o for o in out if o is not None]):
        if g.size and np.abs(g).max() > 0 and (best is None or np.abs(g).max() > best[0]):
            k = np.unravel_index(np.argmax(np.abs(g)), g.shape)
            best = (np.abs(g).max(), float(o[k]) / float(g[k]))
    return None if best is None or best[0] == 0 else best[1]


def check_direction(clip_fn, grads, max_norm, norm_type=2.0, *, context=""):
    """clip(g) = c·g for one c ∈ (0, 1]: the direction is kept and nothing grows."""
    M, p = check_max_norm("max_norm", max_norm), check_norm_type(norm_type)
    out, _ = _call(clip_fn, grads, M, p)
    ctx, rep = _ctx(context, grads, M, p), clip_call_snippet(grads, M, p)
    c = _coefficient(grads, out)
    if c is None:
        return
    u = _unit_roundoff([g for _, g in _present(grads)])
    if not (0 < c <= 1 + 2 * u):
        bound = 1.0 if c > 1 else np.finfo(float).tiny
        assert_close("coefficient c of clip(g) = c·g (0 < c <= 1)", c, bound,
                     coefficient_tolerance(u),
                     context=ctx, reproducer=rep)
    for (i, g), o in zip(_present(grads), [o for o in out if o is not None]):
        assert_close(f"grads[{i}] (clip(g) = c·g, c = {c:.9g})", o, c * g.astype(np.float64),
                     scaled_copy_tolerance(g.dtype, u),
                     context=ctx, reproducer=rep)


def check_returned_norm(clip_fn, grads, max_norm, norm_type=2.0, *, context=""):
    """The returned total is the pre-clip p-norm of all gradients, within :func:`norm_tolerance`."""
    M, p = check_max_norm("max_norm", max_norm), check_norm_type(norm_type)
    _, total = _call(clip_fn, grads, M, p)
    assert_close("total_norm returned (the pre-clip norm)", float(np.asarray(total)), accurate_norm(grads, p),
                 norm_tolerance(grads, p), context=_ctx(context, grads, M, p), reproducer=clip_call_snippet(grads, M, p))


def check_threshold(clip_fn, grads, norm_type=2.0, *, eps: float = EPS, context=""):
    """Untouched exactly when total + eps ≤ max_norm, scaled by M/(total+eps) otherwise.

    The gradients are first scaled by a power of two (exact) so that the total is near
    2⁻¹², where eps/total ≈ 4e-3 is far above rounding: then max_norm = total must scale
    by M/(M+eps) (PyTorch; TensorFlow and optax leave it untouched, so they fail with
    eps=1e-6 and pass with eps=0), max_norm = total + eps/2 must scale, and max_norm a
    little above total + eps must leave every gradient bitwise untouched.
    """
    p = check_norm_type(norm_type)
    T = accurate_norm(grads, p)
    if not (np.isfinite(T) and T > 0):
        fail("grads", grads, "finite gradients that are not all zero (the threshold needs a total)")
    k = -12 - int(np.frexp(T)[1])
    grads = [None if g is None else np.asarray(np.ldexp(g, k), dtype=g.dtype) for g in grads]
    T = accurate_norm(grads, p)
    tol = norm_tolerance(grads, p)
    ctx = _ctx(context, grads, T, p) + f", eps={eps:g}"
    for M, what in ((T, "max_norm = total"), (T + eps / 2, "max_norm = total + eps/2")):
        out, _ = _call(clip_fn, grads, M, p)
        c = M / (T + eps)
        for (i, g), o in zip(_present(grads), [o for o in out if o is not None]):
            assert_close(f"grads[{i}] scaled by max_norm/(total+eps) at {what}", o, c * g.astype(np.float64),
                         with_subnormal_floor(tol, g.dtype), context=ctx, reproducer=clip_call_snippet(grads, M, p))
    M = (T * (1 + tol.rtol) + tol.atol + eps) * (1 + 8 * _unit_roundoff([g for _, g in _present(grads)]))
    out, _ = _call(clip_fn, grads, M, p)
    for (i, g), o in zip(_present(grads), [o for o in out if o is not None]):
        assert_close(f"grads[{i}] untouched when total + eps <= max_norm", o, g, BITWISE,
                     context=ctx, reproducer=clip_call_snippet(grads, M, p))


def check_near_idempotent(clip_fn, grads, max_norm, norm_type=2.0, *, eps: float = EPS, context=""):
    """Clipping twice changes the once-clipped gradients by at most eps/M + rounding (relative).

    The first clip leaves a norm N1 ≤ M(1+r); the second multiplies by at least
    M/(N1+eps), a relative change ≤ r + eps/M. PyTorch is not idempotent: ≈1e-6/M.
    """
    M, p = check_max_norm("max_norm", max_norm), check_norm_type(norm_type)
    once, _ = _call(clip_fn, grads, M, p)
    twice, _ = _call(clip_fn, once, M, p)
    tol = norm_tolerance(grads, p)
    for (i, a), b in zip(_present(once), [t for t in twice if t is not None]):
        assert_close(f"grads[{i}] clipped twice (near-idempotence)", b, a,
                     idempotence_tolerance(tol, eps, M, a.dtype),
                     context=_ctx(context, grads, M, p), reproducer=clip_call_snippet(grads, M, p))


def check_nonfinite(clip_fn, grads, max_norm, norm_type=2.0, *, context=""):
    """PyTorch's non-finite semantics: NaN anywhere → all NaN; inf → finite 0, inf NaN."""
    M, p = check_max_norm("max_norm", max_norm), check_norm_type(norm_type)
    out, _ = _call(clip_fn, grads, M, p)
    want = torch_clip_grad_norm(list(grads), M, p).grads
    for (i, o), e in zip(enumerate(out), want):
        if e is None:
            continue
        assert_close(f"grads[{i}] with non-finite gradients (NaN everywhere if any NaN; "
                     "0 and NaN if an inf)", o, e, BITWISE,
                     context=_ctx(context, grads, M, p), reproducer=clip_call_snippet(grads, M, p))


def check_clipping(clip_fn, grads, max_norm, norm_type=2.0, *, context=""):
    """Every property above that applies to ``grads`` (finite or not)."""
    if not callable(clip_fn):
        fail("clip_fn", clip_fn, "a callable clip_fn(grads, max_norm, norm_type) -> (clipped grads, total norm)")
    if not isinstance(grads, (list, tuple)) or not all(g is None or isinstance(g, (np.ndarray, np.generic)) for g in grads):
        fail("grads", grads, "a list of NumPy arrays or scalars (None entries allowed)")
    check_max_norm("max_norm", max_norm)
    check_norm_type(norm_type, exact_torch=True)
    if not _finite(grads):
        return check_nonfinite(clip_fn, grads, max_norm, norm_type, context=context)
    check_returned_norm(clip_fn, grads, max_norm, norm_type, context=context)
    if accurate_norm(grads, norm_type) == 0:
        return None
    check_bound(clip_fn, grads, max_norm, norm_type, context=context)
    check_direction(clip_fn, grads, max_norm, norm_type, context=context)
    check_near_idempotent(clip_fn, grads, max_norm, norm_type, context=context)
    check_threshold(clip_fn, grads, norm_type, context=context)
    return None


# --------------------------------------------------------------------------- optimisation bounds


def _step(x, clipped, eta):
    return [xi - eta * ci for xi, ci in zip(x, clipped)]


def check_lipschitz_step(f, L: float, x, grads, eta: float, max_norm, clip_fn=reference_clip, *, context=""):
    """For an L-Lipschitz f (2-norm): |f(x) − f(x − η·clip(g))| ≤ L·η·max_norm (seeds, SPEC §5).

    ``x`` and ``grads``: lists of arrays of the same shapes; ``f(list) -> float``.
    Allowed slack: the bound's norm tolerance and 64u·(|f(x)| + |f(x')|) for evaluating f.
    """
    M = check_max_norm("max_norm", max_norm)
    out, _ = _call(clip_fn, grads, M, 2.0)
    f0, f1 = float(f(x)), float(f(_step(x, out, eta)))
    u = _unit_roundoff([g for _, g in _present(grads)])
    bound = L * eta * M * (1 + norm_tolerance(grads).rtol) + evaluation_slack(u, f0, f1)
    change = abs(f0 - f1)
    if not change <= bound:
        assert_close("objective change |f(x) - f(x - eta·clip(g))| (at most L·eta·max_norm)", change, bound,
                     exact(f"L={L:g}, eta={eta:g}, max_norm={M:g}"),
                     context=_ctx(context, grads, M, 2.0), reproducer=clip_call_snippet(grads, M, 2.0))


def check_descent_step(f, grad_f, L_smooth: float, x, eta: float, max_norm, clip_fn=reference_clip, *, context=""):
    """Descent lemma: for an L-smooth f and η ≤ 2/L, a clipped step cannot increase f.

    With g = ∇f(x) and s = η·clip(g) = η·c·g, c ∈ (0, 1]:
    f(x − s) ≤ f(x) − η·c·‖g‖²·(1 − L·η·c/2) ≤ f(x). Checked in the sharp form, with
    64u·|f| slack for evaluating f. A clip that amplifies (c > 1) can overshoot.
    """
    M = check_max_norm("max_norm", max_norm)
    if not 0 < eta <= 2.0 / L_smooth:
        fail("eta", eta, f"a step size in (0, 2/L] = (0, {2.0 / L_smooth:g}]")
    g = [np.asarray(a) for a in grad_f(x)]
    out, _ = _call(clip_fn, g, M, 2.0)
    c = _coefficient(g, out)
    if c is None:
        return
    f0, f1 = float(f(x)), float(f(_step(x, out, eta)))
    gg = accurate_norm(g) ** 2
    u = _unit_roundoff(g)
    cc = min(c, 1.0)
    allowed = f0 - eta * cc * gg * (1 - L_smooth * eta * cc / 2) + evaluation_slack(u, f0, f1, eta * gg)
    if not f1 <= allowed:
        assert_close("objective after a clipped step f(x - eta·clip(g)) (descent lemma)", f1, allowed,
                     exact(f"L_smooth={L_smooth:g}, eta={eta:g}, c={c:.6g}; must not exceed"),
                     context=_ctx(context, g, M, 2.0), reproducer=clip_call_snippet(g, M, 2.0))
