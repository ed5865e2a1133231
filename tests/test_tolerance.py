"""The tolerance policy: its numbers follow the documented formula, T and the amplification
enter as documented, and a measured float32 error study stays within it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bpttcheck.properties.strategies import make_case, sigma_for_regime
from bpttcheck.properties.compare import compare
from bpttcheck.properties.tolerance import (
    SAFETY, UNIT_ROUNDOFF, Tolerance, clipped_gradient_tolerance, exact, finite_difference_tolerance,
    implementation_tolerance, norm_tolerance, precision_of, symbolic_oracle_eps,
)
from bpttcheck.reference import GAMMA, RecurrentConfig


@pytest.mark.parametrize("precision", list(UNIT_ROUNDOFF))
def test_numbers_follow_the_formula(precision):
    tol = implementation_tolerance(precision, T=9, amplification=2.0, scale=3.0)
    r = SAFETY[precision] * UNIT_ROUNDOFF[precision] * (1 + 2.0) * 3.0  # c·u·(1+A)·√T
    assert tol.rtol == pytest.approx(r, rel=1e-15)
    assert tol.atol == pytest.approx(r * 3.0, rel=1e-15)
    assert precision in tol.why and "√T" in tol.why


def test_unit_roundoffs_are_the_formats():
    assert UNIT_ROUNDOFF["float64"] == np.finfo(np.float64).eps / 2
    assert UNIT_ROUNDOFF["float32"] == np.finfo(np.float32).eps / 2
    assert UNIT_ROUNDOFF["float16"] == np.finfo(np.float16).eps / 2


@pytest.mark.parametrize("T", [1, 4, 100, 10_000])
def test_T_enters_as_its_square_root(T):
    assert implementation_tolerance(T=T).rtol / implementation_tolerance(T=1).rtol == pytest.approx(math.sqrt(T))


@pytest.mark.parametrize("A", [0.0, 0.5, 1.0, 7.0])
def test_amplification_enters_as_one_plus_A(A):
    ratio = implementation_tolerance(amplification=A).rtol / implementation_tolerance(amplification=0.0).rtol
    assert ratio == pytest.approx(1 + A)


def test_no_other_size_enters():
    """Only T, A and the quantity's scale: the policy takes no array size at all."""
    a = implementation_tolerance("float32", T=5, scale=2.0)
    b = implementation_tolerance("float32", T=5, scale=2.0)
    assert (a.atol, a.rtol) == (b.atol, b.rtol)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_batch_and_hidden_sizes_do_not_enter(cell):
    """B and H vary over 1..64: the judge's rate r is the same at every size (no size factor),
    and the float32 reference's error stays within the allowance at every size — the sums over
    the batch and the hidden units need no allowance of their own."""
    from bpttcheck.properties.judge import case_tolerances, reference_results

    rates, worst = set(), 0.0
    for B, H in ((1, 1), (64, 1), (1, 64), (16, 32), (64, 64)):
        case = make_case(RecurrentConfig(cell, 3, H), T=5, B=B, seed=B * 100 + H,
                         sigma_max=0.8 if cell == "rnn" else None, dtype=np.float32)
        expected = reference_results(case)
        tols = case_tolerances(case, expected, precision="float32")
        rates |= {tol.rtol for tol in tols.values()}
        r32, g32 = case.reference()
        got = {"output": r32.output, "h_n": r32.h_n, "c_n": r32.c_n, **g32}
        for name, e in expected.items():
            err = np.abs(got[name].astype(np.float64) - e)
            worst = max(worst, float(np.max(err / tols[name].allowed(e))))
    r = SAFETY["float32"] * UNIT_ROUNDOFF["float32"] * math.sqrt(5)
    # r·Σ|terms| for gradients, r·(1+A) with A = 1 for outputs, states and the measured allowance
    assert rates <= {r, 2 * r}
    assert worst <= 1.0


@pytest.mark.parametrize("scale", [0.0, float("nan"), float("inf")])
def test_degenerate_scale_falls_back_to_one(scale):
    assert implementation_tolerance(scale=scale).atol == implementation_tolerance(scale=1.0).atol


def test_allowed_is_atol_plus_rtol_times_expected():
    tol = Tolerance(atol=1e-6, rtol=1e-3, why="")
    np.testing.assert_array_equal(tol.allowed(np.array([-2.0, 0.0, 5.0])), [2.001e-3, 1e-6, 5.001e-3])
    assert tol.describe() == "atol 1.0e-06 + rtol 1.0e-03·|e|"


