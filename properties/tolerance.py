"""Every allowance the project grants, each with its error analysis (SPEC §8; docs/tolerance.md).

Two implementations of the same function differ by rounding alone. In a recurrence, the
rounding errors of the T steps add up like a random walk (√T), and each is magnified by how
much the backward pass amplifies a perturbation of the carried adjoint. So a comparison allows

    |actual − expected| ≤ r·(max(Σ|terms|, |expected|) + scale) + c·sensitivity,
    r = c · u · (1 + A) · √T

with u the unit roundoff and c the safety factor of the precision in force (the precision
table, :mod:`bpttcheck.reference.precision`), ``scale`` the largest |expected| of the quantity
(a gradient component cancelled to near zero is judged on the quantity's own scale, not on
itself), Σ|terms| the sum of the absolute values of the terms that make up each element (the
backward rerun on magnitudes; where it is not measured, |expected|), A a bound on the growth of
a carried perturbation (where Σ|terms| is measured the growth is already inside it, A = 0), and
``sensitivity`` the measured shift of each result under u-relative moves of the data (the
forward's own rounding, :mod:`bpttcheck.properties.sensitivity`). No other size enters: the
sums over the batch and the hidden units are pairwise/blocked in NumPy and torch and were
measured to stay within this bound (tests/test_tolerance.py varies B and H).

The other allowances, each derived where it is defined: finite differences against their own
error estimates (:func:`finite_difference_tolerance`), p-norms of N elements (:func:`norm_tolerance`,
linear in N), the coefficient of a clipped gradient (:func:`clipped_gradient_tolerance`), exact
comparisons (:func:`exact`), the symbolic oracle's (:func:`symbolic_oracle_allowance`: a count bound on
Σ|terms| or a running first-order bound, the larger).

In the chaotic regime (γ·σ_max(W_hh) ≫ 1) float32 errors reach O(1) by T = 100 and no
tolerance is meaningful: float32 comparisons are generated in the contractive regime only.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
import numbers

import numpy as np

from bpttcheck.reference.validation import InvalidArgument, check_choice, check_int
from bpttcheck.reference.precision import PRECISION_TABLE, get_precision

__all__ = [
    "PRECISIONS",
    "SAFETY",
    "SPREAD_SAFETY",
    "UNIT_ROUNDOFF",
    "Tolerance",
    "clipped_gradient_tolerance",
    "coefficient_tolerance",
    "evaluation_slack",
    "exact",
    "finite_difference_tolerance",
    "idempotence_tolerance",
    "implementation_tolerance",
    "measured_tolerance",
    "norm_tolerance",
    "precision_of",
    "scaled_copy_tolerance",
    "symbolic_oracle_allowance",
    "symbolic_oracle_eps",
    "symbolic_oracle_tolerance",
    "unit_roundoff_of",
    "with_subnormal_floor",
]

#: u = 2^-(p) for p significand bits, per row of the precision table.
UNIT_ROUNDOFF = {name: row.unit_roundoff for name, row in PRECISION_TABLE.items()}
PRECISIONS = tuple(UNIT_ROUNDOFF)
#: Safety constant c per precision (the precision table says why these numbers).
SAFETY = {name: row.safety for name, row in PRECISION_TABLE.items()}


@dataclass(frozen=True)
class Tolerance:
    """``|a − e| ≤ atol + rtol·|e|`` elementwise, and why these numbers.

    With ``magnitude`` (an array shaped like the expected value: the sum of the absolute
    values of the terms each element adds, see ``backward(..., magnitudes=True)``) the
    relative part is ``rtol·magnitude`` instead: condition-aware.
    """

    atol: float
    rtol: float
    why: str
    magnitude: np.ndarray | None = None
    #: per-element absolute allowance added on top (the propagated forward rounding, measured
    #: by :func:`bpttcheck.properties.sensitivity.rounding_sensitivity`)
    extra: np.ndarray | None = None
    #: the precision-table row the allowance is for: its resolution goal decides whether a
    #: comparison under it is conclusive (None: no goal, e.g. an exact comparison)
    precision: str | None = None
    #: what makes the case hard, for an inconclusive verdict ("σ_max·γ = 3.0, T = 50")
    condition: str = ""

    def __post_init__(self):
        for name in ("atol", "rtol"):
            value = getattr(self, name)
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not value >= 0:
                raise InvalidArgument(f"{name}={value!r} (type={type(value).__name__}): expected a real number >= 0")
        if not isinstance(self.why, str):
            raise InvalidArgument(f"why={self.why!r} (type={type(self.why).__name__}): expected a string saying "
                                  "where the allowance comes from")
        if self.precision is not None:
            get_precision(self.precision)

    @property
    def goal(self) -> float | None:
        """The precision's resolution goal (None without a precision)."""
        return None if self.precision is None else get_precision(self.precision).resolution_goal

    def allowed(self, expected) -> np.ndarray:
        scale = np.abs(expected) if self.magnitude is None else np.maximum(self.magnitude, np.abs(expected))
        out = self.atol + self.rtol * scale
        return out if self.extra is None else out + self.extra

    def describe(self) -> str:
        rel = "|e|" if self.magnitude is None else "Σ|terms|"
        text = f"atol {self.atol:.1e} + rtol {self.rtol:.1e}·{rel}"
        if self.extra is not None and np.size(self.extra):
            text += f" + propagated rounding (≤ {float(np.max(self.extra)):.1e})"
        return text


