"""Say what the bug is: when a mismatch of a module, cell or numpy target disappears under a known
neighbouring convention, the report says so (as the tbptt kind does for k±1).

A convention (:mod:`~bpttcheck.properties.oracle.conventions`: gate blocks in another order, a
+1 forget-gate offset, h or c detached between steps, the GRU's reset before the matmul or b_hn
outside it, h_n from the wrong step or direction, a packed batch run through its padding) is
offered only when, on the failing case,

- it differs from torch's result (on the quantities it determines), and
- the target's result matches it,

both judged on a window of 16× the judge's own allowance (see :func:`diagnose`: "differs" and
"matches" cannot both hold for a target that passes the judge). A float64 target whose errors are
float32-sized — within 8× the error of the reference itself computed in float32 on the same case,
at least 1/100 of it and above 1e-10 relative — is said to compute in float32 inside a float64
layer (a float32 matmul or cast; Keras' torch backend does this in ``SimpleRNN`` and
``GRU(reset_after=False)``, SPEC §10). A correct target gets no diagnosis: its results match
torch's, and no convention offered differs from torch's by less than the window.

The diagnoses are computed once, for the report that is shown (:class:`DiagnosedMismatch`
computes them when its message is first read), not for every case Hypothesis tries while
shrinking.
"""

from __future__ import annotations

import numpy as np

from ..compare import Mismatch, TargetFailure
from ..judge import case_tolerances, compare_results, judge, reference_results
from ..tolerance import implementation_tolerance
from .conventions import conventions

__all__ = ["DiagnosedMismatch", "diagnose", "judged"]

#: the "same as" window, in multiples of the scale-based allowance (A = WINDOW - 1)
WINDOW = 16.0
#: float32-sized: the target's error at most this many times the float32 reference's
FLOAT32_FACTOR = 8.0


class DiagnosedMismatch(Mismatch):
    """A mismatch whose report gains the diagnoses, computed when the message is first read."""

    def __init__(self, base: Mismatch, explain):
        super().__init__(str(base), base.comparison)
        self._base, self._explain, self._text = str(base), explain, None

    def __str__(self) -> str:
        if self._text is None:
            try:
                lines = self._explain()
            except Exception as exc:  # noqa: BLE001 - a diagnosis must never hide the verdict
                lines = [f"diagnosis: not available ({type(exc).__name__}: {exc})"]
            self._text = _insert(self._base, lines)
        return self._text


def _insert(message: str, lines) -> str:
    """``lines`` added before the reproducer (a user copies the reproducer to its end)."""
    if not lines:
        return message
    head, sep, tail = message.partition("\n  reproduce:")
    return head + "".join("\n  " + s for s in lines) + sep + tail


def judged(case, got: dict, *, precision: str = "float64", context: str = "", reproducer=None):
    """:func:`~bpttcheck.properties.judge.compare_results`, its mismatch carrying the diagnoses."""
    try:
        return compare_results(case, got, precision=precision, context=context, reproducer=reproducer)
    except TargetFailure:
        raise
    except Mismatch as exc:
        raise DiagnosedMismatch(exc, lambda: diagnose(case, got, precision=precision)) from None


def _noise(tolerance, expected, precision: str, T: int) -> np.ndarray:
    """The "same as" window of a quantity: WINDOW times the judge's own (condition-aware)
    allowance, and at least WINDOW times the scale-based one, elementwise."""
    e = np.asarray(expected, dtype=np.float64)
    finite = np.abs(e[np.isfinite(e)])
    scale = float(finite.max()) if finite.size else 1.0
    base = implementation_tolerance(precision, T=T, scale=scale, amplification=WINDOW - 1.0)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.maximum(WINDOW * tolerance.allowed(e), base.allowed(e))


def _within(a, b, noise) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return False
    with np.errstate(invalid="ignore", over="ignore"):
        same = (np.abs(a - b) <= noise) | (a == b) | (np.isnan(a) & np.isnan(b))
    return bool(np.all(same))


def _scope(keys) -> str:
    forward = [k for k in keys if k in ("output", "h_n", "c_n")]
    if len(forward) == len(keys):
        return f" — in {', '.join(forward)}"
    if not forward:
        return " — in every gradient; the forward is torch's"
    return ""


