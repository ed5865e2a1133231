"""Gradient checks: hand-written BPTT against numerical derivatives of the same loss.

:func:`check_gradients` compares the analytic gradient (the reference's ``forward`` +
``backward`` by default, or an implementation under test) with one numerical oracle:

- ``"complex"`` — the complex step, exact to rounding: judged by the implementation tolerance
  (SPEC §8; ~1e-13 relative in float64). Refused for relu (not analytic at 0).
- ``"central"`` / ``"richardson"`` — judged by their own error estimates (×10) plus rounding.
- ``"direction"`` — the cheap first check: ``vᵀ∇L`` along a few random directions v (complex
  step, or central differences for relu) in 1–4 batched evaluations per direction. Only when it
  fails does the full element-wise sweep run, to name the quantity and element that differ.

A failure raises :class:`~bpttcheck.properties.compare.Mismatch` naming the quantity
(``weight_hh_l0``, ``input``, ``h0``, …) with a stand-alone reproducer.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from bpttcheck.reference import backward, forward
from bpttcheck.reference import RecurrentConfig
from bpttcheck.reference.validation import InvalidArgument, check_choice, check_instance, check_int, describe
from bpttcheck.reference.fd_model import NetworkLoss
from bpttcheck.reference.finite_diff import (
    FiniteDifference,
    central_difference,
    complex_step,
    directional_derivative,
    richardson,
)

from .compare import Comparison, Mismatch, compare
from .reproduce import array_literal
from .runner import PropertyCheck
from .strategies import Case, cases
from .tolerance import finite_difference_tolerance, implementation_tolerance, precision_of

__all__ = [
    "GRADCHECK_METHODS",
    "check_case_gradients",
    "check_gradients",
    "gradient_checks",
]

GRADCHECK_METHODS = ("complex", "central", "richardson", "direction")

#: How many times its own error estimate a finite difference may be off (the policy's default).
_FD_FACTOR = 10.0

_SWEEPS = {"complex": complex_step, "central": central_difference, "richardson": richardson}


def _analytic_activation(config) -> bool:
    return config.nonlinearity != "relu"  # relu is the one activation with a kink


def _default_cotangents(config, model_args, seed):
    """Standard normal cotangents of output, h_n (and c_n) drawn from ``seed``."""
    res = forward(config, *model_args[:4], lengths=model_args[4], batch_first=model_args[5])
    rng = np.random.default_rng(seed)
    dt = res.output.dtype
    d_c = None if res.c_n is None else rng.standard_normal(res.c_n.shape).astype(dt)
    return (rng.standard_normal(res.output.shape).astype(dt), rng.standard_normal(res.h_n.shape).astype(dt), d_c)


def check_gradients(
    config,
    params: dict,
    x,
    h0=None,
    c0=None,
    *,
    lengths=None,
    batch_first: bool = False,
    d_output=None,
    d_h_n=None,
    d_c_n=None,
    loss=None,
    target=None,
    readout=None,
    method: str = "complex",
    wrt=None,
    step=None,
    n_directions: int = 3,
    seed: int = 0,
    amplification: float = 1.0,
    forward_fn=None,
    backward_fn=None,
    context: str | None = None,
    reproducer: str | None = None,
) -> list[Comparison]:
    """Check ∂L/∂(parameters, input, h0, c0) against a numerical derivative of the same L.

    L is ``Σ⟨d_output, output⟩ + ⟨d_h_n, h_n⟩ + ⟨d_c_n, c_n⟩``, or a LossSpec ``loss`` with
    ``target`` (and a fixed ``readout``) plus the state terms; with no cotangent and no loss,
    standard normal cotangents are drawn from ``seed``. ``wrt`` restricts the quantities
    (default all). ``forward_fn``/``backward_fn`` replace the reference's as the implementation
    under test (same signatures). ``amplification`` enters the implementation tolerance.

    Returns one :class:`Comparison` per quantity (per direction set for ``"direction"``);
    raises :class:`Mismatch` naming the first quantity that fails.

    >>> import numpy as np
    >>> from bpttcheck.reference import RecurrentConfig, init_params
    >>> cfg = RecurrentConfig("gru", input_size=2, hidden_size=3)
    >>> p = init_params(cfg, np.random.default_rng(0))
    >>> x = np.random.default_rng(1).standard_normal((4, 2, 2))
    >>> worst = max(c.worst_ratio for c in check_gradients(cfg, p, x, method="complex"))
    >>> worst < 1
    True
    """
    check_instance("config", config, RecurrentConfig, "a RecurrentConfig")
    if context is not None and not isinstance(context, str):
        raise InvalidArgument(f"context={describe(context)}: expected None or a string for the failure message")
    check_choice("method", method, GRADCHECK_METHODS)
    seed = check_int("seed", seed, minimum=0)
    n_directions = check_int("n_directions", n_directions, minimum=1)
    if method == "complex" and not _analytic_activation(config):
        raise InvalidArgument(
            f"method='complex' with nonlinearity={config.nonlinearity!r}: expected an analytic "
            "activation (tanh, sigmoid, identity); relu is not analytic at 0, so the complex "
            "step is not defined there — use method='central', 'richardson' or 'direction'"
        )
    if d_output is None and d_h_n is None and d_c_n is None and loss is None:
        d_output, d_h_n, d_c_n = _default_cotangents(config, (params, x, h0, c0, lengths, batch_first), seed)
    model = NetworkLoss(config, params, x, h0, c0, lengths=lengths, batch_first=batch_first,
                        d_output=d_output, d_h_n=d_h_n, d_c_n=d_c_n, loss=loss, target=target,
                        readout=readout, wrt=wrt)
    grads = model.gradient(forward_fn or forward, backward_fn or backward)
    _check_grad_shapes(model, grads)
    g = model.layout.flatten(grads)
    T = model.x.shape[1 if batch_first else 0]
    if context is None:
        context = _context(model, method)
    if reproducer is None:  # built only when a check fails: array literals are costly
        reproducer = _LazyReproducer(model, method, wrt, seed, backward_fn)
    if method == "direction":
        return _check_directions(model, g, grads, T, n_directions, seed, amplification, step, context, reproducer)
    return _full_check(model, method, g, grads, step, T, amplification, context, reproducer)


def _full_check(model, method, g, grads, step, T, amplification, context, reproducer):
    if method == "central":
        fd, kinks = _central_screened(model, g, step, lambda value: _tolerance(
            model, T, amplification, _gradient_scale(value)))
    else:
        fd, kinks = _sweep(model, method, step)
    return _compare_sweep(model, fd, grads, T, amplification, context, reproducer, kinks)


def _check_grad_shapes(model, grads):
    for name, shape in zip(model.layout.names, model.layout.shapes):
        if grads[name].shape != shape:
            raise Mismatch(
                f"GradientMismatch: {name} has shape {grads[name].shape} where {shape} was expected",
                compare(name, grads[name], np.zeros(shape), implementation_tolerance()),
            )


def _sweep(model: NetworkLoss, method: str, step, **kwargs) -> tuple[FiniteDifference, np.ndarray | None]:
    """The sweep, and (relu only) which of its elements straddle a kink (else None)."""
    cx = method == "complex"
    if not cx:
        kwargs["f_scale"] = model.rounding_scale()
    if model.kink_log is not None:
        model.kink_log.clear()
    fd = _SWEEPS[method](model, model.theta, step, chunk=model.chunk_size(cx), **kwargs)
    return fd, _row_kinks(model, fd.value.shape[0])


def _row_kinks(model, n: int):
    if model.kink_log is None:
        return None
    rows = np.concatenate(model.kink_log)
    model.kink_log.clear()
    return rows.reshape(n, -1).any(axis=1)


def _central_screened(model, g, step, base_of) -> FiniteDifference:
    """Central differences, the 2h pair (truncation estimate) evaluated only where needed.

    The ±h pair gives the value and a rounding-only error estimate, a lower bound of the full
    one; an element within the tolerance built on it is within the full tolerance too (atol
    only grows with the estimate). Elements outside get the ±2h pair and their truncation
    estimate, which halves the cost of a passing check.
    """
    fd, kinks = _sweep(model, "central", step, truncation_estimate=False)
    value, error = fd.value, fd.error.copy()
    base = base_of(value)  # the same rounding part as the final comparison's
    diff = np.abs(g - value)
    if kinks is not None:
        diff[kinks] = 0.0  # left out anyway
    suspects = []
    for sl in model.layout.slices.values():
        # finite_difference_tolerance(error[sl], base), written out: this runs on every check
        allowed = base.atol + _FD_FACTOR * np.max(error[sl]) + base.rtol * np.abs(value[sl])
        suspects.extend(np.flatnonzero(~(diff[sl] <= allowed)) + sl.start)
    if suspects:
        full, full_kinks = _sweep(model, "central", step, elements=np.asarray(suspects))
        error[suspects] = full.error
        if kinks is not None:
            kinks[suspects] |= full_kinks
        return FiniteDifference(value, error, fd.step, "central", fd.evaluations + full.evaluations), kinks
    return FiniteDifference(value, error, fd.step, "central", fd.evaluations), kinks


def _tolerance(model, T, amplification, scale, fd_error=None):
    base = implementation_tolerance(precision_of(model.dtype), T=T, amplification=amplification, scale=scale)
    return base if fd_error is None else finite_difference_tolerance(fd_error, base, factor=_FD_FACTOR)


def _gradient_scale(values) -> float:
    """The scale rounding errors are judged on: the largest |component| of the whole gradient.

    One rounding error in a carried adjoint reaches every quantity, so a quantity whose
    components cancel to a small sum (a bias of a unit that is nearly off) is judged on the
    gradient's scale, not on its own: its terms were that large (seen: float32 bias gradients
    of 4e-3 with rounding errors of 9e-8 next to weight gradients of O(1)).
    """
    return float(np.max(np.abs(values))) if np.size(values) else 1.0


def _compare_sweep(model, fd, grads, T, amplification, context, reproducer, kinks=None) -> list[Comparison]:
    """One comparison per quantity; elements whose perturbation straddles a relu kink
    (``kinks``) are left out: no finite difference is meaningful there."""
    out = []
    expected = model.layout.unflatten(fd.value)
    errors = model.layout.unflatten(fd.error)
    skipped = model.layout.unflatten(kinks) if kinks is not None else {}
    scale = _gradient_scale(fd.value)
    if kinks is not None and kinks.any():
        context += f"; {int(kinks.sum())} element(s) straddling a relu kink left out"
    for name in model.layout.names:
        e = expected[name]
        a = grads[name]
        if name in skipped:
            a = np.where(skipped[name], e, a)
            errors[name] = np.where(skipped[name], 0.0, errors[name])
        tol = _tolerance(model, T, amplification, scale, None if fd.method == "complex" else errors[name])
        result = compare(name, a, e, tol)
        if not result.ok:
            raise Mismatch(result.message(context, str(reproducer)), result)
        out.append(result)
    return out


def _check_directions(model, g, grads, T, n, seed, amplification, step, context, reproducer):
    rng = np.random.default_rng(seed)
    V = rng.standard_normal((n, model.layout.size)).astype(model.dtype)
    inner = "complex" if _analytic_activation(model.config) else "central"
    kwargs = {} if inner == "complex" else {"f_scale": model.rounding_scale()}
    if model.kink_log is not None:
        model.kink_log.clear()
    fd = directional_derivative(model, model.theta, V, method=inner, step=step,
                                chunk=model.chunk_size(inner == "complex"), **kwargs)
    kinks = _row_kinks(model, n)
    if kinks is not None and kinks.any():
        # A direction crossing a relu kink says nothing; the sweep leaves such elements out.
        return _full_check(model, inner, g, grads, None, T, amplification, context, reproducer)
    # Rounding of vᵀg scales with Σ|v||g|, not with |vᵀg| (which can cancel).
    scale = float(np.max(np.abs(V) @ np.abs(g)))
    tol = _tolerance(model, T, amplification, scale, None if inner == "complex" else fd.error)
    quantity = f"directional derivative vᵀ∇L ({n} random directions, seed {seed})"
    result = compare(quantity, V @ g, fd.value, tol)
    if result.ok:
        return [result]
    # The cheap check failed: the full sweep names the quantity and element.
    try:
        _full_check(model, inner, g, grads, None, T, amplification, context, reproducer)
    except Mismatch as exc:
        raise Mismatch(f"{exc}\n  (found by the random-direction check: {result.message().splitlines()[1].strip()})",
                       exc.comparison) from None
    raise Mismatch(result.message(context, str(reproducer)), result)


def _context(model: NetworkLoss, method: str) -> str:
    T = model.x.shape[1 if model.batch_first else 0]
    B = model.h0.shape[1]
    parts = [model.config.describe(), f"T={T}", f"B={B}"]
    if model.lengths is not None:
        parts.append(f"lengths={model.lengths.tolist()}")
    if model.batch_first:
        parts.append("batch_first")
    if model.loss is not None:
        parts.append(f"loss={model.loss.kind}/{model.loss.steps}/{model.loss.reduction}")
    against = {"complex": "vs complex step", "central": "vs central differences",
               "richardson": "vs Richardson differences",
               "direction": "vs random directions, then the full sweep"}[method]
    parts += [against, str(model.dtype)]
    return ", ".join(parts)


class _LazyReproducer:
    def __init__(self, *args):
        self.args = args

    def __str__(self) -> str:
        return _reproducer(*self.args)


def _reproducer(model: NetworkLoss, method, wrt, seed, backward_fn) -> str:
    case = Case(model.config, model.params, model.x, model.h0, model.c0, model.lengths, model.batch_first,
                model.d_output, model.d_h_n, model.d_c_n)
    lines = ["from bpttcheck.properties.gradcheck import check_gradients"]
    extra = ""
    if model.loss is not None:
        lines.append("from bpttcheck.reference import LossSpec")
        lines.append(f"loss = {model.loss!r}")
        lines.append(f"target = {array_literal(model.target)}")
        readout = None if model.readout is None else "{" + ", ".join(
            f"{k!r}: {array_literal(v)}" for k, v in model.readout.items()) + "}"
        lines.append(f"readout = {readout}")
        extra = ", loss=loss, target=target, readout=readout"
    if backward_fn is not None:
        lines.append(f"# the failing gradient came from backward_fn={getattr(backward_fn, '__qualname__', backward_fn)!s}; "
                     "pass it as backward_fn=... to re-run the same check")
    lines.append(
        f"check_gradients(config, params, x, h0, c0, lengths=lengths, batch_first={model.batch_first}, "
        f"d_output=d_output, d_h_n=d_h_n, d_c_n=d_c_n{extra}, method={method!r}, "
        f"wrt={None if wrt is None else tuple(wrt)!r}, seed={seed})"
    )
    return case.reproducer("\n".join(lines))


def check_case_gradients(case, method: str = "complex", **kwargs) -> list[Comparison]:
    """:func:`check_gradients` on a :class:`~bpttcheck.properties.strategies.Case` (a
    ``PropertyCheck`` body); relu cases fall back from the complex step to central
    differences."""
    check_instance("case", case, Case, "a Case (from make_case() or the cases() strategy)")
    if method == "complex" and not _analytic_activation(case.config):
        method = "central"
    return check_gradients(
        case.config, case.params, case.x, case.h0, case.c0, lengths=case.lengths,
        batch_first=case.batch_first, d_output=case.d_output, d_h_n=case.d_h_n, d_c_n=case.d_c_n,
        method=method, seed=case.seed % 2**32, reproducer=None, **kwargs,
    )


def gradient_checks(methods=("complex", "central", "direction")) -> list:
    """``PropertyCheck``s for ``bpttcheck verify``: the reference's BPTT against each method,
    over generated configurations (every cell, stacks, directions, proj, padding, bias)."""
    for m in methods:
        check_choice("method", m, GRADCHECK_METHODS)
    return [
        PropertyCheck(name=f"reference BPTT vs {m} differences (float64)" if m != "complex"
                      else "reference BPTT vs complex step (float64)",
                      strategy=cases(), body=partial(check_case_gradients, method=m))
        for m in methods
    ]
