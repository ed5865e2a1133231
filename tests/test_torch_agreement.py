"""The reference agrees with torch autograd: outputs, final states and every gradient.

float64 within ~1e-13 of the condition-aware scale; float32 under the tolerance policy in the
contractive regime (torch float32 against the float64 reference on the same rounded values).
"""

import numpy as np
import pytest
from hypothesis import given

from bpttcheck.properties.strategies import cases, configs, make_case
from bpttcheck.properties.torch_checks import compare_with_torch
from bpttcheck.reference import RecurrentConfig
from bpttcheck.reference.cells import TORCH_CELLS

pytestmark = pytest.mark.torch
TORCH_ACTIVATIONS = ("tanh", "relu")


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@given(data=cases(configs(cells=("rnn", "lstm", "gru"), activations=TORCH_ACTIVATIONS)))
def test_float64_agrees_with_torch(cell, data):
    pytest.importorskip("torch")
    # the cell parameter spreads the examples; the strategy draws all cells
    compare_with_torch(data, dtype="float64")


@given(case=cases(configs(cells=TORCH_CELLS, activations=TORCH_ACTIVATIONS), regime="contractive", max_T=20))
def test_float32_agrees_with_torch_under_policy(case):
    pytest.importorskip("torch")
    compare_with_torch(case, dtype="float32")


@pytest.mark.parametrize(
    "config",
    [
        RecurrentConfig("lstm", 5, 6, num_layers=3, bidirectional=True, proj_size=3),
        RecurrentConfig("gru", 7, 5, num_layers=2, bidirectional=True, bias=False),
        RecurrentConfig("rnn", 4, 8, num_layers=2, nonlinearity="relu", bidirectional=True),
    ],
    ids=lambda c: c.describe(),
)
@pytest.mark.parametrize("batch_first", [False, True])
def test_larger_fixed_configurations(config, batch_first):
    pytest.importorskip("torch")
    case = make_case(config, T=12, B=4, seed=7, lengths=[12, 3, 7, 1], batch_first=batch_first)
    comparisons = compare_with_torch(case, dtype="float64")
    assert max(c.worst_ratio for c in comparisons) < 1


def test_a_planted_difference_is_reported_with_a_reproducer():
    torch = pytest.importorskip("torch")

    class ShiftedGRU(torch.nn.GRU):
        """torch's GRU whose output is nudged: the oracle must name the output."""

        def forward(self, input, hx=None):
            out, h = super().forward(input, hx)
            return out + 1e-9, h

    case = make_case(RecurrentConfig("gru", 2, 3), T=3, B=2, seed=1)
    with pytest.raises(AssertionError) as info:
        compare_with_torch(case, cls=ShiftedGRU)
    text = str(info.value)
    assert text.startswith("OutputMismatch: output differs (ShiftedGRU on cpu, float64")
    assert "reproduce:" in text and "RecurrentConfig(cell='gru'" in text
    assert np.isfinite(info.value.comparison.worst_abs)


# --------------------------------------------------------------------------- sharp where Σ|terms| is vacuous
#
# Σ|terms| multiplies |J| along every path: it grows exponentially with T even where the
# products of the Jacobians shrink, and the GRU's sweep overflows to inf by T = 2000, so an
# allowance built on it admits anything. Where it would, the judge measures the reference's
# rounding instead (its spread under one-ulp perturbations of the data): these tests plant
# errors in such cases and check that they are caught, or the comparison says it is
# inconclusive, and that torch's correct results are never flagged.


def _regime_case(regime, cell, T, seed=1, B=2):
    from dataclasses import replace

    sigma = {"expansive": 3.0, "deep": 1.0, "overflow": 0.5}.get(regime)
    layers = 4 if regime == "deep" else 1
    magnitude = {"overflow": "overflow", "drawn-saturated": "saturated"}.get(regime, "unit")
    case = make_case(RecurrentConfig(cell, 3, 4, num_layers=layers), T=T, B=B, seed=seed, sigma_max=sigma,
                     magnitude=magnitude)
    if regime == "saturated":  # pre-activations far beyond tanh's linear range
        case = replace(case, params={k: v * 20 for k, v in case.params.items()})
    return case


