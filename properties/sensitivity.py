"""How much rounding made in the forward pass can move each result: a measured condition.

Rounding errors of the forward (a pre-activation whose terms cancel, a state far smaller than
the terms it was computed from) propagate into every later output, state and gradient; the
backward's magnitudes (``backward(..., magnitudes=True)``) do not see them. Their first-order
effect is measured directly: every input, initial state and weight is moved by u relative, and so is
every activation value the cells compute (gates, tanh of the state: the rounding a saturated
σ ≈ 1 carries into a state that cancels, which no move of the data samples), u of the
precision compared, times standard normal factors, three draws; the float64 reference is rerun, and the
largest shift of each element is its sensitivity. The data are moved by
δ = 2⁻²⁶ relative and the shifts scaled by u/δ (first order): a move of u = 2⁻⁵³ would be
lost in float64's own rounding (1 + 2⁻⁵³ rounds to 1). A per-step rounding of u
relative moves a result by about as much as a data perturbation of u relative does, so the
tolerance allows a safety multiple of it (``implementation_tolerance(..., sensitivity=)``).

:func:`rounding_spread` measures the rounding itself where the Σ|terms| bound goes vacuous:
the reference rerun at the compared precision on data moved by one ulp; see
:func:`bpttcheck.properties.tolerance.measured_tolerance`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bpttcheck.reference import backward, forward
from bpttcheck.reference.activations import rounding_noise
from bpttcheck.reference.validation import check_choice, check_int, fail

from .strategies import Case
from .tolerance import UNIT_ROUNDOFF

__all__ = ["FORWARD_DRAWS", "forward_sensitivity", "gradient_magnitudes", "rounding_sensitivity", "rounding_spread"]

_DELTA = 2.0**-26


def _checked(case, precision, draws=1, seed=0, compute=None):
    """The arguments every measurement here shares, refused with the argument's name."""
    if not isinstance(case, Case):
        fail("case", case, "a Case (bpttcheck.properties.strategies.make_case or a drawn case)")
    check_choice("precision", precision, tuple(UNIT_ROUNDOFF))
    check_int("draws", draws, minimum=1)
    check_int("seed", seed, minimum=0)
    if compute is not None and not callable(compute):
        fail("compute", compute, "None or a function case -> dict of quantities")


def _nudge(a, u, rng):
    if a is None:
        return None
    return a * (1.0 + u * rng.standard_normal(a.shape))


def _full_bptt(case) -> dict:
    res, grads = case.reference()
    return {"output": res.output, "h_n": res.h_n, "c_n": res.c_n, **grads}


def rounding_sensitivity(case, precision: str = "float64", draws: int = 3, seed: int = 0,
                         compute=None, base: dict | None = None) -> dict:
    """Per quantity (output, h_n, c_n, every gradient), the largest shift of each element of
    the float64 reference when the case's data move by ``u(precision)`` relative and so does
    every value of the cells' activations (:func:`bpttcheck.reference.activations.rounding_noise`).

    ``compute(case) -> dict`` names the quantities (default: the reference's forward and full
    BPTT; a truncated scheme passes its own gradients); ``base``: ``compute`` of the float64
    case, when the caller has it.
    """
    _checked(case, precision, draws, seed, compute)
    compute = compute or _full_bptt
    case = case.astype(np.float64)
    u = UNIT_ROUNDOFF[precision]
    delta = _DELTA
    base = base if base is not None else compute(case)
    worst = {k: np.zeros_like(v) for k, v in base.items() if v is not None}
    rng = np.random.default_rng(seed)
    for _ in range(draws):
        nudged = replace(case, params={k: _nudge(v, delta, rng) for k, v in case.params.items()},
                         x=_nudge(case.x, delta, rng), h0=_nudge(case.h0, delta, rng), c0=_nudge(case.c0, delta, rng))
        with rounding_noise(delta, rng):  # the activations' own rounding, which data moves miss
            moved = compute(nudged)
        for k in worst:
            np.maximum(worst[k], np.abs(moved[k] - base[k]) * (u / delta), out=worst[k])
    return worst


#: Draws of :func:`forward_sensitivity`: with k normal draws, the largest shift falls below a
#: tenth of its standard deviation with probability 0.08^k (4 draws: 4e-5), and a peer's
#: rounding, a sample of the same law, would then still have to exceed 6.4 standard deviations
#: to pass the 64-fold allowance
FORWARD_DRAWS = 4


def forward_sensitivity(case, precision: str = "float64", draws: int = FORWARD_DRAWS, seed: int = 0) -> dict:
    """Per forward quantity (output, h_n, c_n), the largest shift of each element of the float64
    forward when the data and every activation value the cells compute move by ``u(precision)``
    relative with standard normal factors (``draws`` forward-only reruns, first order).

    Four more samples for the quantities judged elementwise on their own small scale: a state
    that collects ±u of 1 from each of its saturated steps (f ≈ 1, i·g ≈ ±1: an LSTM whose c
    cancels to 1e-6) is where an allowance is thinnest (campaign seed 109, float32: h =
    -1.66e-6 off by 4 % in torch and the reference alike), and forward-only draws are cheap.
    """
    return rounding_sensitivity(case, precision, draws, seed, compute=_forward_only)