def test_finite_difference_tolerance_adds_its_estimate_to_the_rounding():
    base = implementation_tolerance(T=4)
    tol = finite_difference_tolerance(np.array([1e-9, -3e-9]), base)
    assert tol.atol == pytest.approx(base.atol + 10 * 3e-9)
    assert tol.rtol == base.rtol
    assert finite_difference_tolerance(np.array([2e-8]), factor=2).atol == pytest.approx(4e-8)


@pytest.mark.parametrize("dtype, name", [(np.float64, "float64"), (np.float32, "float32"),
                                         (np.complex128, "float64"), (np.complex64, "float32"),
                                         (np.float16, "float16")])
def test_precision_of_a_dtype(dtype, name):
    assert precision_of(dtype) == name


def float32_error_study(n_cases: int, max_T: int, seed: int = 0) -> dict:
    """Worst |a32 − a64| / allowed per cell over contractive cases: float32 reference vs the
    float64 reference on the same (float32-rounded) values, judged by the scale-based policy."""
    rng = np.random.default_rng(seed)
    worst = {}
    for i in range(n_cases):
        cell = ("rnn", "lstm", "gru")[i % 3]
        act = str(rng.choice(["tanh", "relu", "identity", "sigmoid"])) if cell == "rnn" else "tanh"
        config = RecurrentConfig(cell, int(rng.integers(1, 9)), int(rng.integers(1, 9)),
                                 num_layers=int(rng.integers(1, 3)), nonlinearity=act,
                                 bidirectional=bool(rng.integers(2)))
        gamma = GAMMA[act] if cell == "rnn" else 1.0
        T = int(rng.integers(1, max_T + 1))
        case = make_case(config, T=T, B=int(rng.integers(1, 4)), seed=int(rng.integers(2**31)),
                         sigma_max=sigma_for_regime("contractive", gamma, rng), dtype=np.float32)
        r32, g32 = case.reference()
        r64, g64 = case.astype(np.float64).reference()
        pairs = [("output", r32.output, r64.output), ("h_n", r32.h_n, r64.h_n)]
        pairs += [(k, g32[k], g64[k]) for k in g64]
        for name, a, e in pairs:
            tol = implementation_tolerance("float32", T=T, scale=float(np.max(np.abs(e))))
            ratio = float(np.max(np.abs(a.astype(np.float64) - e) / tol.allowed(e)))
            if ratio > worst.get(cell, (0.0,))[0]:
                worst[cell] = (ratio, name, config.describe(), T)
    return worst


def test_float32_error_study_stays_within_the_policy():
    worst = float32_error_study(n_cases=45, max_T=40)
    for cell, (ratio, name, config, T) in worst.items():
        assert ratio <= 1.0, f"{cell}: {name} error {ratio:.2f}× the allowance ({config}, T={T})"
    # The allowance is not vacuous: float32 rounding is visible at a few percent of it.
    assert max(r for r, *_ in worst.values()) > 1e-3


@pytest.mark.slow
def test_float32_error_study_long_sequences():
    worst = float32_error_study(n_cases=150, max_T=400, seed=1)
    for cell, (ratio, name, config, T) in worst.items():
        assert ratio <= 1.0, f"{cell}: {name} error {ratio:.2f}× the allowance ({config}, T={T})"


# --------------------------------------------------------------------------- each allowance can fail
#
# Each allowance is put to a computation whose every step carries a systematic relative error
# of k unit roundoffs (the worst case: no cancellation among the steps' errors). One u per step
# must pass; a hundred must fail — the allowance is within a factor 100 of the rounding it is
# there to absorb, so it cannot hide a bug much larger than rounding.


def _recurrence(T, k, u, seed=0):
    """h_t = h_{t-1} + x_t (critical: nothing decays) in extended precision, and the same with
    every step's result multiplied by (1 + k·u)."""
    x = np.random.default_rng(seed).uniform(0.5, 1.5, T).astype(np.longdouble)
    h = hp = np.longdouble(0)
    exact_, perturbed = [], []
    for t in range(T):
        h, hp = h + x[t], (hp + x[t]) * (1 + np.longdouble(k * u))
        exact_.append(h)
        perturbed.append(hp)
    return np.array(perturbed, dtype=np.float64), np.array(exact_, dtype=np.float64)


def _adjoint(T, k, u, seed=0, signs=False):
    """A backward sweep g = Σ_t a_t·Π_{j<t} J_j, near-critical (|J| ∈ [0.99, 1]); the carried
    adjoint rounded up by (1 + k·u) at each step. ``signs``: random signs, so the terms cancel.
    Returns (perturbed, exact, Σ|terms|)."""
    rng = np.random.default_rng(seed)
    J = rng.uniform(0.99, 1.0, T)
    a = rng.uniform(0.5, 1.5, T)
    if signs:
        J, a = J * rng.choice((-1.0, 1.0), T), a * rng.choice((-1.0, 1.0), T)
    J, a = J.astype(np.longdouble), a.astype(np.longdouble)
    adj = adj_p = mag = np.longdouble(0)
    for t in reversed(range(T)):
        adj = adj * J[t] + a[t]
        adj_p = (adj_p * J[t] + a[t]) * (1 + np.longdouble(k * u))
        mag = mag * abs(J[t]) + abs(a[t])
    return float(adj_p), float(adj), float(mag)