def _planted_verdicts(case, got, plant):
    """Per quantity: "caught", "inconclusive" or "missed" for ``plant`` applied to it alone."""
    from bpttcheck.properties.judge import case_tolerances, judge, reference_results

    expected = reference_results(case)
    tols = case_tolerances(case, expected)
    clean = judge(got, expected, tols, raise_on_mismatch=False)
    assert all(c.ok for c in clean), [c.message() for c in clean if not c.ok]
    assert all(np.isfinite(c.resolution) for c in clean)
    out = {}
    for c in clean:
        q = c.quantity
        planted = dict(got)
        planted[q] = plant(got[q], expected[q], tols[q])
        verdict = judge(planted, {q: expected[q]}, {q: tols[q]}, raise_on_mismatch=False)[0]
        out[q] = "caught" if not verdict.ok else ("inconclusive" if verdict.inconclusive else "missed")
    return out, clean


def _gross(a, e, tol):
    return a * 1.5 + 1


def _one_in_a_million(a, e, tol):
    """2e-6 of the quantity's scale added where the allowance is widest (the hardest place)."""
    out = np.array(a, dtype=np.float64, copy=True)
    allowed = np.broadcast_to(tol.allowed(e), np.shape(e))
    i = np.unravel_index(int(np.argmax(allowed)), np.shape(e))
    out[i] += 2e-6 * float(np.max(np.abs(e)))
    return out


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("regime, T", [("long", 300), ("saturated", 50), ("expansive", 50), ("deep", 6),
                                       ("overflow", 12), ("drawn-saturated", 12)])
def test_planted_errors_are_caught_where_magnitudes_are_vacuous(regime, cell, T):
    pytest.importorskip("torch")
    from bpttcheck.properties.torch_adapter import run_target

    case = _regime_case(regime, cell, T)
    got = run_target(None, case)
    for plant in (_gross, _one_in_a_million):
        verdicts, clean = _planted_verdicts(case, got, plant)
        assert "missed" not in verdicts.values(), (plant.__name__, verdicts)
    # and conclusive: a float64 pass resolves 1e-6. The one exception is honest: an Elman cell
    # fed |x| ~ 1e3 has φ′ = 1 − h² ≈ 1e-9 formed from h ≈ 1, whose rounding (u/φ′ relative, in
    # torch as in the reference) carries into every gradient: those are inconclusive.
    inconclusive = {c.quantity for c in clean if c.inconclusive}
    if (regime, cell) == ("overflow", "rnn"):
        assert not inconclusive & {"output", "h_n"}, inconclusive
    else:
        assert not inconclusive, inconclusive
    assert max(c.resolution for c in clean if not c.inconclusive) <= 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_planted_errors_are_caught_at_two_thousand_steps(cell):
    pytest.importorskip("torch")
    from bpttcheck.properties.torch_adapter import run_target

    case = _regime_case("long", cell, 2000)
    got = run_target(None, case)
    for plant in (_gross, _one_in_a_million):
        verdicts, clean = _planted_verdicts(case, got, plant)
        assert "missed" not in verdicts.values(), (plant.__name__, verdicts)
    assert max(c.resolution for c in clean) <= 1e-6


@pytest.mark.slow
def test_correct_torch_results_are_never_flagged_at_a_hundred_seeds():
    """100 seeds over the hard regimes (long, saturated, expansive; every cell, 1-2 layers):
    torch's own layers always pass, and every verdict states a finite resolution."""
    from bpttcheck.properties.torch_checks import compare_with_torch

    regimes = [("long", 400), ("saturated", 50), ("expansive", 60)]
    worst = 0.0
    for seed in range(100):
        regime, T = ("long", 2000) if seed % 10 == 0 else regimes[seed % 3]
        cell = ("rnn", "lstm", "gru")[(seed // 3) % 3]
        case = _regime_case(regime, cell, T, seed=seed, B=1 + seed % 3)
        comparisons = compare_with_torch(case)
        worst = max(worst, max(c.worst_ratio for c in comparisons))
        assert all(np.isfinite(c.resolution) for c in comparisons)
    assert worst < 1
