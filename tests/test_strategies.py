"""The Hypothesis strategies: valid configurations, the σ_max regime honoured, shrinking to
the smallest shapes, and make_case's layout conventions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import find, given, settings, strategies as st

from bpttcheck.properties.strategies import REGIMES, cases, configs, make_case, sigma_for_regime
from bpttcheck.reference import GAMMA, RecurrentConfig, forward
from bpttcheck.reference.cells import TORCH_CELLS

REGIME_RANGE = {"contractive": (0.3, 0.9), "critical": (1.0, 1.0), "expansive": (1.2, 2.5)}


@given(configs(max_layers=3, max_size=5))
def test_generated_configs_are_valid_and_consistent(config):
    assert RecurrentConfig(**config.__dict__) == config  # re-validates every field
    assert 1 <= config.num_layers <= 3 and 1 <= config.hidden_size <= 5
    assert config.proj_size == 0 or (config.cell == "lstm" and config.proj_size < config.hidden_size)
    assert config.nonlinearity == "tanh" or config.cell == "rnn"


@given(cases())
def test_generated_cases_run_and_have_consistent_shapes(case):
    c = case.config
    LD = c.num_layers * c.num_directions
    result = forward(c, case.params, case.x, case.h0, case.c0, lengths=case.lengths, batch_first=case.batch_first)
    assert case.d_output.shape == result.output.shape
    assert case.d_h_n.shape == result.h_n.shape == (LD, case.B, c.output_size)
    assert case.h0 is None or case.h0.shape == (LD, case.B, c.output_size)
    if case.lengths is not None:
        assert len(case.lengths) == case.B and 1 <= min(case.lengths) and max(case.lengths) <= case.T


@given(cases())
def test_no_regime_leaves_torch_default_init(case):
    assert case.sigma_max is None
    bound = 1 / np.sqrt(case.config.hidden_size)
    assert all(np.abs(v).max() <= bound for v in case.params.values())


@pytest.mark.parametrize("regime", REGIMES)
@given(data=st.data())
def test_sigma_max_regime_is_honoured(regime, data):
    case = data.draw(cases(regime=regime))
    c = case.config
    gamma = GAMMA[c.nonlinearity] if c.cell == "rnn" else 1.0
    lo, hi = REGIME_RANGE[regime]
    assert lo - 1e-12 <= gamma * case.sigma_max <= hi + 1e-12
    for name, w in case.params.items():
        if name.startswith("weight_hh"):
            measured = np.linalg.svd(w, compute_uv=False)[0]
            assert measured == pytest.approx(case.sigma_max, rel=1e-12), name


def test_sigma_for_regime_ranges():
    rng = np.random.default_rng(0)
    for regime, (lo, hi) in REGIME_RANGE.items():
        for gamma in (1.0, 0.25):
            s = [sigma_for_regime(regime, gamma, rng) * gamma for _ in range(200)]
            assert lo <= min(s) and max(s) <= hi


def _find(strategy, predicate):
    return find(strategy, predicate, settings=settings(database=None, max_examples=500, derandomize=True))


def test_shrinking_reaches_the_smallest_T_and_batch():
    case = _find(cases(), lambda c: c.T >= 3 and c.B >= 2)
    c = case.config
    assert (case.T, case.B) == (3, 2)
    assert (c.input_size, c.hidden_size, c.num_layers, c.bidirectional, c.proj_size) == (1, 1, 1, False, 0)
    assert case.lengths is None and not case.batch_first and case.seed == 0


def test_shrinking_reaches_the_smallest_sizes():
    config = _find(configs(cells=TORCH_CELLS), lambda c: c.num_layers == 2 and c.bidirectional and c.input_size > c.hidden_size)
    assert (config.cell, config.input_size, config.hidden_size, config.num_layers) == ("rnn", 2, 1, 2)
    lstm = _find(configs(cells=("lstm",)), lambda c: c.proj_size > 0)
    assert (lstm.hidden_size, lstm.proj_size, lstm.input_size) == (2, 1, 1)


def test_shrinking_reaches_the_smallest_padding():
    case = _find(cases(lengths=True), lambda c: c.lengths is not None and min(c.lengths) < c.T)
    assert case.T == 2 and case.B == 1 and list(case.lengths) == [1]


def test_make_case_zeroes_the_cotangent_in_padding_and_honours_layout():
    config = RecurrentConfig("gru", 2, 3, bidirectional=True)
    case = make_case(config, T=4, B=3, lengths=[4, 1, 2], batch_first=True, seed=1)
    assert case.x.shape == (3, 4, 2) and case.d_output.shape == (3, 4, 6)
    assert (case.T, case.B) == (4, 3)
    assert not case.d_output[1, 1:].any() and not case.d_output[2, 2:].any()
    assert case.d_output[0].all()
    c32 = case.astype(np.float32)
    assert c32.x.dtype == np.float32 and all(v.dtype == np.float32 for v in c32.params.values())
    assert "gru" in case.describe() and "lengths=[4, 1, 2]" in case.describe() and "batch_first" in case.describe()


def test_make_case_is_a_function_of_its_seed():
    config = RecurrentConfig("lstm", 2, 3, proj_size=1)
    a, b = make_case(config, T=3, B=2, seed=9), make_case(config, T=3, B=2, seed=9)
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.d_c_n, b.d_c_n)
    assert not np.array_equal(a.x, make_case(config, T=3, B=2, seed=10).x)
