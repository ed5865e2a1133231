"""The one comparison helper: checks arrays under a tolerance and explains a mismatch.

A mismatch report names the quantity, the worst element and its index, both values, the
tolerance, how many elements mismatch, the configuration, and how to reproduce it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bpttcheck.reference.validation import InvalidArgument, describe

from .tolerance import Tolerance

__all__ = ["Comparison", "Mismatch", "TargetFailure", "assert_close", "compare", "quantity_kind", "resolution_of"]


class Mismatch(AssertionError):
    """An implementation disagrees with an oracle; ``.comparison`` holds the details."""

    def __init__(self, message: str, comparison: "Comparison"):
        super().__init__(message)
        self.comparison = comparison


class TargetFailure(Mismatch):
    """The target raised, returned the wrong type/shape/dtype/NaN, or mutated its inputs."""

    def __init__(self, message: str):
        super().__init__(message, None)


def quantity_kind(quantity: str) -> str:
    """'Output', 'State' or 'Gradient', for the report's first word."""
    q = quantity.split()[0]
    if q in ("output", "y", "loss") or q.startswith("output"):
        return "Output"
    if q in ("h_n", "c_n", "state") or q.startswith(("h_n", "c_n")):
        return "State"
    return "Gradient"


@dataclass(frozen=True)
class Comparison:
    quantity: str
    ok: bool
    n_bad: int
    n: int
    worst_index: tuple
    got: complex | float
    expected: complex | float
    worst_abs: float
    worst_ratio: float  # max |a−e| / allowed: ≤ 1 passes
    tolerance: Tolerance
    problem: str = ""  # shape or NaN trouble, when there is any
    #: the largest allowance relative to the quantity's scale (max |expected|; absolute where
    #: the quantity is all zero): the smallest relative error the comparison is sure to see
    resolution: float = 0.0
    #: why the comparison cannot certify the quantity (its allowance would hide a relative
    #: error at the precision's resolution goal, or is not finite), or "" when it can
    inconclusive: str = ""

    def message(self, context: str = "", reproducer: str | None = None) -> str:
        head = f"{quantity_kind(self.quantity)}Mismatch: {self.quantity} differs"
        if context:
            head += f" ({context})"
        lines = [head]
        if self.problem:
            lines.append(f"  {self.problem}")
        else:
            idx = "[" + ", ".join(str(i) for i in self.worst_index) + "]"
            lines.append(
                f"  worst |a-e| = {self.worst_abs:.2e} at {idx}: got {_num(self.got)}, expected {_num(self.expected)}"
            )
            lines.append(f"  allowed {self.tolerance.describe()}; {self.n_bad}/{self.n} elements mismatch")
            if self.tolerance.why:
                lines.append(f"  tolerance: {self.tolerance.why}")
        if reproducer:
            lines.append("  reproduce:")
            lines.extend("    " + line for line in reproducer.rstrip().splitlines())
        return "\n".join(lines)


def _num(v) -> str:
    v = complex(v)
    return f"{v.real:.17g}" if v.imag == 0 else f"{v.real:.17g}{v.imag:+.3g}j"


def resolution_of(tolerance: Tolerance, expected) -> tuple[float, str]:
    """(resolution, inconclusive reason) of ``tolerance`` on ``expected``: the largest allowance
    over the finite expected elements divided by the quantity's scale (max |expected|), and a
    reason when it is not finite or coarser than the precision's resolution goal."""
    e = np.asarray(expected)
    if e.size == 0:
        return 0.0, ""
    with np.errstate(invalid="ignore", over="ignore"):
        finite = np.isfinite(e)
        if not finite.any():
            return 0.0, ""
        allowed = np.broadcast_to(np.asarray(tolerance.allowed(e), dtype=np.float64), e.shape)[finite]
        worst = float(np.max(allowed)) if allowed.size else 0.0
        if np.isnan(allowed).any():
            worst = float("nan")
        scale = float(np.max(np.abs(e[finite])))
    resolution = worst / scale if scale > 0 else worst
    if not np.isfinite(resolution):
        return float("inf"), f"the allowance is not finite ({worst!r}): {tolerance.why or 'no reason given'}"
    goal = tolerance.goal
    if goal is not None and resolution > goal:
        cond = f" ({tolerance.condition})" if tolerance.condition else ""
        return resolution, (f"ill-conditioned{cond}: the allowance is {resolution:.1e} of the quantity's scale, "
                            f"so a relative error of {goal:g} ({tolerance.precision}) would go unseen")
    return resolution, ""


