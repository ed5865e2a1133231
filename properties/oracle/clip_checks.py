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

The target is called in every form torch accepts (:mod:`bpttcheck.properties.clip_space`): a
list, a generator or a single Tensor; ``norm_type`` as a float, an int or ``'inf'``; positional
or keyword arguments; ``foreach`` and ``error_if_nonfinite`` given or not; torch's own function,
the truth, is called in its plainest form on copies of the same gradients.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np

from ..clip_space import OMITTED, clip_cases, clip_coverage
from ..clipping import check_clipping
from ..compare import assert_close
from ..runner import PropertyCheck
from ..tolerance import clipped_gradient_tolerance, exact, norm_tolerance
from .common import Guarded, TargetFailure, call_target, check_id, devices_for

__all__ = ["clip_checks", "clip_flavour"]


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


def _snippet(spec, grads, call):
    shown = ", ".join("None" if g is None else f"np.array({np.asarray(g).tolist()!r}, dtype=np.{g.dtype})"
                      for g in grads)
    return (f"import numpy as np, torch\nfrom bpttcheck.properties.oracle import load_target\n"
            f"fn = load_target({spec!r})\ngrads = [{shown}]\n"
            "params = [torch.nn.Parameter(torch.zeros(1, dtype=torch.float64)) if g is None else "
            "torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype)) for g in grads]\n"
            "for q, g in zip(params, grads):\n    if g is not None:\n        q.grad = torch.from_numpy(g.copy())\n"
            f"print({call})\nprint([q.grad for q in params])")


def _call_inplace(fn, spec, grads, form, flavour, value, p, device, ctx, rep):
    """Run the target on fresh Parameters, called in ``form``; returns (grads after, returned value)."""
    params = _params(grads, device)
    before = [q.grad for q in params]
    args, kwargs = form.arguments(flavour, value, p)
    ret = call_target(form.source(flavour, value, p).replace("fn(", f"{spec}(", 1), fn, form.parameters(params),
                      *args, context=ctx, reproducer=rep, **kwargs)
    for i, (q, b) in enumerate(zip(params, before)):
        if b is not None and q.grad is not b:
            raise TargetFailure(f"NotInPlace: parameters[{i}].grad was replaced by a new tensor; a drop-in must "
                                f"change the existing .grad in place ({ctx})\n  reproduce:\n"
                                + "\n".join("    " + s for s in rep.splitlines()))
    return _grads(params), ret


def _nonfinite(grads) -> bool:
    return any(g is not None and not np.isfinite(g).all() for g in grads)


def _context(spec, device, case):
    return f"{spec} on {device}; {case.source()}, {len(case.grads)} tensors"


def _norm_body(fn, spec, device, case):
    import torch

    grads, M, p, form = case.grads, case.value, case.norm_type, case.form
    ctx = _context(spec, device, case)
    rep = _snippet(spec, grads, case.source())
    if form.error_if_nonfinite is True and _nonfinite(grads):
        return _raises_before_touching(fn, spec, device, case, ctx, rep)
    got, total = _call_inplace(fn, spec, grads, form, "norm", M, p, device, ctx, rep)
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
    plain = replace(form, error_if_nonfinite=OMITTED)  # the properties read torch's non-finite semantics

    def as_clip_fn(gs, max_norm, norm_type):
        out, ret = _call_inplace(fn, spec, gs, plain, "norm", max_norm, norm_type, device, ctx, rep)
        return out, ret.detach().cpu().numpy()[()]

    check_clipping(as_clip_fn, grads, M, p, context=ctx)
    if _nonfinite(grads) and form.container == "list" and not form.keywords:
        comps += _raises_before_touching(fn, spec, device, replace(case, form=replace(form, error_if_nonfinite=True)),
                                         ctx, rep, declinable=True)
    return comps


def _raises_before_touching(fn, spec, device, case, ctx, rep, declinable=False):
    """``error_if_nonfinite=True`` with a non-finite total: it raises, and before any gradient changed."""
    params = _params(case.grads, device)
    args, kwargs = case.form.arguments("norm", case.value, case.norm_type)
    try:
        fn(case.form.parameters(params), *args, **kwargs)
    except NotImplementedError:
        if not declinable:
            raise
        return []  # error_if_nonfinite declined: reported by the other cases' passing, not a failure
    except Exception:
        changed = [i for i, (a, g) in enumerate(zip(_grads(params), case.grads))
                   if g is not None and not np.array_equal(a, g, equal_nan=True)]
        if changed:
            raise TargetFailure(f"error_if_nonfinite=True raised but changed grads{changed} first; it must "
                                f"raise before touching any gradient ({ctx})") from None
        return []
    raise TargetFailure(f"error_if_nonfinite=True with a non-finite total did not raise ({ctx})\n"
                        f"  reproduce:\n" + "\n".join("    " + s for s in rep.splitlines()))


def _value_body(fn, spec, device, case):
    import torch

    grads, v, form = case.grads, case.value, case.form
    ctx = _context(spec, device, case)
    rep = _snippet(spec, grads, case.source())
    got, ret = _call_inplace(fn, spec, grads, form, "value", v, None, device, ctx, rep)
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


def clip_checks(target, options) -> list[PropertyCheck]:
    spec, fn, device = target.spec, target.obj, options.device
    flavour = clip_flavour(fn)
    body = _norm_body if flavour == "norm" else _value_body
    out = []
    for dev, skip in devices_for(device):
        for part, nonfinite in (("torch-semantics", False), ("nonfinite", True)):
            out.append(PropertyCheck(
                name=f"{spec} (clip, {flavour}) {part} on {dev}",
                strategy=clip_cases(flavour, nonfinite),
                coverage=clip_coverage(flavour, nonfinite),
                body=Guarded(partial(body, fn, spec, dev)),
                skip=skip,
                id=check_id("clip", flavour, part, dev, "float32+float64"),
            ))
    return out