def exact(why: str) -> Tolerance:
    """No allowance: the same operations in the same order (bitwise), a clamp, a bound that
    must hold as stated. ``why`` says which."""
    return Tolerance(0.0, 0.0, why)


def precision_of(dtype) -> str:
    """Name of the precision of a NumPy dtype (complex counts as its real part)."""
    try:
        kind = np.dtype(dtype).kind
    except (TypeError, ValueError):
        kind = None
    if kind is None or kind not in "fc":
        raise InvalidArgument(f"dtype={dtype!r}: expected a floating-point or complex dtype")
    name = np.finfo(np.dtype(dtype)).dtype.name
    if name not in UNIT_ROUNDOFF:
        raise InvalidArgument(f"dtype={dtype!r}: expected one of {', '.join(PRECISIONS)}")
    return name


def unit_roundoff_of(arrays) -> float:
    """The largest u among the dtypes of ``arrays`` (None entries skipped; 0 if none)."""
    return max((UNIT_ROUNDOFF[precision_of(np.asarray(a).dtype)] for a in arrays if a is not None), default=0.0)


def _degenerate_scale_fallback(magnitude) -> float:
    # One rule for a quantity whose largest |expected| is 0 or not finite: its largest finite
    # Σ|terms| when the terms were measured (all zero: exactly zero is expected, and a sum of
    # zeros is zero in any order), else 1 (the unit of the data, which are drawn at unit scale).
    if magnitude is None:
        return 1.0
    m = np.asarray(magnitude, dtype=np.float64)
    m = m[np.isfinite(m)]
    return float(m.max()) if m.size else 0.0


