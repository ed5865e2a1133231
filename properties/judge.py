"""The one judge of an implementation's results against the float64 reference.

``compare_results(case, got)`` takes what any implementation returned for a
:class:`~bpttcheck.properties.strategies.Case` — a dict holding "output", "h_n" ("c_n"), every
parameter's gradient by torch name, "input", "h0" ("c0"), as arrays — and compares each
quantity with the reference run in float64 on the case's values, under the tolerance policy
(:mod:`bpttcheck.properties.tolerance`). ``compare_truncated(case, got, scheme)`` does the same
for a truncated-BPTT gradient (the O(T²) pair-sum of the scheme's window is the truth).
Framework-agnostic: it imports neither torch nor any other framework, so a NumPy or JAX
target is judged exactly as a torch one.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bpttcheck.reference import GAMMA
from bpttcheck.reference.cells import cell_spec
from bpttcheck.reference.pairsum import pair_sum
from bpttcheck.reference.precision import get_precision
from bpttcheck.reference.validation import check_choice, fail

from .compare import Comparison, Mismatch, compare, resolution_of
from .sensitivity import forward_sensitivity, gradient_magnitudes, rounding_sensitivity, rounding_spread
from .strategies import Case
from .tolerance import PRECISIONS, Tolerance, implementation_tolerance, measured_tolerance

__all__ = ["case_tolerances", "compare_results", "compare_truncated", "condition_of", "judge", "reference_results",
           "truncated_gradients"]


def _sensitivity_precision(precision: str) -> str:
    # the data perturbation that mimics the forward's rounding: float64's u for float64, else
    # float32's (the coarser storage precisions are rounded to before the comparison)
    return "float64" if precision == "float64" else "float32"


def reference_results(case) -> dict:
    """The reference's forward and full BPTT on ``case`` in float64: output, h_n, (c_n), every
    gradient; h0/c0 gradients only where the case has initial states."""
    return _reference(case)[0]


def _reference(case):
    case64 = case.astype(np.float64)
    result, grads = case64.reference()
    expected = {"output": result.output, "h_n": result.h_n}
    if result.c_n is not None:
        expected["c_n"] = result.c_n
    expected.update(grads)
    full = {"output": result.output, "h_n": result.h_n, "c_n": result.c_n, **grads}
    if case.h0 is None:
        expected.pop("h0", None)
        expected.pop("c0", None)
    return expected, result, full


def truncated_gradients(case, scheme) -> dict:
    """The exact truncated-BPTT gradient of ``L = Σ⟨d_output, output⟩`` under ``scheme``."""
    c = case.astype(np.float64)
    return pair_sum(c.config, c.params, c.x, c.d_output, scheme, c.h0, c.c0)


#: Σ|terms| judges alone where its resolution is this far inside the goal; coarser than that,
#: the measured allowance is computed too and the sharper of the two judges.
_COMFORT = 1e-2


def condition_of(case) -> str:
    """What makes a case hard, in the words of an inconclusive verdict: "σ_max·γ = 3.0, T = 50",
    "σ_max·γ = 0.61, T = 2, |x| ~ 1e3" (a gate's σ′ formed from σ ≈ 1 has lost every digit)."""
    parts = []
    if case.sigma_max is not None:
        spec = cell_spec(case.config.cell)
        gamma = GAMMA[case.config.nonlinearity] if spec.takes_nonlinearity else 1.0
        parts.append(f"σ_max·γ = {case.sigma_max * gamma:.2g}")
    parts.append(f"T = {case.T}")
    if case.magnitude == "saturated":
        parts.append("saturated pre-activations")
    elif case.magnitude == "overflow":
        parts.append("|x| ~ 1e3")
    if case.config.num_layers > 2:
        parts.append(f"{case.config.num_layers} layers")
    return ", ".join(parts)


def case_tolerances(case, expected: dict, *, precision: str = "float64", compute=None,
                    forward=None, base: dict | None = None) -> dict[str, Tolerance]:
    """The condition-aware tolerance of every quantity in ``expected`` on ``case``.

    Σ|terms| comes from the full-BPTT magnitudes (a truncated or randomized gradient adds a
    subset of the same terms, so they bound its Σ|terms| too); the forward's rounding from the
    results' shift under u-relative moves of the data, ``compute(case) -> dict`` naming the
    quantities (default: the reference's forward and full BPTT). ``forward``: the float64
    case's forward result, and ``base`` the float64 ``compute(case)``, when the caller has them.

    Where that allowance is loose — coarser than a hundredth of the precision's resolution goal
    — or vacuous (coarser than the goal, or not finite: the magnitude sweep overflows on long or
    expansive cases), the measured spread of the reference is computed too and the sharper of
    the two judges (:func:`~bpttcheck.properties.tolerance.measured_tolerance`,
    computed once per case and only when needed). A quantity that is coarse even so carries the
    case's condition, and its comparison is inconclusive.
    """
    case64 = case.astype(np.float64)
    mags = gradient_magnitudes(case64, forward)
    sens_precision = _sensitivity_precision(precision)
    base = base if base is not None else (compute or _full)(case64)
    sens = rounding_sensitivity(case64, sens_precision, seed=case.seed % 2**32, compute=compute, base=base)
    if any(q in expected for q in _FORWARD):
        # the forward quantities' own, sharper sample (four more forward-only draws)
        fwd = forward_sensitivity(case64, sens_precision, seed=case.seed % 2**32 + 2)
        sens = dict(sens, **{q: np.maximum(sens[q], fwd[q]) if q in sens else fwd[q] for q in fwd})
    condition = condition_of(case)
    spread = None
    out = {}
    for quantity, exp in expected.items():
        scale = float(np.max(np.abs(exp))) if np.size(exp) else 1.0
        tol = implementation_tolerance(precision, T=case.T, scale=scale, magnitude=mags.get(quantity),
                                       sensitivity=sens.get(quantity))
        resolution, _ = resolution_of(tol, exp)
        goal = get_precision(precision).resolution_goal
        if not resolution <= goal * _COMFORT:
            if spread is None:
                spread = rounding_spread(case64, sens_precision, seed=case.seed % 2**32 + 1, compute=compute,
                                         base=base)
            measured = measured_tolerance(precision, T=case.T, scale=scale if np.isfinite(scale) else 1.0,
                                          spread=spread.get(quantity, 0.0), sensitivity=sens.get(quantity),
                                          condition=condition)
            # both are allowances for the same rounding: the sharper one judges (Σ|terms| is a
            # bound; where it is loose or vacuous the measured spread is the better estimate)
            if not resolution <= resolution_of(measured, exp)[0]:
                tol = measured
        tol = replace(tol, condition=condition)
        out[quantity] = tol
    return out


_FORWARD = ("output", "h_n", "c_n")


def _full(case) -> dict:
    result, grads = case.reference()
    return {"output": result.output, "h_n": result.h_n, "c_n": result.c_n, **grads}


def judge(got: dict, expected: dict, tolerances: dict, *, context="", reproducer=None,
          raise_on_mismatch=True) -> list[Comparison]:
    """Every quantity of ``expected`` against ``got`` under its tolerance; a quantity missing
    from ``got`` mismatches (an implementation cannot pass by omission). The first mismatch
    raises :class:`Mismatch` with the report (``reproducer``: a string or a callable) unless
    ``raise_on_mismatch`` is false."""
    comparisons = []
    for quantity, exp in expected.items():
        tol = tolerances[quantity]
        if got.get(quantity) is None:
            c = Comparison(quantity, False, np.size(exp), np.size(exp), (), np.nan, np.nan, np.inf, np.inf, tol,
                           problem="missing from the implementation's results")
        else:
            c = compare(quantity, got[quantity], exp, tol)
        comparisons.append(c)
        if raise_on_mismatch and not c.ok:
            text = reproducer() if callable(reproducer) else reproducer
            raise Mismatch(c.message(context, text), c)
    return comparisons


#: Where :func:`compare_results` and :func:`compare_truncated` judge: None, here; in an isolated
#: worker (:mod:`bpttcheck.properties.oracle.sandbox_worker`), a function that sends the case and
#: the target's results to the oracle's own process and returns the comparisons made there, so
#: that nothing the target does to its process (NumPy patched, the judge replaced) decides them.
REMOTE = None


def _check_judged(case, got) -> None:
    if not isinstance(case, Case):
        fail("case", case, "a Case (bpttcheck.properties.strategies.make_case or a drawn case)")
    if not isinstance(got, dict):
        fail("got", got, "a dict of the implementation's results by name ('output', 'h_n', 'weight_hh_l0', "
                         "'input', …)")


def _remote(name: str, case, got: dict, context, reproducer, raise_on_mismatch, **kwargs) -> list[Comparison]:
    comparisons = REMOTE(name, case, got, kwargs)
    if raise_on_mismatch:
        for c in comparisons:
            if not c.ok:
                text = reproducer() if callable(reproducer) else reproducer
                raise Mismatch(c.message(context, text), c)
    return comparisons


def compare_results(case, got: dict, *, precision="float64", context="", reproducer=None,
                    raise_on_mismatch=True) -> list[Comparison]:
    """Compare an implementation's results (``got``: output, h_n, c_n and gradients keyed by
    torch names, "input", "h0", "c0") with the float64 reference on ``case``.

    A quantity the implementation did not return counts as a mismatch, so an implementation
    cannot pass by omission. ``reproducer`` is a string or a callable returning one.
    """
    _check_judged(case, got)
    check_choice("precision", precision, PRECISIONS)
    if REMOTE is not None:
        return _remote("compare_results", case, got, context, reproducer, raise_on_mismatch, precision=precision)
    expected, result, full = _reference(case)
    tolerances = case_tolerances(case, expected, precision=precision, forward=result, base=full)
    return judge(got, expected, tolerances, context=context, reproducer=reproducer,
                 raise_on_mismatch=raise_on_mismatch)


def compare_truncated(case, got: dict, scheme, *, context="", reproducer=None,
                      raise_on_mismatch=True) -> list[Comparison]:
    """Compare a truncated-BPTT gradient (``got``: every parameter by torch name, "input",
    "h0", "c0") with the pair-sum of ``scheme`` on ``case`` (float64)."""
    _check_judged(case, got)
    if REMOTE is not None:
        return _remote("compare_truncated", case, got, context, reproducer, raise_on_mismatch, scheme=scheme)
    expected = truncated_gradients(case, scheme)
    tolerances = case_tolerances(case, expected, compute=lambda c: truncated_gradients(c, scheme), base=expected)
    return judge(got, expected, tolerances, context=context, reproducer=reproducer,
                 raise_on_mismatch=raise_on_mismatch)
