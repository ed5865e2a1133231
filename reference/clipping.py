"""Gradient clipping: global-norm, per-tensor, layer-wise and value clipping, and clipping in BPTT.

Gradients are a list (or tuple) of NumPy arrays with ``None`` entries allowed where a
parameter has no gradient, a single array, or a dict ``name -> array`` (the dict that
:func:`bpttcheck.reference.network.backward` returns). Results keep the container type.

Norms follow PyTorch (SPEC §5): the total p-norm is the p-norm of the per-tensor p-norms;
each per-tensor norm is returned in its tensor's dtype, the total in the promoted dtype
(float64 when float32 and float64 are mixed). The terms ``|g|**p`` are formed in the
gradient's own dtype, so they underflow and overflow where PyTorch's do, but they are summed
in float64: the reference's float32 norms are the accurately rounded ones, not PyTorch's
(whose float32 accumulation drifts by up to thousands of ulp at 1e6 elements).

The coefficient is PyTorch's, rounded as PyTorch rounds it (in the total's dtype):
``c = min(reciprocal(total + 1e-6) * max_norm, 1)``, and every gradient is multiplied by
``c`` cast to its own dtype. Clipping is not holomorphic (norms take |·|): these functions
reject complex input.

Clipping inside BPTT is a choice given to the one backward engine: :func:`clip_after_backward`
clips the finished gradient; :func:`adjoint_clipping` returns a ``crossing`` rule that clips
the carried adjoint each time it crosses a step.
"""

from __future__ import annotations

from dataclasses import dataclass
import fnmatch
import numbers
import re

import numpy as np

from .validation import InvalidArgument, check_bool, check_choice, describe, fail

__all__ = [
    "EPS",
    "ClipResult",
    "NonFiniteNorm",
    "adjoint_clipping",
    "clip_after_backward",
    "clip_by_global_norm",
    "clip_by_value",
    "clip_coefficient",
    "clip_layerwise",
    "clip_per_tensor",
    "global_norm",
    "grad_items",
    "layer_groups",
    "scaled_by",
    "tensor_norm",
    "total_of_norms",
]

#: PyTorch's epsilon in ``max_norm / (total + eps)``.
EPS = 1e-6

#: Keys of a backward() result that are not parameters.
_NON_PARAMETER_KEYS = ("input", "h0", "c0")


class NonFiniteNorm(RuntimeError):
    """``error_if_nonfinite=True`` and the total norm is NaN or inf (PyTorch raises RuntimeError)."""


@dataclass(frozen=True)
class ClipResult:
    """What a clipping function returns.

    ``grads``: the clipped gradients, same container as the input (None entries kept);
    ``total_norm``: the pre-clip norm (a dict group -> norm for layer-wise/per-tensor
    clipping); ``coefficient``: the factor every gradient was multiplied by (dict likewise;
    None for value clipping).
    """

    grads: object
    total_norm: object
    coefficient: object


# --------------------------------------------------------------------------- validation


def grad_items(grads, name="grads", allow_empty=False):
    """(keys, arrays, rebuild): a flat view of ``grads`` and how to rebuild its container."""
    if isinstance(grads, np.ndarray):
        keys, values = [0], [grads]
        rebuild = lambda out: out[0]  # noqa: E731
    elif isinstance(grads, dict):
        keys, values = list(grads), list(grads.values())
        rebuild = lambda out: dict(zip(keys, out))  # noqa: E731
    elif isinstance(grads, (list, tuple)):
        keys, values = list(range(len(grads))), list(grads)
        kind = type(grads)
        rebuild = lambda out: kind(out)  # noqa: E731
    else:
        fail(name, grads, "a NumPy array, a list/tuple of arrays (None allowed) or a dict name -> array")
    for k, v in zip(keys, values):
        if v is None:
            continue
        if not isinstance(v, np.ndarray):
            fail(f"{name}[{k!r}]", v, "a NumPy array or None")
        if v.dtype.kind != "f":
            fail(f"{name}[{k!r}]", v, "a real floating-point array (clipping is not defined for "
                 "integer or complex gradients)")
    if not allow_empty and not any(v is not None for v in values):
        fail(name, grads, "at least one gradient that is not None")
    return keys, values, rebuild