def implementation_tolerance(
    precision: str = "float64",
    *,
    T: int = 1,
    amplification: float | None = None,
    scale: float = 1.0,
    magnitude=None,
    sensitivity=None,
) -> Tolerance:
    """Tolerance for two implementations of the same recurrent computation (the module doc's
    formula).

    ``T`` is the number of time steps; ``scale`` the largest |expected| of the quantity
    compared; ``magnitude`` (per element, the sum of the absolute values of the terms, from
    ``backward(..., magnitudes=True)``) makes the relative part condition-aware: cancellation
    in the backward's sums cannot make a correct gradient look wrong. ``amplification`` (A ≥ 0)
    bounds the growth of a carried perturbation through the backward pass (≤ 1 in the
    contractive regime, the default where no magnitudes are given; 0 where they are, since the
    growth is already inside Σ|terms|). ``sensitivity`` (per element: how far the exact result
    moves when every input and weight moves by u relative, see
    :mod:`bpttcheck.properties.sensitivity`) adds ``c·sensitivity``: rounding made in the
    forward (a pre-activation that cancels, a state far smaller than the terms it was computed
    from) propagates into every later quantity, and this measures how much. A degenerate
    ``scale`` (0, NaN, inf) falls back to the largest finite Σ|terms| when magnitudes are
    given, else to 1.
    """
    check_choice("precision", precision, PRECISIONS)
    T = check_int("T", T, minimum=1)
    if amplification is None:
        amplification = 0.0 if magnitude is not None else 1.0
    if isinstance(amplification, bool) or not isinstance(amplification, numbers.Real) or not (
            amplification >= 0 and math.isfinite(amplification)):
        raise InvalidArgument(f"amplification={amplification!r}: expected a finite number >= 0")
    if magnitude is not None and (not isinstance(magnitude, np.ndarray) or magnitude.dtype.kind not in "fiu"):
        shown = f"array(dtype={magnitude.dtype})" if isinstance(magnitude, np.ndarray) else repr(magnitude)
        raise InvalidArgument(f"magnitude={shown}: expected None or a real array of Σ|terms| per element "
                              "(backward(..., magnitudes=True))")
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or scale < 0:
        raise InvalidArgument(f"scale={scale!r} (type={type(scale).__name__}): expected a number >= 0 "
                              "(the largest |expected| of the quantity)")
    row = get_precision(precision)
    u, c = row.unit_roundoff, row.safety
    r = c * u * (1.0 + amplification) * math.sqrt(T)
    scale = float(scale) if math.isfinite(scale) and scale > 0 else _degenerate_scale_fallback(magnitude)
    why = f"r = {c:g}·u·(1+A)·√T = {r:.1e} (u={u:.2e} for {precision}, A={amplification:.3g}, T={T})"
    if magnitude is not None:
        why += (" times each element's Σ|terms| (condition-aware: the backward rerun on magnitudes)"
                f" + r·{scale:.3g} (the quantity's largest |expected|)")
    else:
        why += f"; atol = r·{scale:.3g}, the quantity's largest |expected|"
    extra = None
    if sensitivity is not None:
        extra = c * np.asarray(sensitivity)
        why += f" + {c:g}·(the result's shift under u-relative data perturbations)"
    mag = None if magnitude is None else np.asarray(magnitude)
    floor = c * _smallest_normal(row.storage)
    if floor > r * scale:  # values below the storage's normal range flush or lose digits
        why += f"; at least {c:g}·(smallest normal {row.storage}) = {floor:.1e} (underflow)"
    return Tolerance(atol=max(r * scale, floor), rtol=r, why=why, magnitude=mag, extra=extra, precision=precision)


def _smallest_normal(storage: str) -> float:
    # bfloat16 has float32's exponent range; NumPy knows the others
    return float(np.finfo(np.float32 if storage == "bfloat16" else np.dtype(storage)).tiny)


#: Safety factor on the measured spread of the reference (see :func:`measured_tolerance`).
SPREAD_SAFETY = 64.0


def measured_tolerance(precision: str = "float64", *, T: int = 1, scale: float = 1.0, spread=0.0,
                       sensitivity=None, condition: str = "") -> Tolerance:
    """The allowance where Σ|terms| goes vacuous: long sequences, saturated or expansive cells.

    Σ|terms| multiplies the *absolute values* of the Jacobians along every path, so it grows
    like a product of |J| matrices even where the products of the Jacobians themselves shrink
    (T = 2000, weights × 20, σ_max(W_hh) = 3), and overflows to inf; an allowance built on it
    then admits any value. The rounding error itself follows the actual (signed) products, so it
    is measured instead: ``spread`` is the largest change of the quantity's elements when the
    reference reruns at this precision on data moved by one ulp (random signs, a few draws,
    :func:`bpttcheck.properties.sensitivity.rounding_spread`) — each rerun rounds differently
    and moves the data by about u, so the spread samples both the computation's own rounding
    noise and its sensitivity to the data's rounding. The allowance is

        r·(|expected| + scale) + 64·max(spread) + c·sensitivity,   r = c·u·2·√T

    the scale-based rule of :func:`implementation_tolerance` (A = 1) plus 64 times the spread of
    the whole quantity (its largest element over the draws: another implementation's rounding
    noise is a further sample of the same law; with three draws and a margin of 64 a correct
    result exceeds it with a probability far below 1e-4 even for a single-element quantity and
    a peer 5× noisier than the reference).
    """
    base = implementation_tolerance(precision, T=T, scale=scale, sensitivity=sensitivity)
    spread = np.asarray(spread, dtype=np.float64)
    s = float(np.max(spread)) if spread.size else 0.0
    why = (base.why + f" + {SPREAD_SAFETY:g}·{s:.1e} (the reference's largest spread under one-ulp "
           "perturbations of its data: Σ|terms| is vacuous here)")
    return Tolerance(atol=base.atol + SPREAD_SAFETY * s, rtol=base.rtol, why=why, extra=base.extra,
                     precision=precision, condition=condition)


