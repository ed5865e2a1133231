"""The comparison helper: the report format of STYLE.md, NaN/inf and shape handling, and
reproducers that actually rebuild the failing values."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from bpttcheck.properties.compare import Mismatch, assert_close, compare, quantity_kind
from bpttcheck.properties.strategies import make_case
from bpttcheck.properties.tolerance import Tolerance
from bpttcheck.reference import RecurrentConfig

TOL = Tolerance(atol=1e-12, rtol=1e-10, why="a test tolerance")


def _pair():
    e = np.linspace(-1, 1, 64).reshape(8, 8)
    a = e.copy()
    a[1, 2] += 3.1e-3  # the worst
    a[5, 5] += 1e-4
    return a, e


def test_report_has_every_part_in_style_md_format():
    a, e = _pair()
    with pytest.raises(Mismatch) as info:
        assert_close("weight_hh_l0", a, e, TOL, context="lstm, T=5, B=2", reproducer="print('again')")
    lines = str(info.value).splitlines()
    assert lines[0] == "GradientMismatch: weight_hh_l0 differs (lstm, T=5, B=2)"
    m = re.fullmatch(r"  worst \|a-e\| = (\S+) at \[1, 2\]: got (\S+), expected (\S+)", lines[1])
    assert m, lines[1]
    assert float(m[1]) == pytest.approx(3.1e-3, rel=1e-2)
    assert float(m[2]) == a[1, 2] and float(m[3]) == e[1, 2]  # printed exactly (17 digits)
    assert lines[2] == "  allowed atol 1.0e-12 + rtol 1.0e-10·|e|; 2/64 elements mismatch"
    assert lines[3] == "  tolerance: a test tolerance"
    assert lines[4:] == ["  reproduce:", "    print('again')"]
    c = info.value.comparison
    assert (c.n_bad, c.n, c.worst_index, c.ok) == (2, 64, (1, 2), False)


@pytest.mark.parametrize("quantity, kind", [
    ("output", "Output"), ("h_n", "State"), ("c_n", "State"), ("weight_ih_l0", "Gradient"),
    ("bias_hh_l1_reverse", "Gradient"), ("input", "Gradient"), ("h0", "Gradient"),
])
def test_report_kind_follows_the_quantity(quantity, kind):
    assert quantity_kind(quantity) == kind


def test_worst_is_judged_relative_to_the_allowance():
    e = np.array([1000.0, 1e-3])
    a = e + np.array([1e-9, 1e-9])  # the large entry's error is allowed by rtol, the small one's is not
    c = compare("x", a, e, TOL)
    assert not c.ok and c.worst_index == (1,) and c.n_bad == 1


def test_passing_comparison_reports_its_margin():
    e = np.ones(3)
    c = assert_close("output", e + 1e-13, e, TOL)
    assert c.ok and c.n_bad == 0 and 0 < c.worst_ratio <= 1


def test_nan_where_finite_is_expected_mismatches_and_is_located():
    e = np.zeros((2, 3))
    a = e.copy()
    a[1, 0] = np.nan
    c = compare("output", a, e, TOL)
    assert not c.ok and c.worst_index == (1, 0) and np.isnan(c.got) and c.n_bad == 1
    assert "at [1, 0]: got nan" in c.message()


def test_matching_nonfinite_values_agree():
    e = np.array([np.nan, np.inf, -np.inf, 1.0])
    assert compare("g", e.copy(), e, TOL).ok
    assert not compare("g", np.array([0.0, np.inf, -np.inf, 1.0]), e, TOL).ok


@pytest.mark.parametrize("got", [-np.inf, 0.0])
def test_a_different_value_where_inf_is_expected_mismatches(got):
    e = np.array([np.inf, 1.0])
    assert not compare("g", np.array([got, 1.0]), e, TOL).ok


def test_shape_mismatch_is_reported_not_raised():
    c = compare("h_n", np.zeros((2, 3)), np.zeros((3, 2)), TOL)
    assert not c.ok
    msg = c.message("ctx")
    assert msg.splitlines()[0] == "StateMismatch: h_n differs (ctx)"
    assert "shape (2, 3) where (3, 2) was expected" in msg


def test_empty_arrays_agree():
    assert compare("x", np.zeros((0, 3)), np.zeros((0, 3)), TOL).ok


def test_complex_values_are_printed_with_their_imaginary_part():
    c = compare("x", np.array([1 + 2j]), np.array([1 + 1j]), TOL)
    assert not c.ok and "got 1+2j, expected 1+1j" in c.message()


def _case(**kw):
    config = RecurrentConfig("lstm", 2, 3, num_layers=2, bidirectional=True, proj_size=2)
    return make_case(config, T=4, B=2, seed=5, **kw)


@pytest.mark.parametrize("kw", [dict(), dict(lengths=[4, 2], batch_first=True), dict(with_h0=False)])
def test_reproducer_rebuilds_the_same_values(kw):
    case = _case(**kw)
    ns: dict = {}
    exec(case.reproducer(), ns)  # noqa: S102 - that is the point
    result, grads = case.reference()
    np.testing.assert_array_equal(ns["result"].output, result.output)
    np.testing.assert_array_equal(ns["result"].h_n, result.h_n)
    for name, g in grads.items():
        np.testing.assert_array_equal(ns["grads"][name], g, err_msg=name)


def test_reproducer_runs_stand_alone_in_a_fresh_interpreter():
    case = _case(lengths=[3, 4])
    snippet = case.reproducer("print(repr(float(result.output.sum())), repr(float(grads['weight_hh_l1'].sum())))")
    out = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, check=True).stdout.split()
    result, grads = case.reference()
    assert [float(v) for v in out] == [float(result.output.sum()), float(grads["weight_hh_l1"].sum())]


def test_a_tolerance_that_is_not_a_tolerance_is_named():
    from bpttcheck.reference import InvalidArgument

    with pytest.raises(InvalidArgument, match=r"tolerance=1e-12 \(type=float\): expected a Tolerance"):
        compare("g", np.zeros(2), np.zeros(2), 1e-12)


# --------------------------------------------------------------------------- resolution and inconclusive


def test_every_comparison_states_its_resolution():
    from bpttcheck.properties.tolerance import implementation_tolerance

    tol = implementation_tolerance("float64", T=4, scale=2.0)
    c = compare("g", np.array([1.0, -2.0]), np.array([1.0, -2.0]), tol)
    assert c.ok and not c.inconclusive
    assert c.resolution == pytest.approx(float(np.max(tol.allowed(np.array([1.0, -2.0])))) / 2.0)


def test_a_coarse_allowance_is_inconclusive_with_the_condition():
    coarse = Tolerance(0.0, 1e-3, "a vacuous bound", precision="float64", condition="σ_max·γ = 3.0, T = 50")
    c = compare("g", np.array([1.0]), np.array([1.0]), coarse)
    assert c.ok and c.resolution == pytest.approx(1e-3)
    assert c.inconclusive.startswith("ill-conditioned (σ_max·γ = 3.0, T = 50)") and "1e-06" in c.inconclusive
    # float32 resolves only 1e-2: the same allowance is conclusive there
    assert not compare("g", np.array([1.0]), np.array([1.0]), Tolerance(0.0, 1e-3, "", precision="float32")).inconclusive


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_an_allowance_that_is_not_finite_is_inconclusive(bad):
    tol = Tolerance(0.0, 1e-12, "overflowed magnitudes", magnitude=np.array([bad, 1.0]), precision="float64")
    c = compare("g", np.array([1.0, 1.0]), np.array([1.0, 1.0]), tol)
    assert c.inconclusive.startswith("the allowance is not finite")
    assert not np.isfinite(c.resolution)


def test_exact_comparisons_have_no_goal_and_resolve_everything():
    from bpttcheck.properties.tolerance import exact

    c = compare("x", np.array([3.0]), np.array([3.0]), exact("bitwise"))
    assert c.resolution == 0.0 and not c.inconclusive


def test_the_expected_non_finite_value_is_an_exact_match():
    """A PASS row showed worst |a-e| = inf for clip's non-finite check: inf returned where inf was
    expected is 0 off; NaN where inf was expected still mismatches."""
    import numpy as np

    from bpttcheck.properties.compare import compare
    from bpttcheck.properties.tolerance import Tolerance

    tol = Tolerance(atol=1e-12, rtol=0.0, why="a test tolerance")
    same = compare("total", np.array([np.inf, 1.0]), np.array([np.inf, 1.0]), tol)
    assert same.ok and same.worst_abs == 0.0
    assert not compare("total", np.array([np.nan, 1.0]), np.array([np.inf, 1.0]), tol).ok


def test_an_inconclusive_verdict_names_what_makes_the_case_hard():
    from bpttcheck.properties.judge import condition_of
    from bpttcheck.properties.strategies import make_case
    from bpttcheck.reference import RecurrentConfig

    case = make_case(RecurrentConfig("gru", 2, 3, num_layers=3), T=2, B=1, seed=0, sigma_max=0.61, magnitude="overflow")
    assert condition_of(case) == "σ_max·γ = 0.61, T = 2, |x| ~ 1e3, 3 layers"
    plain = make_case(RecurrentConfig("rnn", 2, 3), T=5, B=1, seed=0)
    assert condition_of(plain) == "T = 5"