def _summation(N, k, u, seed=0):
    """The 2-norm of N numbers summed in order, each partial sum rounded up by (1 + k·u)."""
    g = np.random.default_rng(seed).standard_normal(N).astype(np.longdouble)
    s = sp = np.longdouble(0)
    for v in g:
        s, sp = s + v * v, (sp + v * v) * (1 + np.longdouble(k * u))
    return float(np.sqrt(sp)), float(np.sqrt(s)), g.astype(np.float64)


def _implementation(k, precision, T):
    u = UNIT_ROUNDOFF[precision]
    got, want = _recurrence(T, k, u)
    return compare("h", got, want, implementation_tolerance(precision, T=T, scale=float(np.max(want))))


def _magnitudes(k, precision, T, signs=False):
    u = UNIT_ROUNDOFF[precision]
    got, want, mag = _adjoint(T, k, u, signs=signs)
    tol = implementation_tolerance(precision, T=T, scale=abs(want), magnitude=np.array(mag))
    return compare("g", np.array(got), np.array(want), tol)


def _norm(k, precision, N):
    u = UNIT_ROUNDOFF[precision]
    got, want, g = _summation(N, k, u)
    return compare("norm", np.array(got), np.array(want), norm_tolerance([g.astype(precision)]))


def _clipped(k, precision, N):
    """clip(g) = g·M/‖g‖ with the norm summed as in :func:`_summation` and each of the
    coefficient's three operations and the product off by k·u, against the exact clip."""
    u = UNIT_ROUNDOFF[precision]
    norm_p, norm, g = _summation(N, k, u, seed=1)
    M = 0.5 * norm
    got = g * (M / norm_p) * (1 + k * u) ** 4
    return compare("clipped", got, g * (M / norm), clipped_gradient_tolerance(norm_tolerance([g.astype(precision)]), [g.astype(precision)]))


def _symbolic(k, precision, T):
    """(T+1)·(n+2) rounded factors per product, each off by k·u, against the eps allowance."""
    n = 4
    eps = 2 * UNIT_ROUNDOFF["float64"]
    scale = 1.0
    err = (1 + k * UNIT_ROUNDOFF["float64"]) ** ((T + 1) * (n + 2)) - 1
    tol = Tolerance(symbolic_oracle_eps(n, T) * eps * scale, 0.0, "")
    return compare("g", np.array(1.0 + err), np.array(1.0), tol)


def _coefficient(k, precision, size):
    """The clipping coefficient c = 1 read back as clip(g)/g: two roundings of k·u each."""
    from bpttcheck.properties.tolerance import coefficient_tolerance

    u = UNIT_ROUNDOFF[precision]
    got = (1.0 + k * u) * (1.0 + k * u)
    return compare("c", np.array(got), np.array(1.0), coefficient_tolerance(u))


def _scaled_copy(k, precision, N):
    """clip(g) against c·g: one rounding of c and one of each product, k·u each."""
    from bpttcheck.properties.tolerance import scaled_copy_tolerance

    u = UNIT_ROUNDOFF[precision]
    g = np.random.default_rng(2).standard_normal(N).astype(precision).astype(np.float64)
    c = 0.3
    got = g * (c * (1 + k * u)) * (1 + k * u)
    return compare("clip(g)", got, g * c, scaled_copy_tolerance(precision, u))


def _finite_difference(k, precision, size):
    """A finite difference off by k times its own error estimate (the estimate's 'unit')."""
    est = np.full(size, 1e-9)
    tol = finite_difference_tolerance(est, implementation_tolerance(precision, T=4, scale=1.0), factor=10.0)
    want = np.linspace(-1.0, 1.0, size)
    return compare("fd", want + k * est * 0.2, want, tol)


ALLOWANCES = [
    ("implementation, T=100", _implementation, "float64", 100),
    ("implementation, T=1000", _implementation, "float64", 1000),
    ("implementation float32, T=100", _implementation, "float32", 100),
    ("magnitudes, T=100", _magnitudes, "float64", 100),
    ("magnitudes float32, T=1000", _magnitudes, "float32", 1000),
    ("norm, N=100", _norm, "float64", 100),
    ("norm float32, N=1000", _norm, "float32", 1000),
    ("clipped gradient", _clipped, "float32", 50),
    ("symbolic oracle, T=4", _symbolic, "float64", 4),
    ("clipping coefficient", _coefficient, "float64", 1),
    ("clip(g) = c·g", _scaled_copy, "float32", 20),
    ("finite differences (per 0.2 of their estimate)", _finite_difference, "float64", 8),
]