def finite_difference_tolerance(error_estimate, reference: Tolerance | None = None, factor: float = 10.0) -> Tolerance:
    """Tolerance for a finite-difference value with a per-element error estimate.

    The estimate (truncation plus rounding) is multiplied by ``factor`` (an estimate is an
    order of magnitude, not a bound: within a factor 2 of the real error on the test
    functions) and added to the rounding of the analytic side (``reference``).
    """
    if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or not factor > 0:
        raise InvalidArgument(f"factor={factor!r} (type={type(factor).__name__}): expected a number > 0")
    try:
        est = float(np.max(np.abs(error_estimate))) if np.size(error_estimate) else 0.0
    except (TypeError, ValueError):
        est = None
    if est is None or not math.isfinite(est):
        shown = f"array(shape={np.shape(error_estimate)})" if isinstance(error_estimate, np.ndarray) else repr(error_estimate)
        raise InvalidArgument(f"error_estimate={shown}: expected finite error estimates (the FiniteDifference's error)")
    if reference is not None and not isinstance(reference, Tolerance):
        raise InvalidArgument(f"reference={reference!r} (type={type(reference).__name__}): expected None or the "
                              "Tolerance of the analytic side, e.g. implementation_tolerance('float64', T=...)")
    base = reference or exact("")
    return Tolerance(
        atol=base.atol + factor * est,
        rtol=base.rtol,
        why=f"{factor:g}× the finite differences' own error estimate (max {est:.1e}) + rounding",
        magnitude=base.magnitude,
        extra=base.extra,
        precision=base.precision,
        condition=base.condition,
    )


# --------------------------------------------------------------------------- norms and clipping


def norm_tolerance(grads, norm_type: float = 2.0) -> Tolerance:
    """Relative tolerance of a computed total p-norm of ``grads`` (and of ‖clip(g)‖ vs M).

    Error analysis: a sum of n nonnegative terms, each formed with one rounding, in ANY
    order, is within γ_n ≈ n·u of the exact sum (Higham, Accuracy and Stability, §4.2);
    the p-th root divides that by p and adds u; the per-tensor norms of K tensors are summed
    again (n → N + K, N the elements in all). Clipping then rounds the coefficient (add,
    reciprocal, multiply: 3u) and each product (u). Hence
    ``rtol = 2·((N+K)·u/p + 6u)`` (0 + 6u for p = inf, whose max is exact), plus
    ``2u·|ln norm|`` for p other than 1 and 2 (the rounded exponent 1/p); the 2 covers
    second-order terms. Linear in n, as the worst case is: PyTorch's float32 CPU norms
    drift by 0.5-1 ulp at n ≤ 1e3, 8-80 ulp at 1e5, 160-6000 ulp at 1e6 and 600-7600 ulp
    at 3e6 depending on the data (measured, torch 2.13 CPU; constant-like data is worst), so
    a √n law would be unsound; the bound is 5e5 ulp at 1e6.
    """
    arrays = [g for g in grads if g is not None]
    if not arrays:
        return exact("no gradients")
    p = float(norm_type)
    u = unit_roundoff_of(arrays)
    N, K = sum(a.size for a in arrays), len(arrays)
    # p = 0 counts and ±inf takes a max/min: exact. Negative p (torch only): |1/p|.
    sums = 0.0 if p == 0 or np.isinf(p) else (N + K) * u / abs(p)
    if p not in (0.0, 1.0, 2.0) and not np.isinf(p):
        # s^(1/p) with 1/p rounded: s^((1/p)(1+δ)) = s^(1/p)·s^(δ/p), a relative error of
        # u·|ln s|/p = u·|ln norm|; any norm lies within [min |g|, N^(1/p)·max |g|].
        mags = np.concatenate([np.abs(a[np.isfinite(a)]).ravel().astype(np.float64) for a in arrays])
        mags = mags[mags > 0]
        if mags.size:
            logs = (abs(np.log(mags.min())), abs(np.log(mags.max()) + np.log(N) / abs(p)))
            sums += u * (1.0 + max(logs))
    r = 2.0 * (sums + 6 * u)
    # Terms |g|^p below the normal range are rounded absolutely (or flushed to 0, as torch's
    # and the reference's float32 squares of 1e-23 are): at most N·s in the sum, s the
    # smallest subnormal, so at most (2·N·s)^(1/p) in the norm.
    s = max(float(np.finfo(a.dtype).smallest_subnormal) for a in arrays)
    atol = 0.0 if p == 0 or np.isinf(p) else float((2.0 * N * s) ** (1.0 / abs(p)))
    why = (f"rtol = 2·((N+K)·u/p + 6u) = {r:.1e}: a p-norm of N={N} elements in K={K} tensors "
           f"summed in any order, u={u:.1e}, p={p:g}; atol = (2·N·s)^(1/p) = {atol:.1e} for underflow")
    return Tolerance(atol, r, why, precision=_coarsest(arrays))