def _forward_only(case) -> dict:
    r = forward(case.config, case.params, case.x, case.h0, case.c0, lengths=case.lengths,
                batch_first=case.batch_first, keep_cache=False)
    return {"output": r.output, "h_n": r.h_n, "c_n": r.c_n}


def _ulp_move(a, rng, dtype):
    """``a`` in ``dtype``, each element moved one ulp up or down (random signs; zeros stay)."""
    if a is None:
        return None
    a = np.asarray(a, dtype=dtype)
    up = rng.random(a.shape) < 0.5
    moved = np.where(up, np.nextafter(a, np.array(np.inf, dtype=dtype)), np.nextafter(a, np.array(-np.inf, dtype=dtype)))
    return np.where(a == 0, a, moved).astype(dtype)


def rounding_spread(case, precision: str = "float64", draws: int = 3, seed: int = 0, compute=None,
                    base: dict | None = None) -> dict:
    """Per quantity, the largest change of each element when the reference reruns *at*
    ``precision`` (float64, or float32 for every coarser precision) on the case's data —
    weights, inputs, initial states and cotangents — each moved by one ulp (random signs,
    ``draws`` draws; for float32 the unmoved float32 run is one more draw), against the float64
    reference on the unmoved data (``base`` when the caller has it).

    Each rerun rounds differently (its inputs differ in the last bit, so does every rounding
    after them) and the data move by about u, so the spread is a sample of the computation's
    own rounding noise plus its first-order sensitivity to the data's rounding, propagated
    through the actual Jacobians — not through their absolute values, as Σ|terms| is. For
    float64, where NumPy's longdouble is wider, the float64 reference's difference from the
    same case run in extended precision is one more sample (it sees the rounding of saturated
    activations, which data moves cannot). Overflow shows as inf (an inf allowance is then
    inconclusive, never a pass).
    """
    _checked(case, precision, draws, seed, compute)
    compute = compute or _full_bptt
    case64 = case.astype(np.float64)
    base = base if base is not None else compute(case64)
    dtype = np.float64 if precision == "float64" else np.float32
    worst = {k: np.zeros(np.shape(v)) for k, v in base.items() if v is not None}
    rng = np.random.default_rng(seed)
    runs = [False] * (draws if dtype == np.float64 else draws - 1) + ([] if dtype == np.float64 else [True])
    for plain in runs:
        move = (lambda a: None if a is None else np.asarray(a, dtype=dtype)) if plain else (
            lambda a: _ulp_move(a, rng, dtype))
        moved = replace(case64, params={k: move(v) for k, v in case64.params.items()}, x=move(case64.x),
                        h0=move(case64.h0), c0=move(case64.c0), d_output=move(case64.d_output),
                        d_h_n=move(case64.d_h_n), d_c_n=move(case64.d_c_n))
        with np.errstate(over="ignore", invalid="ignore"):
            out = compute(moved)
            for k in worst:
                if out.get(k) is not None:
                    diff = np.abs(np.asarray(out[k], dtype=np.float64) - base[k])
                    np.fmax(worst[k], np.where(np.isnan(diff), np.inf, diff), out=worst[k])
    if dtype == np.float64 and _EXTENDED:
        # One more sample, from a different arithmetic: the same case in extended precision.
        # Data moves cannot sample the rounding of a saturated activation (y = tanh(a) ≈ ±1 does
        # not change its float when a moves by an ulp, yet 1 − y² carries u/(1 − y²) of
        # relative error, which another implementation's tanh rounds differently); the float64
        # reference's own error against the extended run does.
        with np.errstate(over="ignore", invalid="ignore"):
            out = compute(case64.astype(np.longdouble))
            for k in worst:
                if out.get(k) is not None:
                    diff = np.abs(np.asarray(out[k], dtype=np.longdouble) - base[k]).astype(np.float64)
                    np.fmax(worst[k], np.where(np.isnan(diff), np.inf, diff), out=worst[k])
    return worst


#: Whether NumPy's longdouble is more precise than float64 here (x87 80-bit on x86-64 Linux,
#: binary128 on aarch64 Linux; on Windows and Apple silicon it is float64 itself).
_EXTENDED = bool(np.finfo(np.longdouble).eps < np.finfo(np.float64).eps)


def gradient_magnitudes(case, result=None) -> dict:
    """Σ|terms| of every full-BPTT gradient element (``backward(..., magnitudes=True)``).

    A truncated or randomized-pattern gradient adds a subset of the same terms (each pair
    contribution C[t,s] is dropped or kept), so these bound its Σ|terms| too. ``result``: the
    float64 case's forward, when the caller already has it.
    """
    _checked(case, "float64")
    case = case.astype(np.float64)
    res = result if result is not None else forward(
        case.config, case.params, case.x, case.h0, case.c0, lengths=case.lengths, batch_first=case.batch_first)
    a = lambda v: None if v is None else np.abs(v)  # noqa: E731
    with np.errstate(over="ignore", invalid="ignore"):  # products of |J| overflow on long or expansive cases
        return backward(case.params, res, a(case.d_output), a(case.d_h_n), a(case.d_c_n), magnitudes=True)
