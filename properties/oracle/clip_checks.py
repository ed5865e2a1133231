"""Checks of ``clip`` targets: drop-ins for ``torch.nn.utils.clip_grad_norm_`` or
``clip_grad_value_`` (same signature, gradients changed in place).

Norm clipping (target ``fn(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False)``
returning the pre-clip total as a tensor): agreement with PyTorch's own function on copies of
the same gradients (tolerance of :func:`~bpttcheck.properties.clipping.norm_tolerance`, since
summation orders may differ), then every clipping property of
:func:`~bpttcheck.properties.clipping.check_clipping` (bound, direction, returned norm,
threshold with PyTorch's 1e-6, near-idempotence, non-finite semantics), in-place behaviour,
and ``error_if_nonfinite=True`` raising before touching anything. Value clipping
(``fn(parameters, clip_value)``, returns None): bitwise equal to clamping in each dtype.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..clipping import check_clipping, gradient_lists
from ..compare import assert_close
from ..runner import PropertyCheck
from ..tolerance import clipped_gradient_tolerance, exact, norm_tolerance
from .common import Guarded, TargetFailure, call_target, check_id, devices_for

__all__ = ["clip_checks", "clip_flavour"]

_NORM_TYPES = (2.0, 1.0, float("inf"), 3.0)
_MAX_NORMS = (1e-3, 0.5, 1.0, 10.0, 1e3)


def clip_flavour(fn) -> str:
    """"norm" or "value", from the name of the second parameter or the function's name."""
    import inspect

    try:
        names = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        names = []
    if len(names) > 1 and "value" in names[1]:
        return "value"
    if len(names) > 1 and "norm" in names[1]:
        return "norm"
    return "value" if "value" in getattr(fn, "__name__", "") else "norm"


def _params(grads, device):
    import torch

    params = []
    for g in grads:
        if g is None:
            params.append(torch.nn.Parameter(torch.zeros(1, dtype=torch.float64, device=device)))
            continue
        t = torch.from_numpy(np.array(g, copy=True)).to(device)
        p = torch.nn.Parameter(torch.zeros_like(t))
        p.grad = t
        params.append(p)
    return params


def _grads(params):
    return [None if p.grad is None else p.grad.detach().cpu().numpy().copy() for p in params]


def _snippet(spec, grads, max_norm, p, call):
    shown = ", ".join("None" if g is None else f"np.array({np.asarray(g).tolist()!r}, dtype=np.{g.dtype})"
                      for g in grads)
    return (f"import numpy as np, torch\nfrom bpttcheck.properties.oracle import load_target\n"
            f"fn = load_target({spec!r})\ngrads = [{shown}]\n"
            "params = [torch.nn.Parameter(torch.zeros(1, dtype=torch.float64)) if g is None else "
            "torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype)) for g in grads]\n"
            "for q, g in zip(params, grads):\n    if g is not None:\n        q.grad = torch.from_numpy(g.copy())\n"
            f"print({call})\nprint([q.grad for q in params])")


def _call_inplace(fn, spec, grads, args, device, ctx, rep):
    """Run the target on fresh Parameters; returns (grads after, returned value)."""
    params = _params(grads, device)
    before = [p.grad for p in params]
    ret = call_target(f"{spec}(parameters, {', '.join(map(repr, args))})", fn, params, *args, context=ctx,
                      reproducer=rep)
    for i, (p, b) in enumerate(zip(params, before)):
        if b is not None and p.grad is not b:
            raise TargetFailure(f"NotInPlace: parameters[{i}].grad was replaced by a new tensor; a drop-in must "
                                f"change the existing .grad in place ({ctx})\n  reproduce:\n"
                                + "\n".join("    " + s for s in rep.splitlines()))
    return _grads(params), ret