def _coarsest(arrays) -> str | None:
    names = [precision_of(np.asarray(a).dtype) for a in arrays if a is not None]
    return max(names, key=lambda n: UNIT_ROUNDOFF[n]) if names else None


def clipped_gradient_tolerance(norm_tol: Tolerance, grads) -> Tolerance:
    """Two clipped copies of the same gradients whose totals were computed differently: the
    coefficient M/(total+eps) inherits the totals' relative difference (``norm_tol``), then
    each side rounds the coefficient (add, divide, min: up to 3u) and each product (u): +4u,
    u of the gradients' coarsest dtype."""
    u = unit_roundoff_of(grads)
    return Tolerance(0.0, norm_tol.rtol + 4 * u, norm_tol.why + " + 4u for the coefficient",
                     precision=_coarsest(grads))


def coefficient_tolerance(u: float) -> Tolerance:
    """The clipping coefficient c read off as clip(g)/g: one rounding of c·g and one of the
    division, so c may exceed 1 by 2u."""
    return Tolerance(0.0, 2 * u, "c may exceed 1 by the rounding of one product")


def _smallest_subnormal(dtype) -> float:
    return float(np.finfo(np.dtype(dtype)).smallest_subnormal)


def scaled_copy_tolerance(dtype, u: float) -> Tolerance:
    """clip(g) against c·g computed in float64: one rounding of c (u, the coarsest dtype) and
    one of each product (u of this gradient's dtype), doubled for second-order terms; a
    product among the subnormals is rounded absolutely, to the subnormal spacing."""
    ui = UNIT_ROUNDOFF[precision_of(dtype)]
    return Tolerance(_smallest_subnormal(dtype), 2 * ui + 2 * u,
                     "one rounding of c and one of each product (absolute in the subnormal range)",
                     precision=precision_of(dtype))


def with_subnormal_floor(tol: Tolerance, dtype) -> Tolerance:
    """``tol`` with an absolute floor of the subnormal spacing of ``dtype`` (a product landing
    among the subnormals is rounded absolutely)."""
    return Tolerance(_smallest_subnormal(dtype), tol.rtol, tol.why, precision=tol.precision)


def idempotence_tolerance(norm_tol: Tolerance, eps: float, max_norm: float, dtype) -> Tolerance:
    """Clipping twice: the first clip leaves a norm N1 ≤ M(1+r), the second multiplies by at
    least M/(N1+eps), a relative change ≤ r + eps/M; twice ``norm_tol`` for the two norms."""
    r = 2 * norm_tol.rtol + eps / max_norm
    # no precision goal: eps/M is torch's semantics (clipping is not idempotent), not rounding
    return Tolerance(_smallest_subnormal(dtype), r, f"eps/M = {eps / max_norm:.1e} + 2·({norm_tol.why})")


def evaluation_slack(u: float, *values: float) -> float:
    """Absolute slack for comparing objective values f(x), f(x′) (and a step's size) with a
    bound: each evaluation of a smooth f rounds to a few u of its size; 64u of the sum of the
    magnitudes involved covers sums of up to ~64 rounded terms per evaluation."""
    return 64 * u * sum(abs(float(v)) for v in values)


# --------------------------------------------------------------------------- the symbolic oracle


def symbolic_oracle_eps(state_size: int, T: int) -> float:
    """The count part of the symbolic oracle's allowance (:func:`symbolic_oracle_allowance`):
    the error of a float64 gradient against the arbitrary-precision pair-sum, in eps of the
    condition scale Σ|terms| (the sum of the absolute values of every product the gradient
    adds: pair terms, the vector–Jacobian chain, the products inside each Jacobian entry).

    Each product has at most (T+1)·(n+2) rounded factors and sums (n the state size: the
    output size, plus the cell state of an LSTM), so a first-order rounding analysis bounds the
    rounding of the backward's products and sums — in any order and any grouping — by about
    (T+1)·(n+2)·u·Σ|terms| (u = eps/2); ``(T+1)·(n+2)`` eps allows twice that. It keeps the
    function atoms (tanh, σ, relu) whole, so it does not see the forward's rounding carried
    through them: that is the running bound's part.
    """
    return float((T + 1) * (state_size + 2))


