"""The case space the oracle's checks cover (issue 12 item 3): every check of a module, cell or
numpy target draws, per group and profile, deep, saturated, overflow-prone, expansive, long,
unbatched and packed (sorted and unsorted) cases; a group draws only its own option; float32
stays contractive; the phases shrink within their region; the torch adapter's unbatched and
enforce_sorted edges agree with torch's batched form."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import find, given, settings

from bpttcheck.properties.case_space import PHASE_EXAMPLES, VERY_LONG, CaseSpace, gamma_sigma, long_range, profile_key
from bpttcheck.properties.strategies import OVERFLOW_INPUT_SCALE, make_case
from bpttcheck.reference import RecurrentConfig, forward
from bpttcheck.reference.cells import TORCH_CELLS

PROFILES = ("dev", "ci", "thorough")


def draws(strategy, n: int) -> list:
    """The first ``n`` cases Hypothesis draws from ``strategy`` (derandomized)."""
    seen = []

    @settings(max_examples=n, derandomize=True, database=None, deadline=None)
    @given(strategy)
    def collect(case):
        seen.append(case)

    collect()
    return seen


def _spaces():
    for cell in TORCH_CELLS:
        for packed in (False, True):
            for bidi in (False, True):
                yield CaseSpace(cell, bidirectional=bidi, packed=packed, unbatched=True)
        if cell == "lstm":
            yield CaseSpace(cell, proj=True, unbatched=True)
        yield CaseSpace(cell, max_layers=1, deep=False, bidirectional=False, unbatched=True, batch_first=False)


def _phase_cases(space, profile, n=None):
    out = {}
    for phase in space.coverage(profile):
        out[phase.label] = draws(phase.strategy, n or phase.max_examples)
    return out


def _first_layer_preactivations(case):
    c = case.astype(np.float64)
    x = c.x.transpose(1, 0, 2) if c.batch_first else c.x
    a = x @ c.params["weight_ih_l0"].T
    for b in ("bias_ih_l0", "bias_hh_l0"):
        if b in c.params:
            a = a + c.params[b]
    return a


@pytest.mark.parametrize("profile", ["dev", "ci", pytest.param("thorough", marks=pytest.mark.slow)])
def test_every_profile_covers_the_regions_users_hit(profile):
    lo, hi = long_range(profile)
    for space in _spaces():
        phases = _phase_cases(space, profile)
        found = {k: False for k in ("deep", "saturated", "overflow", "expansive", "critical", "contractive",
                                    "long", "unbatched", "sorted", "unsorted")}
        for label, got in phases.items():
            assert got, label
            for case in got:
                c = case.config
                found["deep"] |= c.num_layers >= 3
                if case.magnitude == "saturated":
                    a = np.abs(_first_layer_preactivations(case))
                    assert np.median(a) > 10, (label, np.median(a))
                    found["saturated"] = True
                if case.magnitude == "overflow":
                    assert np.max(np.abs(case.x)) > 0.3 * OVERFLOW_INPUT_SCALE
                    found["overflow"] = True
                gs = gamma_sigma(case)
                found["expansive"] |= gs is not None and gs > 1
                found["critical"] |= gs is not None and abs(gs - 1) < 1e-12
                found["contractive"] |= gs is not None and gs < 1
                found["long"] |= case.T >= lo
                found["unbatched"] |= case.unbatched
                if case.lengths is not None and len(set(map(int, case.lengths))) > 1:
                    found["sorted" if case.enforce_sorted else "unsorted"] = True
        need = set(found)
        if not space.deep:
            need.discard("deep")
        if space.packed:
            need.discard("unbatched")
        else:
            need -= {"sorted", "unsorted"}
        missing = sorted(k for k in need if not found[k])
        assert not missing, (space, profile, missing)


def test_long_sequences_per_profile():
    assert long_range("dev")[0] > 64 and long_range("ci")[0] >= 200
    thorough = [p for p in CaseSpace("gru").coverage("thorough") if "very long" in p.label]
    assert thorough and all(c.T == VERY_LONG for c in draws(thorough[0].strategy, 1))
    assert not [p for p in CaseSpace("gru").coverage("ci") if "very long" in p.label]
    # a few long cases per check, not all: the per-check cost stays affordable
    assert PHASE_EXAMPLES["ci"]["long"] <= 2 and PHASE_EXAMPLES["thorough"]["very_long"] == 1
    assert profile_key("bpttcheck-thorough") == "thorough" and profile_key("my-own") == "ci"


def test_a_group_draws_only_its_own_option():
    """packed always packs (even at T = 1), proj_size always projects, bidirectional always is."""
    for cell in TORCH_CELLS:
        for space in (CaseSpace(cell, packed=True), CaseSpace(cell, bidirectional=True, packed=True)):
            for case in draws(space.main(), 20) + sum(_phase_cases(space, "ci").values(), []):
                assert case.lengths is not None and not case.unbatched, case.describe()
                assert case.config.bidirectional == bool(space.bidirectional)
        for case in draws(CaseSpace(cell, packed=False).main(), 40):
            assert case.lengths is None
    proj = CaseSpace("lstm", proj=True)
    for case in draws(proj.main(), 40) + sum(_phase_cases(proj, "ci").values(), []):
        assert case.config.proj_size > 0, case.describe()


def test_float32_cases_stay_contractive():
    for cell in TORCH_CELLS:
        space = CaseSpace(cell, float64=False, unbatched=True)
        for case in draws(space.main(), 30) + sum(_phase_cases(space, "thorough", 3).values(), []):
            gs = gamma_sigma(case)
            assert gs is not None and gs < 1, case.describe()


def test_long_cases_never_expansive_so_float64_itself_does_not_overflow():
    for cell in TORCH_CELLS:
        for phase in CaseSpace(cell).coverage("thorough"):
            if "long" in phase.label:
                for case in draws(phase.strategy, 3):
                    assert gamma_sigma(case) <= 1 + 1e-12


def _shrunk(strategy, predicate):
    import warnings

    with warnings.catch_warnings():  # a long case's repr is large: Hypothesis says so
        warnings.simplefilter("ignore")
        return find(strategy, predicate, settings=settings(database=None, max_examples=300, derandomize=True))


def test_shrinking_reaches_small_cases_in_the_main_draw_and_in_each_phase():
    space = CaseSpace("lstm", packed=True)
    small = _shrunk(space.main(), lambda c: c.B >= 2)
    assert (small.T, small.B, small.config.num_layers, small.config.hidden_size) == (1, 2, 1, 1)
    long = next(p for p in space.coverage("dev") if p.label.startswith("long"))
    case = _shrunk(long.strategy, lambda c: c.B == 2)
    assert case.T == long_range("dev")[0] and case.config.num_layers == 1
    deep = next(p for p in space.coverage("ci") if p.label.startswith("deep"))
    assert min(c.config.num_layers for c in draws(deep.strategy, 3)) == 3  # the minimal case is first


def test_option_values_name_the_input_form():
    cfg = RecurrentConfig("gru", 2, 3)
    assert make_case(cfg, T=3, B=1, unbatched=True).option_values()["input"] == "unbatched Tensor"
    packed = make_case(cfg, T=3, B=2, lengths=[3, 1], enforce_sorted=True).option_values()
    assert packed["input"] == "PackedSequence" and packed["enforce_sorted"] is True
    assert make_case(cfg, T=3, B=2, with_h0=False).option_values()["hx"] == "None"


BAD = [
    (dict(T=3, B=2, unbatched=True), "an unbatched case holds one sequence (B=1)"),
    (dict(T=3, B=2, lengths=[1, 3], enforce_sorted=True), "sorted longest first"),
    (dict(T=3, B=1, magnitude="huge"), "magnitude='huge'"),
]


@pytest.mark.parametrize("kw, fragment", BAD, ids=[b[1][:20] for b in BAD])
def test_make_case_refuses_bad_regions(kw, fragment):
    from bpttcheck.reference.validation import InvalidArgument

    with pytest.raises(InvalidArgument, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        make_case(RecurrentConfig("rnn", 2, 3), **kw)


# --------------------------------------------------------------------------- torch's edges


def test_unbatched_and_sorted_packing_agree_with_torch_batched():
    torch = pytest.importorskip("torch")
    from bpttcheck.properties.judge import compare_results
    from bpttcheck.properties.torch_adapter import run_target

    for cell in TORCH_CELLS:
        cfg = RecurrentConfig(cell, 2, 3, num_layers=2, bidirectional=True)
        for bf in (False, True):
            case = make_case(cfg, T=5, B=1, seed=3, unbatched=True, batch_first=bf)
            got = run_target(None, case)
            assert got["input"].shape == case.x.shape and got["h0"].shape == case.h0.shape
            assert all(c.ok for c in compare_results(case, got, raise_on_mismatch=False))
        case = make_case(cfg, T=5, B=3, seed=4, lengths=[5, 3, 1], enforce_sorted=True)
        assert all(c.ok for c in compare_results(case, run_target(None, case), raise_on_mismatch=False))
        one = RecurrentConfig(cell, 2, 3)
        case = make_case(one, T=4, B=1, seed=5, unbatched=True)
        assert all(c.ok for c in compare_results(case, run_target(None, case, kind="cell"), raise_on_mismatch=False))
    assert torch is not None


def test_reproducer_keeps_the_region():
    case = make_case(RecurrentConfig("lstm", 2, 3), T=3, B=1, seed=1, unbatched=True, magnitude="overflow")
    text = case.reproducer()
    assert "unbatched=True" in text and "magnitude='overflow'" in text
    scope: dict = {}
    exec(compile(text, "<reproducer>", "exec"), scope)
    assert scope["case"].unbatched and scope["case"].magnitude == "overflow"


def test_saturated_gates_are_relative_accurate():
    """A saturated σ gate is computed to a few u of its own size: the ½+½·tanh(a/2) form keeps
    σ(−40) ≈ 4e-18 only to ±u absolute (no digit left), which made the tiny output o⊙tanh(c)
    of a saturated LSTM differ from torch's by 1e-12 relative."""
    import math

    u = 2.0**-53
    for a in (-5.0, -12.0, -40.0, -700.0):
        want = math.exp(a) / (1 + math.exp(a))
        # LSTM, T = 1, h0 = c0 = 0: h = σ(a_o)·tanh(σ(a_i)·tanh(a_g)); i = g = 1-ish, o = σ(a)
        cfg = RecurrentConfig("lstm", 1, 1, bias=False)
        params = {"weight_ih_l0": np.array([[3.0], [0.0], [2.0], [a]]), "weight_hh_l0": np.zeros((4, 1))}
        res = forward(cfg, params, np.ones((1, 1, 1)))
        exact = want * math.tanh(1 / (1 + math.exp(-3.0)) * math.tanh(2.0))
        assert abs(res.output.item() - exact) <= 8 * u * exact, (a, res.output.item(), exact)
        # GRU: the update gate z = σ(a) read from the forward's cache
        cfg = RecurrentConfig("gru", 1, 1, bias=False)
        params = {"weight_ih_l0": np.array([[0.5], [a], [1.0]]), "weight_hh_l0": np.zeros((3, 1))}
        z = forward(cfg, params, np.ones((2, 1, 1))).layer_cache().gates[..., 1:2]
        assert np.all(np.abs(z - want) <= 4 * u * want), (a, z, want)