def _norm_body(fn, spec, device, case):
    import torch


    grads, M, p = case
    ctx = f"{spec} on {device}; max_norm={M:g}, norm_type={p:g}, {len(grads)} tensors"
    rep = _snippet(spec, grads, M, p, f"fn(params, {M!r}, {p!r})")
    got, total = _call_inplace(fn, spec, grads, (M, p), device, ctx, rep)
    want_params = _params(grads, device)
    want_total = torch.nn.utils.clip_grad_norm_(want_params, M, p)
    want = _grads(want_params)
    if not hasattr(total, "dtype") or not hasattr(total, "shape"):
        raise TargetFailure(f"WrongType: returned {type(total).__name__}; clip_grad_norm_ returns the pre-clip "
                            f"total norm as a tensor ({ctx})")
    if total.dtype != want_total.dtype or tuple(total.shape) != ():
        raise TargetFailure(f"WrongDtype: returned total has dtype {total.dtype}, shape {tuple(total.shape)} where "
                            f"torch returns {want_total.dtype}, shape () ({ctx})")
    tol = norm_tolerance(grads, p)
    comps = [assert_close("total_norm returned", total.detach().cpu().double().numpy(),
                          want_total.detach().cpu().double().numpy(), tol, context=ctx + " vs torch.nn.utils.clip_grad_norm_",
                          reproducer=rep)]
    for i, (a, e) in enumerate(zip(got, want)):
        if e is None:
            continue
        if a.dtype != e.dtype:
            raise TargetFailure(f"WrongDtype: grads[{i}] became {a.dtype} where {e.dtype} was expected ({ctx})")
        comps.append(assert_close(f"grads[{i}] after clipping", a, e, clipped_gradient_tolerance(tol, [e]),
                                  context=ctx + " vs torch.nn.utils.clip_grad_norm_", reproducer=rep))

    def as_clip_fn(gs, max_norm, norm_type):
        out, ret = _call_inplace(fn, spec, gs, (max_norm, norm_type), device, ctx, rep)
        return out, ret.detach().cpu().numpy()[()]

    check_clipping(as_clip_fn, grads, M, p, context=ctx)
    if any(g is not None and not np.isfinite(g).all() for g in grads):
        params = _params(grads, device)
        try:
            fn(params, M, p, True)
        except NotImplementedError:
            pass  # error_if_nonfinite declined: reported by the other cases' passing, not a failure
        except Exception:
            changed = [i for i, (a, g) in enumerate(zip(_grads(params), grads))
                       if g is not None and not np.array_equal(a, g, equal_nan=True)]
            if changed:
                raise TargetFailure(f"error_if_nonfinite=True raised but changed grads{changed} first; it must "
                                    f"raise before touching any gradient ({ctx})")
        else:
            raise TargetFailure(f"error_if_nonfinite=True with a non-finite total did not raise ({ctx})\n"
                                f"  reproduce:\n" + "\n".join("    " + s for s in rep.splitlines()))
    return comps


def _value_body(fn, spec, device, case):
    import torch

    grads, v, _ = case
    ctx = f"{spec} on {device}; clip_value={v:g}, {len(grads)} tensors"
    rep = _snippet(spec, grads, v, None, f"fn(params, {v!r})")
    got, ret = _call_inplace(fn, spec, grads, (v,), device, ctx, rep)
    if ret is not None:
        raise TargetFailure(f"WrongType: returned {type(ret).__name__}; clip_grad_value_ returns None ({ctx})")
    want_params = _params(grads, device)
    torch.nn.utils.clip_grad_value_(want_params, v)
    comps = []
    bitwise = exact("bitwise: a clamp in each gradient's own dtype")
    for i, (a, e) in enumerate(zip(got, _grads(want_params))):
        if e is None:
            continue
        if a.dtype != e.dtype:
            raise TargetFailure(f"WrongDtype: grads[{i}] became {a.dtype} where {e.dtype} was expected ({ctx})")
        comps.append(assert_close(f"grads[{i}] clamped to [-{v:g}, {v:g}] (NaN stays NaN, ±inf → ±v)", a, e, bitwise,
                                  context=ctx, reproducer=rep))
    return comps


def _strategy(nonfinite: bool):
    from hypothesis import strategies as st


    return st.tuples(gradient_lists(nonfinite=nonfinite), st.sampled_from(_MAX_NORMS), st.sampled_from(_NORM_TYPES))


def clip_checks(target, options) -> list[PropertyCheck]:
    spec, fn, device = target.spec, target.obj, options.device
    flavour = clip_flavour(fn)
    body = _norm_body if flavour == "norm" else _value_body
    out = []
    for dev, skip in devices_for(device):
        for part, nonfinite in (("torch-semantics", False), ("nonfinite", True)):
            out.append(PropertyCheck(
                name=f"{spec} (clip, {flavour}) {part} on {dev}",
                strategy=_strategy(nonfinite),
                body=Guarded(partial(body, fn, spec, dev)),
                skip=skip,
                id=check_id("clip", flavour, part, dev, "float32+float64"),
            ))
    return out
