"""Named clipping semantics of PyTorch, TensorFlow and optax, reproduced in NumPy (SPEC §5).

Each function returns new arrays (the PyTorch ones modify ``.grad`` in place) in a
:class:`~bpttcheck.reference.clipping.ClipResult`; gradients are lists/tuples with None
entries, a single array, or a dict. The differences, at a glance:

=========================  ==========================  =====================  =====================
                           PyTorch clip_grad_norm_     TF clip_by_global_norm optax clip_by_global_norm
=========================  ==========================  =====================  =====================
coefficient                min(M / (n + 1e-6), 1)      M · min(1/n, 1/M)      1 if n < M else M/n
applied                    always multiplied           always multiplied      only if n >= M
at n == M                  scaled by M/(M+1e-6)        untouched              multiplied by M/M
NaN in a gradient          every entry NaN             every entry NaN        every entry NaN
inf in a gradient          finite -> 0, inf -> NaN     every entry NaN        finite -> 0, inf -> NaN
norm types                 any p, inf (0, -inf too)    2 only                 2 only
returns                    pre-clip total              (list, pre-clip norm)  the clipped updates
=========================  ==========================  =====================  =====================

``exact_torch=True`` reproduces what PyTorch does with arguments it does not validate
(max_norm <= 0 flips or zeroes the gradients, NaN max_norm, norm types 0 and -inf, an empty
list); the default mode rejects them with :class:`InvalidArgument`.
"""

from __future__ import annotations

import numbers

import numpy as np

from .validation import InvalidArgument, fail
from .clipping import (
    ClipResult,
    grad_items,
    scaled_by,
    total_of_norms,
    check_max_norm,
    check_norm_type,
    clip_coefficient,
    raise_nonfinite,
    tensor_norm,
)

__all__ = [
    "SEMANTICS",
    "optax_clip_by_global_norm",
    "tf_clip_by_global_norm",
    "torch_clip_grad_norm",
    "torch_clip_grad_value",
    "torch_clip_grads_with_norm",
    "torch_get_total_norm",
]


def _torch_float(name, value, exact_torch):
    if exact_torch:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            fail(name, value, "a real number (torch calls float() on it)")
        return float(value)
    return check_max_norm(name, value)


def _check_foreach(foreach):
    if foreach is not None and not isinstance(foreach, bool):
        fail("foreach", foreach, "None, True or False (it changes speed, never results)")


def torch_get_total_norm(tensors, norm_type=2.0, error_if_nonfinite: bool = False,
                         foreach=None, *, exact_torch: bool = False) -> np.floating:
    """``torch.nn.utils.get_total_norm``: the p-norm of the per-tensor p-norms.

    Returns a NumPy scalar in the promoted dtype of the tensors (float32 0.0 for an empty
    list, PyTorch's default dtype); raises NonFiniteNorm when asked to and it is NaN/inf.
    """
    _check_foreach(foreach)
    p = check_norm_type(norm_type, exact_torch)
    _, values, _ = grad_items(tensors, "tensors", allow_empty=exact_torch)
    norms = [tensor_norm(v, p) for v in values if v is not None]
    total = total_of_norms(norms, p) if norms else np.float32(0.0)
    if error_if_nonfinite and not np.isfinite(total):
        raise_nonfinite(total, p)
    return total


def torch_clip_grads_with_norm(grads, max_norm, total_norm, foreach=None, *,
                               exact_torch: bool = False) -> ClipResult:
    """``torch.nn.utils.clip_grads_with_norm_`` given a precomputed total norm.

    Every gradient is multiplied by ``min(reciprocal(total_norm + 1e-6) * max_norm, 1)``
    computed in total_norm's dtype, then cast to the gradient's dtype: bitwise PyTorch's.
    """
    _check_foreach(foreach)
    max_norm = _torch_float("max_norm", max_norm, exact_torch)
    total = np.asarray(total_norm)
    if total.ndim != 0 or total.dtype.kind != "f":
        fail("total_norm", total_norm, "a real floating-point scalar (what get_total_norm returns)")
    _, values, rebuild = grad_items(grads, allow_empty=exact_torch)
    if not any(v is not None for v in values):
        return ClipResult(rebuild(values), total[()], None)
    coef = clip_coefficient(total, max_norm)
    return ClipResult(rebuild(scaled_by(values, coef)), total[()], coef)