def symbolic_oracle_allowance(scale, rounding, state_size: int, T: int) -> np.ndarray:
    """Allowed |error| of each float64 gradient entry against the arbitrary-precision pair-sum:

        max((T+1)·(n+2)·eps·Σ|terms|,  2·u·E)

    ``scale`` is Σ|terms| per entry (:func:`symbolic_oracle_eps`'s count bound), ``rounding``
    E per entry: the oracle's first-order *running* error bound in units of u
    (:mod:`bpttcheck.symbolic.running`) — every operation of the forward (each gate's
    pre-activation, each product and sum of a state, each atom tanh/σ/relu with its own
    rounding: ≤ 2 ulp for tanh, exp and log, σ's ≤ 4u·max(σ, 1 − σ), whether computed as
    (1 + tanh(a/2))/2 or 1/(1 + e^{−a})), of the step Jacobians and of the chain rounds by u at
    its result (a k-term sum by (k − 2)·Σ|terms| + |sum|: any order), and that rounding is
    carried to the gradient through |∂/∂input| of every later operation, through φ′ of every
    atom. So it sees what Σ|terms| cannot: cancellation inside an atom's argument (an LSTM's
    c′ = f·c + i·g = −0.152 + 0.138 carries the rounding of both products into tanh(c′), twenty
    times its own relative rounding), in a state (a GRU's (1 − z)·n + z·h), and the absolute
    error of a saturated σ′ = σ(1 − σ) formed from σ ≈ 1. Twice E covers second-order terms and
    an implementation associating its products and sums differently from the oracle.

    The larger of the two: the count bound holds for any grouping of the backward's products
    but not for the forward's rounding amplified through the atoms; the running bound holds for
    the forward as written but follows the oracle's own grouping of the backward. Measured
    (tests/test_symbolic_false_alarms.py: 16 configurations × plain, saturated and cancelling
    data × 4 seeds × 4 shapes, reference and torch): worst 0.17 of this allowance, where the
    count bound alone was exceeded in 18 of 87 rows, up to 1.2·10⁵-fold (saturated σ′ formed
    from σ ≈ 1) and 111-fold (cancelled LSTM gates); the running bound alone reaches 0.31 of
    2·u·E (0.40 in a wider run: a single product, whose bound is one rounding).
    """
    scale = np.asarray(scale, dtype=np.float64)
    rounding = np.asarray(rounding, dtype=np.float64)
    if scale.shape != rounding.shape:
        raise InvalidArgument(f"scale {scale.shape} and rounding {rounding.shape}: expected one shape")
    count = symbolic_oracle_eps(state_size, T) * 2.0 * UNIT_ROUNDOFF["float64"] * scale
    return np.maximum(count, 2.0 * UNIT_ROUNDOFF["float64"] * rounding)


def symbolic_oracle_tolerance(state_size: int, T: int, oracle: str = "", *, scale=None, rounding=None) -> Tolerance:
    """:func:`symbolic_oracle_eps` as an absolute tolerance on values divided by their
    Σ|terms| (eps = 2u of float64); ``oracle`` names the field the oracle computed in. With
    ``scale`` (Σ|terms|) and ``rounding`` (the running bound, in u) per entry, the tolerance
    is :func:`symbolic_oracle_allowance` on those divided values: where 2·u·E exceeds the count
    bound, the excess is added per entry (the forward's propagated rounding)."""
    allowed = symbolic_oracle_eps(state_size, T)
    why = f"{allowed:g} eps of the condition scale Σ|terms| ((T+1)·(n+2), a rounding bound); values divided by that scale"
    extra = None
    if rounding is not None:
        if scale is None:
            raise InvalidArgument("rounding given without scale: expected both (Σ|terms| and the running bound)")
        scale = np.asarray(scale, dtype=np.float64)
        safe = np.where(scale > 0, scale, 1.0)
        total = symbolic_oracle_allowance(scale, rounding, state_size, T) / safe
        extra = np.maximum(total - allowed * 2.0 * UNIT_ROUNDOFF["float64"], 0.0)
        why += ("; or, where larger, twice the running first-order bound on the float64 rounding (the forward's "
                "rounding carried through every atom and state)")
    if oracle:
        why += f"; oracle in {oracle}"
    return Tolerance(atol=allowed * 2.0 * UNIT_ROUNDOFF["float64"], rtol=0.0, why=why, extra=extra, precision="float64")