def check_norm_type(norm_type, exact_torch: bool = False) -> float:
    """``norm_type`` as a float: p > 0 or inf (PyTorch also takes 0, negative p and -inf)."""
    if isinstance(norm_type, str) and norm_type.strip().lower() in ("inf", "+inf", "-inf"):
        norm_type = float(norm_type)
    if isinstance(norm_type, bool) or not isinstance(norm_type, numbers.Real):
        fail("norm_type", norm_type, "a real number p > 0 or 'inf'")
    p = float(norm_type)
    if np.isnan(p) or (not exact_torch and not p > 0):
        fail("norm_type", norm_type, "a real number p > 0 or inf (0, negative p and -inf only "
             "with exact_torch=True, as torch.linalg.vector_norm defines them)")
    return p


def check_max_norm(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        fail(name, value, "a finite real number > 0")
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        fail(name, value, "a finite real number > 0 (PyTorch itself accepts any float: pass "
             "exact_torch=True to reproduce what it does then)")
    return value


# --------------------------------------------------------------------------- norms


def tensor_norm(g: np.ndarray, norm_type: float = 2.0) -> np.floating:
    """p-norm of one array (any shape) as a scalar of the array's dtype.

    The terms ``|g|**p`` are formed in ``g.dtype`` and summed in float64 (pairwise); a
    sum beyond the dtype's largest value is inf, as PyTorch's accumulation gives. p = 0
    counts nonzeros and ±inf take max/min |g|, as ``torch.linalg.vector_norm`` does.
    """
    if not isinstance(g, np.ndarray) or g.dtype.kind != "f":
        fail("g", g, "a real floating-point NumPy array (norms of integer, complex or list gradients are "
             "not defined here)")
    p = check_norm_type(norm_type, exact_torch=True)
    dtype = g.dtype
    a = np.abs(g)
    if a.size == 0:
        if p < 0 or p == np.inf:  # max/min of nothing, negative powers: no identity
            raise InvalidArgument(f"norm_type={p:g}: the inf, -inf or negative-p norm of an empty "
                                  f"gradient (shape {g.shape}) is undefined (torch raises too)")
        return dtype.type(0.0)
    if p == np.inf:
        return dtype.type(a.max())
    if p == -np.inf:
        return dtype.type(a.min())
    if p == 0:
        return dtype.type(np.count_nonzero(a))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore", under="ignore"):
        terms = a if p == 1 else (a * a if p == 2 else a ** dtype.type(p))
        s = np.sum(terms, dtype=np.float64)
        if s > np.finfo(dtype).max:
            s = np.inf
        r = s if p == 1 else (np.sqrt(s) if p == 2 else s ** (1.0 / p))
    return dtype.type(r)


def total_of_norms(norms, norm_type):
    """The p-norm of the per-tensor norms, in their promoted dtype (SPEC §5)."""
    dtype = np.result_type(*norms)
    return tensor_norm(np.asarray(norms, dtype=dtype), norm_type)


def global_norm(grads, norm_type: float = 2.0) -> np.floating:
    """Total p-norm of ``grads`` (None entries skipped), as ``torch.nn.utils.get_total_norm``.

    Returns a NumPy scalar: float32 if every gradient is float32, float64 if mixed.
    """
    p = check_norm_type(norm_type)
    _, values, _ = grad_items(grads)
    return total_of_norms([tensor_norm(v, p) for v in values if v is not None], p)


def clip_coefficient(total, max_norm: float, eps: float = EPS) -> np.floating:
    """PyTorch's coefficient ``min(reciprocal(total + eps) * max_norm, 1)`` in total's dtype.

    torch evaluates ``max_norm / t`` as ``t.reciprocal() * max_norm``, which rounds
    differently from a division: this is what makes the clipped gradients bitwise equal.
    A NaN total gives NaN (clamp propagates it); an inf total gives 0.
    """
    t = np.asarray(total)
    dtype = t.dtype.type
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        c = (dtype(1.0) / (t + dtype(eps))) * dtype(max_norm)
        c = np.minimum(c, dtype(1.0))
    return dtype(c)


def raise_nonfinite(total, p):
    raise NonFiniteNorm(
        f"total_norm={total} (norm_type={p:g}): the gradients' total norm is non-finite, so "
        "they cannot be clipped (error_if_nonfinite=True); find the NaN/inf gradient first"
    )


def _mul(v, coef):
    """``v.mul_(coef)`` as torch computes it for a 0-d coefficient tensor.

    A 0-d coefficient does not take part in type promotion against an array with
    dimensions, so it is rounded to v's dtype first; against a 0-d v both promote (float32
    times float64 is computed in float64) and the product is rounded back to v's dtype.
    """
    coef = np.asarray(coef)
    work = v.dtype if v.ndim else np.result_type(v.dtype, coef.dtype)
    # asarray: NumPy turns the product of 0-d arrays into a scalar
    return np.asarray(v.astype(work, copy=False) * coef.astype(work), dtype=v.dtype)


def scaled_by(values, coef):
    """Each array of ``values`` times ``coef`` (None entries kept), overflow to inf allowed."""
    with np.errstate(invalid="ignore", over="ignore"):
        return [None if v is None else _mul(v, coef) for v in values]


# --------------------------------------------------------------------------- clipping rules


def clip_by_global_norm(grads, max_norm: float, norm_type: float = 2.0, *,
                        error_if_nonfinite: bool = False) -> ClipResult:
    """Clip ``grads`` to total p-norm ``max_norm`` with PyTorch's semantics (SPEC §5).

    Every gradient is multiplied by :func:`clip_coefficient` (always, so a total equal to
    ``max_norm`` is still scaled by M/(M+1e-6)); untouched only when total + 1e-6 <= M.
    NaN anywhere makes every gradient NaN; an inf makes finite entries 0 and inf entries
    NaN; ``error_if_nonfinite`` raises instead, before anything is computed from the norm.
    """
    max_norm = check_max_norm("max_norm", max_norm)
    p = check_norm_type(norm_type)
    error_if_nonfinite = check_bool("error_if_nonfinite", error_if_nonfinite)
    _, values, rebuild = grad_items(grads)
    total = total_of_norms([tensor_norm(v, p) for v in values if v is not None], p)
    if error_if_nonfinite and not np.isfinite(total):
        raise_nonfinite(total, p)
    coef = clip_coefficient(total, max_norm)
    return ClipResult(rebuild(scaled_by(values, coef)), total, coef)


def clip_per_tensor(grads, max_norm: float, norm_type: float = 2.0) -> ClipResult:
    """Clip each gradient to p-norm ``max_norm`` on its own (PyTorch's rule per tensor).

    ``total_norm`` and ``coefficient`` are dicts keyed like the input (index or name).
    """
    max_norm = check_max_norm("max_norm", max_norm)
    p = check_norm_type(norm_type)
    keys, values, rebuild = grad_items(grads)
    norms, coefs, out = {}, {}, []
    for k, v in zip(keys, values):
        if v is None:
            out.append(None)
            continue
        norms[k] = tensor_norm(v, p)
        coefs[k] = clip_coefficient(norms[k], max_norm)
        out.extend(scaled_by([v], coefs[k]))
    return ClipResult(rebuild(out), norms, coefs)


_LAYER = re.compile(r"_l(\d+)")


def layer_groups(names) -> dict[str, list[str]]:
    """Patterns grouping torch parameter names by layer: ``{"l0": ["*_l0", "*_l0_*"], …}``.

    Both directions of a bidirectional layer share a group.
    """
    layers = sorted({int(m.group(1)) for n in names for m in [_LAYER.search(n)] if m})
    return {f"l{k}": [f"*_l{k}", f"*_l{k}_*"] for k in layers}


def clip_layerwise(grads: dict, max_norm, groups=None, norm_type: float = 2.0) -> ClipResult:
    """Clip each group of gradients to its own total p-norm (PyTorch's rule per group).

    ``groups``: dict group -> fnmatch pattern or list of patterns (default
    :func:`layer_groups`, one group per layer); each name joins the first group it matches
    and a name matching none is an error. ``max_norm``: one float, or a dict per group.
    """
    if not isinstance(grads, dict):
        fail("grads", grads, "a dict name -> array (layer-wise clipping groups by name)")
    grad_items(grads)
    p = check_norm_type(norm_type)
    names = [n for n in grads if n not in _NON_PARAMETER_KEYS]
    if groups is None:
        groups = layer_groups(names)
    if not isinstance(groups, dict) or not groups:
        fail("groups", groups, "a non-empty dict group -> pattern or list of fnmatch patterns")
    members: dict[str, list[str]] = {g: [] for g in groups}
    unmatched = []
    for n in names:
        for g, pats in groups.items():
            pats = [pats] if isinstance(pats, str) else list(pats)
            if any(fnmatch.fnmatchcase(n, pat) for pat in pats):
                members[g].append(n)
                break
        else:
            unmatched.append(n)
    if unmatched:
        raise InvalidArgument(f"groups={describe(groups)}: names {unmatched} match no group; "
                              "expected a pattern matching each of them (e.g. '*' as the last group)")
    limits = max_norm if isinstance(max_norm, dict) else {g: max_norm for g in groups}
    out, norms, coefs = dict(grads), {}, {}
    for g, ns in members.items():
        present = [n for n in ns if grads[n] is not None]
        if not present:
            continue
        if g not in limits:
            fail("max_norm", max_norm, f"a float or a dict with a limit for group {g!r}")
        res = clip_by_global_norm([grads[n] for n in present], check_max_norm(f"max_norm[{g!r}]", limits[g]), p)
        norms[g], coefs[g] = res.total_norm, res.coefficient
        out.update(zip(present, res.grads))
    return ClipResult(out, norms, coefs)


def clip_by_value(grads, clip_value: float) -> ClipResult:
    """Clamp every entry to [-v, v] as ``clip_grad_value_`` (NaN stays NaN, ±inf -> ±v)."""
    v = check_max_norm("clip_value", clip_value)
    _, values, rebuild = grad_items(grads)
    out = [None if g is None else np.asarray(np.minimum(np.maximum(g, g.dtype.type(-v)), g.dtype.type(v)))
           for g in values]
    return ClipResult(rebuild(out), None, None)


# --------------------------------------------------------------------------- BPTT


def clip_after_backward(grads: dict, max_norm: float, norm_type: float = 2.0) -> ClipResult:
    """Clip the finished parameter gradient of :func:`backward` (the usual way).

    Only parameters are clipped; "input", "h0" and "c0" pass through unchanged.
    """
    if not isinstance(grads, dict):
        fail("grads", grads, "the dict of gradients that backward() returns")
    names = [n for n in grads if n not in _NON_PARAMETER_KEYS]
    res = clip_by_global_norm({n: grads[n] for n in names}, max_norm, norm_type)
    return ClipResult({**grads, **res.grads}, res.total_norm, res.coefficient)


def adjoint_clipping(max_norm: float, *, norm_type: float = 2.0, per: str = "sample",
                     state: str = "h", mode: str = "norm"):
    """A ``crossing`` rule that clips the carried adjoint each time it crosses a step.

    Pass it as ``backward(..., crossing=adjoint_clipping(M))`` (combine it with a truncation
    rule by ``compose_crossings``). At each crossing into step t, the adjoint of H[t-1]
    coming from step t (dh: (B, P); dc: (B, H) for the LSTM) is replaced by

    - ``mode="norm"``: ``dh · min(M / ‖dh‖, 1)`` — no epsilon, so an adjoint within the
      ball is untouched and one outside lands on its surface; ``per="sample"`` takes the
      norm of each row (each sequence of the batch), ``per="batch"`` of the whole (B, P)
      block; ``state="h_and_c"`` uses the joint norm of (dh, dc) for the LSTM.
    - ``mode="value"``: each entry clamped to [-M, M] (``state`` chooses dh or both).
    """
    M = check_max_norm("max_norm", max_norm)
    p = check_norm_type(norm_type)
    check_choice("per", per, ("sample", "batch"))
    check_choice("state", state, ("h", "h_and_c"))
    check_choice("mode", mode, ("norm", "value"))

    def norms(a):
        a = np.abs(a)
        if per == "batch":
            a = a.reshape(1, -1)
        if p == np.inf:
            return a.max(axis=-1)
        return (a**p).sum(axis=-1)

    def crossing(t, dh, dc):
        if np.iscomplexobj(dh):
            raise InvalidArgument("adjoint clipping got a complex adjoint: clipping is not "
                                  "holomorphic, so it cannot run under the complex step")
        both = state == "h_and_c" and dc is not None
        if mode == "value":
            dh = np.clip(dh, -M, M)
            return dh, (np.clip(dc, -M, M) if both else dc)
        n = norms(dh)
        if both:
            n = np.maximum(n, norms(dc)) if p == np.inf else n + norms(dc)
        if p != np.inf:
            n = n ** (1.0 / p)
        with np.errstate(divide="ignore"):
            c = np.where(n > M, M / np.where(n > M, n, 1.0), 1.0)
        c = c.reshape(-1, 1) if per == "sample" else c.reshape(())
        return dh * c, (dc * c if both else dc)

    crossing.__qualname__ = f"adjoint_clipping(max_norm={M:g}, norm_type={p:g}, per={per!r}, state={state!r}, mode={mode!r})"
    return crossing
