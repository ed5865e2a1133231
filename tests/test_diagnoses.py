"""Say what the bug is (issue 12 item 6): each neighbouring convention has a planted bug that
triggers its diagnosis, with module targets (tests/planted/space_impl.py) and numpy targets
(tests/planted/numpy_impl.py); a correct target, or a bug that is no known convention, gets no
diagnosis; the bugs of the wider case space are caught by the coverage phases (slow, end to end)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from bpttcheck.properties.judge import compare_results, reference_results
from bpttcheck.properties.oracle.conventions import conventions, step_network
from bpttcheck.properties.oracle.diagnoses import DiagnosedMismatch, diagnose, judged
from bpttcheck.properties.compare import Mismatch
from bpttcheck.properties.strategies import make_case
from bpttcheck.reference import RecurrentConfig

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from planted import numpy_impl  # noqa: E402

R = RecurrentConfig

#: bug -> (config, make_case keywords) of a small case where it shows
CASES = {
    "gate_order_fiog": (R("lstm", 2, 3), dict(T=3, B=2)),
    "gate_order_zrn": (R("gru", 2, 3), dict(T=3, B=2)),
    "gru_reset_before": (R("gru", 2, 3), dict(T=3, B=2)),
    "forget_bias_plus_one": (R("lstm", 2, 3), dict(T=3, B=2)),
    "detach_h": (R("rnn", 2, 3), dict(T=4, B=2)),
    "detach_c": (R("lstm", 2, 3), dict(T=4, B=2)),
    "float32_matmul": (R("gru", 2, 3, num_layers=2), dict(T=4, B=2)),
    "h_n_one_step_early": (R("gru", 2, 3), dict(T=3, B=2)),
    "h_n_from_output": (R("lstm", 2, 3, bidirectional=True), dict(T=3, B=2)),
    "h_n_directions_swapped": (R("rnn", 2, 3, bidirectional=True), dict(T=3, B=2)),
    "unsorted_h_n_in_sorted_order": (R("rnn", 2, 3), dict(T=3, B=3, lengths=[1, 3, 2])),
}
SORTED_FRAGMENT = "left in the PackedSequence's sorted order"


@pytest.fixture(scope="module")
def space_impl():
    pytest.importorskip("torch")
    from planted import space_impl

    return space_impl


def _run(space_impl, bug, case):
    from bpttcheck.properties.torch_adapter import run_target

    return run_target(space_impl.make_module(case.config.cell, bug), case)


@pytest.mark.torch
@pytest.mark.parametrize("bug", sorted(CASES))
def test_each_convention_has_a_planted_bug_it_names(space_impl, bug):
    config, kw = CASES[bug]
    case = make_case(config, seed=11, **kw)
    got = _run(space_impl, bug, case)
    assert not all(c.ok for c in compare_results(case, got, raise_on_mismatch=False)), "the bug must show"
    lines = diagnose(case, got)
    fragment = space_impl.DIAGNOSED.get(bug, SORTED_FRAGMENT)
    assert any(fragment in line for line in lines), lines
    assert len(lines) == 1, lines  # one reading explains it, not a list of guesses


def _numpy_target(bug):
    def fn(case):
        return {k: v for k, v in numpy_impl.run(case, bug).items() if v is not None}
    return fn


@pytest.mark.parametrize("bug, fragment", [
    ("gru_gate_order_zrn", "Keras' GRU kernel order"),
    ("gru_bhn_outside_reset", "b_hn outside the reset product"),
])
def test_numpy_targets_get_the_diagnosis(bug, fragment):
    case = make_case(R("gru", 2, 3, num_layers=2), T=3, B=2, seed=5)
    lines = diagnose(case, _numpy_target(bug)(case))
    assert len(lines) == 1 and fragment in lines[0], lines


def test_a_float64_target_computing_in_float32_is_named():
    case = make_case(R("lstm", 2, 3, proj_size=2), T=5, B=2, seed=6)
    result, grads = case.astype(np.float32).reference()
    got = {"output": result.output, "h_n": result.h_n, "c_n": result.c_n, **grads}
    got = {k: np.asarray(v, dtype=np.float64) for k, v in got.items()}
    lines = diagnose(case, got)
    assert len(lines) == 1 and "computes in float32 inside a float64 model" in lines[0], lines


def _scaled(got, key, factor):
    out = dict(got)
    out[key] = got[key] * factor
    return out


def test_bugs_that_are_no_known_convention_get_no_diagnosis():
    for cell in ("rnn", "lstm", "gru"):
        case = make_case(R(cell, 2, 3, bidirectional=True), T=4, B=2, seed=7, lengths=[4, 2])
        right = reference_results(case)
        for key, factor in (("weight_hh_l0", 1.5), ("output", 1 + 1e-3), ("output", 1 + 1e-6), ("input", -1.0)):
            assert diagnose(case, _scaled(right, key, factor)) == [], (cell, key, factor)
        for bug in ("rnn_dwhh_with_current_state", "lstm_dc_skips_forget", "stack_no_grad_to_lower_layer"):
            if bug.startswith(("rnn", "lstm", "gru")) and not bug.startswith(cell):
                continue
            assert diagnose(case, _numpy_target(bug)(case)) == [], (cell, bug)


@pytest.mark.parametrize("per_region", [1, pytest.param(8, marks=pytest.mark.slow)])
def test_a_correct_target_never_gets_a_diagnosis(per_region):
    """torch's own results (and the independent NumPy implementation's), over drawn cases of
    every region, plus rounding-sized noise: no diagnosis."""
    torch = pytest.importorskip("torch")
    from hypothesis import given, settings

    from bpttcheck.properties.case_space import CaseSpace
    from bpttcheck.properties.torch_adapter import run_target

    rng = np.random.default_rng(0)
    seen = []
    for cell in ("rnn", "lstm", "gru"):
        space = CaseSpace(cell, bidirectional=None, proj=None, packed=cell == "gru", unbatched=cell != "gru")
        strategies = [space.main()] + [p.strategy for p in space.coverage("dev") if not p.label.startswith("long")]
        for strategy in strategies:
            @settings(max_examples=per_region, derandomize=True, database=None, deadline=None)
            @given(strategy)
            def check(case):
                got = {k: v for k, v in run_target(None, case).items() if v is not None}
                noisy = {k: v * (1 + 4e-16 * rng.standard_normal(np.shape(v))) for k, v in got.items()}
                for results in (got, noisy):
                    assert diagnose(case, results) == [], case.describe()
                if not case.unbatched:
                    assert diagnose(case, {k: v for k, v in numpy_impl.run(case).items() if v is not None}) == []
                seen.append(case)

            check()
    assert len(seen) >= 15 * per_region and torch is not None


def test_conventions_are_offered_only_where_they_apply():
    names = lambda case: " | ".join(c.name for c in conventions(case))  # noqa: E731
    rnn = names(make_case(R("rnn", 2, 3), T=2, B=1))
    assert "gate blocks" not in rnn and "reset" not in rnn and "c detached" not in rnn
    lstm = names(make_case(R("lstm", 2, 3, num_layers=2, bidirectional=True), T=2, B=2, lengths=[2, 1]))
    assert "forget gate" in lstm and "direction-major" in lstm and "sorted order" in lstm and "padded tensor" in lstm
    assert len([c for c in conventions(make_case(R("lstm", 2, 3), T=2, B=1)) if "gate blocks" in c.name]) == 23
    assert len([c for c in conventions(make_case(R("gru", 2, 3), T=2, B=1)) if "gate blocks" in c.name]) == 5


def test_the_step_loop_is_torch_s_network():
    for config, kw in [(R("lstm", 2, 3, num_layers=2, bidirectional=True, proj_size=2), dict(lengths=[4, 1, 3])),
                       (R("gru", 3, 2, num_layers=3, bias=False), dict(batch_first=True)),
                       (R("rnn", 2, 2, nonlinearity="relu", bidirectional=True), dict(lengths=[2, 4, 4]))]:
        case = make_case(config, T=4, B=3, seed=2, **kw)
        want, net = reference_results(case), step_network(case)
        for key in ("output", "h_n", "c_n"):
            if key in want:
                np.testing.assert_allclose(net[key], want[key], rtol=1e-13, atol=1e-14)


def test_the_diagnosis_is_computed_once_and_placed_before_the_reproducer():
    case = make_case(R("gru", 2, 3), T=3, B=2, seed=5)
    got = _numpy_target("gru_gate_order_zrn")(case)
    with pytest.raises(DiagnosedMismatch) as info:
        judged(case, got, context="ctx", reproducer="print('snippet')")
    calls = []
    exc = info.value
    exc._explain = (lambda inner: (lambda: calls.append(1) or inner()))(exc._explain)
    text = str(exc)
    assert str(exc) == text and calls == [1]
    assert text.index("diagnosis: the result matches") < text.index("reproduce:")
    assert isinstance(exc, Mismatch) and exc.comparison is not None


# --------------------------------------------------------------------------- end to end (slow)

#: bug -> (cell, the check it fails)
END_TO_END = {
    "gate_order_fiog": ("lstm", "gradients"), "gate_order_zrn": ("gru", "gradients"),
    "gru_reset_before": ("gru", "gradients"), "forget_bias_plus_one": ("lstm", "gradients"),
    "detach_h": ("rnn", "gradients"), "detach_c": ("lstm", "gradients"), "float32_matmul": ("gru", "gradients"),
    "h_n_one_step_early": ("gru", "gradients"), "h_n_from_output": ("lstm", "bidirectional"),
    "h_n_directions_swapped": ("rnn", "bidirectional"),
    "deep_input_from_first_layer": ("gru", "gradients"), "unbatched_drops_hx": ("lstm", "gradients"),
    "unsorted_h_n_in_sorted_order": ("rnn", "packed"), "tanh_by_exp": ("gru", "gradients"),
    "clamp_preactivation_10": ("lstm", "gradients"), "detach_every_64": ("rnn", "gradients"),
}
#: the coverage phase that must find each bug of the wider space
PHASE = {"deep_input_from_first_layer": "deep", "unbatched_drops_hx": "unbatched", "tanh_by_exp": "overflow",
         "clamp_preactivation_10": "saturated", "detach_every_64": "long sequences"}


def _verify(target, cell, check):
    from bpttcheck.properties.oracle import verify_target

    return verify_target(target, kind=f"module:{cell}", device="cpu", profile="ci", dtypes=("float64",),
                         select=f"module/{cell}/{check}[")


@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.parametrize("bug", sorted(END_TO_END))
def test_planted_bug_is_caught_and_named_end_to_end(space_impl, bug):
    cell, check = END_TO_END[bug]
    result = _verify(space_impl.make_module(cell, bug), cell, check).results[0]
    assert result.status == "fail", result.message
    if bug in space_impl.DIAGNOSED or bug == "unsorted_h_n_in_sorted_order":
        assert space_impl.DIAGNOSED.get(bug, SORTED_FRAGMENT) in result.message
    if bug in PHASE:
        assert f"found in the coverage phase: {PHASE[bug]}" in result.message


@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_the_planted_drop_in_without_a_bug_passes_every_group(space_impl, cell):
    from bpttcheck.properties.oracle import verify_target

    report = verify_target(space_impl.make_module(cell), kind=f"module:{cell}", device="cpu", profile="ci")
    assert report.ok and all(r.status == "pass" for r in report.results), report.table()
