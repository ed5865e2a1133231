"""The suite's one tolerance policy (SPEC §8).

Two implementations of the same function differ by rounding alone. In a recurrence, the
rounding errors of the T steps add up like a random walk (√T), and each is magnified by how
much the backward pass amplifies a perturbation of the carried adjoint (A, measured in
float64 or bounded by σ_max·γ). So a comparison allows

    |actual − expected| ≤ r·(scale + |expected|),   r = c · u · (1 + A) · √T

with u the unit roundoff of the precision in force, ``scale`` the largest |expected| of the
quantity (a gradient component cancelled to near zero is judged on the quantity's own scale,
not on itself) and c a safety constant per precision. No other size enters: the sums over the
batch and the hidden units are pairwise/blocked in NumPy and torch and were measured to stay
within this bound (tests/test_tolerance.py). Finite differences are judged against their own
error estimates instead (see :func:`finite_difference_tolerance`).

In the chaotic regime (γ·σ_max(W_hh) ≫ 1) float32 errors reach O(1) by T = 100 and no
tolerance is meaningful: float32 comparisons are generated in the contractive regime only.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
import numbers

import numpy as np

from bpttcheck.reference.validation import InvalidArgument, check_choice, check_int

__all__ = [
    "PRECISIONS",
    "UNIT_ROUNDOFF",
    "Tolerance",
    "finite_difference_tolerance",
    "implementation_tolerance",
    "precision_of",
]

#: u = 2^-(p) for p significand bits (TF32 keeps 10 explicit bits, like float16).
UNIT_ROUNDOFF = {
    "float64": 2.0**-53,
    "float32": 2.0**-24,
    "tf32": 2.0**-11,
    "float16": 2.0**-11,
    "bfloat16": 2.0**-8,
}
PRECISIONS = tuple(UNIT_ROUNDOFF)

#: Safety constant c per precision. float64: seen errors reach ~8u·√T on O(1) values
#: against torch; 64 leaves an 8× margin. Low precisions get less slack per u because u is
#: already coarse, and TF32/half errors were measured at 1–12 u (SPEC §8).
SAFETY = {"float64": 64.0, "float32": 64.0, "tf32": 32.0, "float16": 32.0, "bfloat16": 32.0}


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


def precision_of(dtype) -> str:
    """Name of the precision of a NumPy dtype (complex counts as its real part)."""
    if np.dtype(dtype).kind not in "fc":
        raise InvalidArgument(f"dtype={dtype!r}: expected a floating-point or complex dtype")
    name = np.finfo(np.dtype(dtype)).dtype.name
    if name not in UNIT_ROUNDOFF:
        raise InvalidArgument(f"dtype={dtype!r}: expected one of {', '.join(PRECISIONS)}")
    return name


def implementation_tolerance(
    precision: str = "float64",
    *,
    T: int = 1,
    amplification: float = 1.0,
    scale: float = 1.0,
    magnitude=None,
    sensitivity=None,
) -> Tolerance:
    """Tolerance for two implementations of the same recurrent computation.

    ``T`` is the number of time steps; ``amplification`` (A ≥ 0) the growth of a carried
    perturbation through the backward pass (≤ 1 in the contractive regime); ``scale`` the
    largest |expected| of the quantity compared. With ``magnitude`` (per element, the sum of
    the absolute values of the terms, from ``backward(..., magnitudes=True)``: amplification
    is already inside it) the tolerance is ``r·(max(magnitude, |e|) + scale)`` with
    r = c·u·√T: the first part covers cancellation in the backward's sums, the second the
    forward's rounding, which every state carries relative to the states' scale; ``amplification``
    is not used. ``sensitivity`` (per element: how far the exact result moves when every input
    and weight moves by u relative, see :mod:`bpttcheck.properties.sensitivity`) adds
    ``c·sensitivity``: rounding made in the forward (a pre-activation that cancels, a state
    far smaller than the terms it was computed from) propagates into every later quantity, and
    this measures how much.
    """
    check_choice("precision", precision, PRECISIONS)
    extra = None if sensitivity is None else SAFETY[precision] * np.asarray(sensitivity)
    if magnitude is not None:
        T = check_int("T", T, minimum=1)
        u, c = UNIT_ROUNDOFF[precision], SAFETY[precision]
        r = c * u * math.sqrt(T)
        scale = float(scale) if np.isfinite(scale) and scale > 0 else 0.0
        why = (f"r = {c:g}·u·√T = {r:.1e} (u={u:.2e} for {precision}, T={T}) times each element's "
               f"Σ|terms| (condition-aware: the backward rerun on magnitudes) + r·{scale:.3g} "
               "(the quantity's largest |expected|)")
        if extra is not None:
            why += f" + {SAFETY[precision]:g}·(the result's shift under u-relative data perturbations)"
        return Tolerance(atol=r * scale, rtol=r, why=why, magnitude=np.asarray(magnitude), extra=extra)
    check_choice("precision", precision, PRECISIONS)
    T = check_int("T", T, minimum=1)
    if not (amplification >= 0 and math.isfinite(amplification)):
        raise InvalidArgument(f"amplification={amplification!r}: expected a finite number >= 0")
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or scale < 0:
        raise InvalidArgument(f"scale={scale!r} (type={type(scale).__name__}): expected a number >= 0 "
                              "(the largest |expected| of the quantity)")
    u, c = UNIT_ROUNDOFF[precision], SAFETY[precision]
    r = c * u * (1.0 + amplification) * math.sqrt(T)
    scale = float(scale) if np.isfinite(scale) and scale > 0 else 1.0
    why = (
        f"r = {c:g}·u·(1+A)·√T = {r:.1e} (u={u:.2e} for {precision}, A={amplification:.3g}, "
        f"T={T}); atol = r·{scale:.3g}, the quantity's largest |expected|"
    )
    if extra is not None:
        why += f" + {c:g}·(the result's shift under u-relative data perturbations)"
    return Tolerance(atol=r * scale, rtol=r, why=why, extra=extra)


def finite_difference_tolerance(error_estimate, reference: Tolerance | None = None, factor: float = 10.0) -> Tolerance:
    """Tolerance for a finite-difference value with a per-element error estimate.

    The estimate (truncation plus rounding) is multiplied by ``factor`` (an estimate is an
    order of magnitude, not a bound) and added to the rounding of the analytic side.
    """
    if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or not factor > 0:
        raise InvalidArgument(f"factor={factor!r} (type={type(factor).__name__}): expected a number > 0")
    est = float(np.max(np.abs(error_estimate))) if np.size(error_estimate) else 0.0
    base = reference or Tolerance(0.0, 0.0, "")
    return Tolerance(
        atol=base.atol + factor * est,
        rtol=base.rtol,
        why=f"{factor:g}× the finite differences' own error estimate (max {est:.1e}) + rounding",
    )