@pytest.mark.parametrize("name, judged, precision, size", ALLOWANCES, ids=[a[0] for a in ALLOWANCES])
def test_one_unit_roundoff_per_step_passes_and_a_hundred_fails(name, judged, precision, size):
    assert judged(1, precision, size).ok
    assert not judged(100, precision, size).ok


@pytest.mark.parametrize("T", [10, 100, 1000])
def test_cancelling_terms_pass_on_their_magnitudes(T):
    """With random signs the terms cancel: 100 u per step of them still passes on Σ|terms|
    (that is what Σ|terms| is for)."""
    got, want, mag = _adjoint(T, 1, UNIT_ROUNDOFF["float64"], signs=True)
    assert mag > 3 * abs(want)
    assert _magnitudes(100, "float64", T, signs=True).ok


@pytest.mark.parametrize("T", [1, 4, 16])
def test_short_sequences_still_catch_a_thousand_units(T):
    """At T ≤ 16 the allowance (≈ 256·u·√T of the scale) admits 100 u per step of a critical
    recurrence; a thousand fail."""
    assert _implementation(1, "float64", T).ok
    assert not _implementation(1000, "float64", T).ok


def test_exact_allows_nothing():
    tol = exact("bitwise: the same operations in the same order")
    assert compare("x", np.array([1.0]), np.array([1.0]), tol).ok
    assert not compare("x", np.array([np.nextafter(1.0, 2.0)]), np.array([1.0]), tol).ok
    assert tol.why.startswith("bitwise")


def test_degenerate_scale_with_measured_terms_falls_back_to_their_size():
    """One rule: a quantity with no |expected| to measure its scale by is judged on its largest
    Σ|terms| (all zero: exactly zero is expected)."""
    tol = implementation_tolerance(T=4, scale=0.0, magnitude=np.array([0.0, 2.0]))
    assert tol.atol == pytest.approx(tol.rtol * 2.0)
    # all zero: exactly zero is expected, up to the underflow floor (64 × the smallest normal)
    assert implementation_tolerance(T=4, scale=0.0, magnitude=np.zeros(3)).atol == 64 * np.finfo(np.float64).tiny


def test_float32_values_below_the_normal_range_are_judged_absolutely():
    """The float64 reference puts a float32 case's output at 1e-84 (|x| ~ 1e3 saturates a gate);
    float32 flushes it to 0: allowed, and a value at float32's normal scale is not."""
    tol = implementation_tolerance("float32", T=2, scale=1.9e-84)
    assert compare("output", np.array([0.0]), np.array([1.9e-84]), tol).ok
    assert not compare("output", np.array([1e-30]), np.array([1.9e-84]), tol).ok
    assert "underflow" in tol.why


# --------------------------------------------------------------------------- the measured allowance


def test_measured_tolerance_adds_the_spread_to_the_scale_rule():
    from bpttcheck.properties.tolerance import SPREAD_SAFETY, measured_tolerance

    base = implementation_tolerance("float64", T=9, scale=3.0)
    tol = measured_tolerance("float64", T=9, scale=3.0, spread=np.array([1e-15, 4e-15]), condition="T = 9")
    assert tol.rtol == base.rtol
    assert tol.atol == pytest.approx(base.atol + SPREAD_SAFETY * 4e-15)
    assert tol.precision == "float64" and tol.condition == "T = 9" and "one-ulp" in tol.why


def test_overflowing_magnitudes_never_give_an_inf_allowance():
    """The GRU's magnitude sweep overflows by T = 2000: the judge then measures instead, and no
    allowance it hands out is inf or NaN."""
    from bpttcheck.properties.judge import case_tolerances, reference_results

    from bpttcheck.properties.sensitivity import gradient_magnitudes

    case = make_case(RecurrentConfig("gru", 2, 3), T=1200, B=1, seed=4, sigma_max=3.0)
    assert np.isinf(gradient_magnitudes(case)["weight_hh_l0"]).all()  # the premise: Σ|terms| overflows
    expected = reference_results(case)
    for name, tol in case_tolerances(case, expected).items():
        allowed = tol.allowed(expected[name])
        assert np.all(np.isfinite(allowed)), name
        assert float(np.max(allowed)) <= 1e-6 * float(np.max(np.abs(expected[name]))), name