def compare(quantity: str, actual, expected, tolerance: Tolerance) -> Comparison:
    """Compare elementwise; NaN or inf in ``actual`` where ``expected`` is finite mismatches.
    The comparison states its resolution and whether it is inconclusive (see
    :func:`resolution_of`)."""
    if not isinstance(tolerance, Tolerance):
        raise InvalidArgument(
            f"tolerance={tolerance!r} (type={type(tolerance).__name__}): expected a Tolerance, "
            "e.g. implementation_tolerance('float64', T=...)"
        )
    if not isinstance(quantity, str):
        raise InvalidArgument(f"quantity={quantity!r} (type={type(quantity).__name__}): expected the quantity's "
                              "name as a string, such as 'output' or 'weight_hh_l0'")
    e = np.asarray(expected)
    if e.dtype.kind not in "biufc":
        raise InvalidArgument(f"expected={describe(expected)}: expected an array of numbers (the reference's value)")
    a = np.asarray(actual) if actual is not None else None
    resolution, inconclusive = resolution_of(tolerance, e)
    if a is None or a.dtype.kind not in "biufc":
        # the implementation's side: a failed comparison (its verdict), never an exception
        return Comparison(quantity, False, e.size, e.size, (), np.nan, np.nan, np.inf, np.inf, tolerance,
                          problem=f"{describe(actual)} where an array of numbers of shape {e.shape} was expected",
                          resolution=resolution, inconclusive=inconclusive)
    if a.shape != e.shape:
        return Comparison(quantity, False, e.size, e.size, (), np.nan, np.nan, np.inf, np.inf, tolerance,
                          problem=f"shape {a.shape} where {e.shape} was expected", resolution=resolution,
                          inconclusive=inconclusive)
    if e.size == 0:
        return Comparison(quantity, True, 0, 0, (), 0.0, 0.0, 0.0, 0.0, tolerance)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(a.astype(np.result_type(a, e, np.float64)) - e)
        allowed = tolerance.allowed(e)
        same_nonfinite = ~np.isfinite(e) & ((a == e) | (np.isnan(a) & np.isnan(e)))
        bad = ~(diff <= allowed) & ~same_nonfinite
        bad |= ~np.isfinite(e) & ~same_nonfinite  # an inf allowance must not admit any value
        diff = np.where(same_nonfinite, 0.0, diff)  # inf where inf was expected is exact, not inf off
        ratio = np.where(same_nonfinite, 0.0, np.where(np.isfinite(diff), diff / np.maximum(allowed, np.finfo(float).tiny), np.inf))
    flat = int(np.argmax(ratio))
    idx = tuple(int(i) for i in np.unravel_index(flat, e.shape))
    worst_abs = float(diff[idx]) if np.isfinite(diff[idx]) else float("inf")
    return Comparison(
        quantity=quantity,
        ok=not bad.any(),
        n_bad=int(bad.sum()),
        n=int(e.size),
        worst_index=idx,
        got=a[idx].item(),
        expected=e[idx].item(),
        worst_abs=worst_abs,
        worst_ratio=float(ratio[idx]),
        tolerance=tolerance,
        resolution=resolution,
        inconclusive=inconclusive,
    )


def assert_close(
    quantity: str,
    actual,
    expected,
    tolerance: Tolerance,
    *,
    context: str = "",
    reproducer: str | None = None,
) -> Comparison:
    """:func:`compare`, raising :class:`Mismatch` with the full report when it fails."""
    result = compare(quantity, actual, expected, tolerance)
    if not result.ok:
        raise Mismatch(result.message(context, reproducer), result)
    return result