def diagnose(case, got: dict, *, precision: str = "float64") -> list[str]:
    """The report lines naming every neighbouring convention the target's ``got`` matches on
    ``case`` where torch's result differs from it (see the module docstring); [] if none.

    With n the window of a quantity (:func:`_noise`, ≥ 16× the judge's allowance), a convention
    is named when it is more than 2n from torch's result somewhere and the target is within n
    of it everywhere; a target that passes the judge is within n/16 of torch's result, so it
    can never be within n of a convention 2n away: a correct target gets no diagnosis."""
    expected = reference_results(case)
    tolerances = case_tolerances(case, expected, precision=precision)
    got = {k: np.asarray(v, dtype=np.float64) for k, v in got.items() if v is not None}
    T = case.T
    noise = {k: _noise(tolerances[k], e, precision, T) for k, e in expected.items()}
    lines, matched = [], []
    for conv in conventions(case):
        try:
            alt = conv.compute(case)
        except Exception:  # noqa: BLE001 - a convention that cannot run on this case is not offered
            continue
        keys = [k for k in alt if k in expected and k in got and np.shape(got[k]) == np.shape(alt[k])]
        if not keys or all(_within(alt[k], expected[k], 2 * noise[k]) for k in keys):
            continue  # no different from torch's here: it explains nothing
        if not all(_within(got[k], alt[k], noise[k]) for k in keys):
            continue
        if any(all(k in m and _within(alt[k], m[k], noise[k]) for k in keys) for m in matched):
            continue  # the same result as a reading already named (this case cannot tell them apart)
        matched.append(alt)
        lines.append(f"diagnosis: the result matches {conv.name}{_scope(keys)}")
    if not lines and precision == "float64":
        lines += _float32_inside(case, got, expected)
    return lines


def _float32_inside(case, got, expected) -> list[str]:
    """The float32 reading (see the module docstring)."""
    if any(k not in got or np.shape(got[k]) != np.shape(e) for k, e in expected.items()):
        return []
    # Only a conclusive float64 mismatch has anything to explain; a quantity too ill-conditioned
    # for float64 (a gate's σ′ formed from σ ≈ 1 at |x| ~ 1e3) is off by O(1) in torch as in the
    # float32 reference, which says nothing about the target's precision.
    judged64 = judge(got, expected, case_tolerances(case, expected, precision="float64"), raise_on_mismatch=False)
    if all(c.ok for c in judged64):
        return []
    conclusive = {c.quantity for c in judged64 if not c.inconclusive}
    c32 = case.astype(np.float32)
    result, grads = c32.reference()  # the reference computing in float32 on the same case
    ref32 = {"output": result.output, "h_n": result.h_n, "c_n": result.c_n, **grads}
    worst_rel, ratios = 0.0, []
    for k, e in expected.items():
        if ref32.get(k) is None or k not in conclusive:
            continue
        e = np.asarray(e, dtype=np.float64)
        scale = float(np.max(np.abs(e))) if e.size else 0.0
        err = float(np.max(np.abs(got[k] - e))) if e.size else 0.0
        err32 = float(np.max(np.abs(np.asarray(ref32[k], dtype=np.float64) - e))) if e.size else 0.0
        if not np.isfinite(err):
            return []
        if err32 > 0:
            ratios.append(err / err32)
        elif err > 0:
            return []  # float32 itself is exact here, the target is not: not a float32 error
        if scale > 0:
            worst_rel = max(worst_rel, err / scale)
    if not ratios or max(ratios) > FLOAT32_FACTOR or max(ratios) < 1e-2 or worst_rel < 1e-10:
        return []
    tolerances = case_tolerances(case, expected, precision="float32")
    if not all(c.ok for c in judge(got, expected, tolerances, raise_on_mismatch=False)):
        return []
    return [f"diagnosis: the errors (up to {worst_rel:.1e} relative) are float32-sized, as large as the "
            "reference's own in float32: the layer computes in float32 inside a float64 model (a float32 "
            "matmul or cast; Keras' torch backend does this in SimpleRNN and GRU(reset_after=False))"]