def torch_clip_grad_norm(grads, max_norm, norm_type=2.0, error_if_nonfinite: bool = False,
                         foreach=None, *, exact_torch: bool = False) -> ClipResult:
    """``torch.nn.utils.clip_grad_norm_``: get_total_norm, then clip_grads_with_norm_.

    ``total_norm`` of the result is what PyTorch returns (the pre-clip norm).
    """
    max_norm = _torch_float("max_norm", max_norm, exact_torch)
    total = torch_get_total_norm(grads, norm_type, error_if_nonfinite, foreach, exact_torch=exact_torch)
    return torch_clip_grads_with_norm(grads, max_norm, total, foreach, exact_torch=exact_torch)


def torch_clip_grad_value(grads, clip_value, foreach=None, *, exact_torch: bool = False) -> ClipResult:
    """``torch.nn.utils.clip_grad_value_``: clamp_min(-v) then clamp_max(v), in each dtype.

    NaN stays NaN, ±inf becomes ±v. With exact_torch, a negative v sets every entry to v
    (the two clamps in PyTorch's order), and NaN v makes everything NaN.
    """
    _check_foreach(foreach)
    v = _torch_float("clip_value", clip_value, exact_torch)
    _, values, rebuild = grad_items(grads, allow_empty=exact_torch)
    with np.errstate(invalid="ignore"):
        out = [None if g is None else np.asarray(np.minimum(np.maximum(g, g.dtype.type(-v)), g.dtype.type(v)))
               for g in values]
    return ClipResult(rebuild(out), None, None)


def _sum_squares(g):
    """sum(g*g) rounded to g's dtype (inf beyond its range)."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        s = np.sum(g * g, dtype=np.float64)
        return g.dtype.type(np.inf if s > np.finfo(g.dtype).max else s)


def tf_clip_by_global_norm(t_list, clip_norm, use_norm=None) -> ClipResult:
    """``tf.clip_by_global_norm``: ``t · M · min(1/n, 1/M)``, NaN everywhere if n is not finite.

    n = sqrt(2 · Σ l2_loss(t)), l2_loss(t) = Σ t²/2; every tensor must share one dtype
    (TensorFlow cannot stack mixed dtypes); None entries pass through. ``total_norm`` is
    the global norm TensorFlow returns; ``coefficient`` the scale.
    """
    M = check_max_norm("clip_norm", clip_norm)
    _, values, rebuild = grad_items(t_list, "t_list")
    present = [v for v in values if v is not None]
    dtypes = sorted({v.dtype.name for v in present})
    if len(dtypes) > 1:
        raise InvalidArgument(f"t_list has dtypes {dtypes}: TensorFlow's clip_by_global_norm needs one "
                              "dtype for every tensor (it stacks their norms); cast them first")
    dt = present[0].dtype.type
    if use_norm is None:
        with np.errstate(over="ignore"):
            half = [dt(_sum_squares(v) / dt(2)) for v in present]
            n = dt(np.sqrt(dt(np.sum(np.asarray(half, dtype=dt), dtype=np.float64)) * dt(2)))
    else:
        n = np.asarray(use_norm, dtype=dt)[()]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        scale = dt(M) * np.minimum(dt(1) / n, dt(1) / dt(M)) if np.isfinite(n) else dt(np.nan)
    return ClipResult(rebuild(scaled_by(values, scale)), n, dt(scale))


def optax_clip_by_global_norm(updates, max_norm) -> ClipResult:
    """optax ``clip_by_global_norm(max_norm)``: unchanged if n < M, else ``t / n * M``.

    n = sqrt(Σ_leaves Σ t²) with each leaf's sum in its dtype (promoted when mixed).
    ``coefficient`` is None: optax divides then multiplies, it never forms one factor.
    """
    M = check_max_norm("max_norm", max_norm)
    _, values, rebuild = grad_items(updates, "updates")
    sums = [_sum_squares(v) for v in values if v is not None]
    dt = np.result_type(*sums).type
    with np.errstate(over="ignore", invalid="ignore"):
        n = dt(np.sqrt(dt(np.sum(np.asarray(sums, dtype=dt), dtype=np.float64))))
        keep = bool(n < M)
        out = [None if v is None else (v if keep else np.asarray((v / v.dtype.type(n)) * v.dtype.type(M)))
               for v in values]
    return ClipResult(rebuild(out), n, None)


#: Named global-norm clipping rules: name -> function(grads, max_norm) -> ClipResult.
SEMANTICS = {
    "torch": torch_clip_grad_norm,
    "tensorflow": tf_clip_by_global_norm,
    "optax": optax_clip_by_global_norm,
}
