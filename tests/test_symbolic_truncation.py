"""Truncation schemes symbolically: window functions, surrogate = pair-sum, randomized mean."""

import numpy as np
import pytest

from bpttcheck.reference import RecurrentConfig
from bpttcheck.symbolic import truncation as tr
from bpttcheck.symbolic.truncation_identities import randomized_expectation, surrogate_vs_pair_sum

pytestmark = pytest.mark.symbolic


def test_window_functions_follow_spec():
    T = 7
    assert tr.window_function(tr.full, T) == [0] * T
    assert tr.window_function(tr.sliding_window(3), T) == [0, 0, 0, 1, 2, 3, 4]
    assert tr.window_function(tr.subsequence(3), T) == [0, 0, 0, 3, 3, 3, 6]
    # BPTT(h; h) is subsequence truncation when h divides T (the last block ends at T-1):
    assert tr.window_function(tr.williams_peng(3, 3), 6) == tr.window_function(tr.subsequence(3), 6)
    assert tr.window_function(tr.williams_peng(3, 3), T)[-1] == 4
    # Sutskever's TBPTT(k1=2, k2=3) = BPTT(3; 2):
    assert tr.window_function(tr.williams_peng(3, 2), T) == [0, 0, 1, 1, 3, 3, 4]
    for k in (7, 8, 20):
        assert tr.window_function(tr.sliding_window(k), T) == [0] * T
        assert tr.window_function(tr.subsequence(k), T) == [0] * T


@pytest.mark.parametrize("T", [1, 4, 6])
def test_window_functions_agree_with_the_truncation_engine(T):
    rt = pytest.importorskip("bpttcheck.reference.truncation")
    pairs = [(tr.sliding_window(2), rt.SlidingWindow(2)), (tr.subsequence(2), rt.Subsequence(2)),
             (tr.williams_peng(3, 2), rt.WilliamsPeng(3, 2)), (tr.full, rt.Full())]
    for mine, theirs in pairs:
        assert tr.window_function(mine, T) == list(rt.window_starts(theirs, T))


def test_pair_weights_and_randomized_weights():
    w = tr.pair_weights(3, tr.sliding_window(2))
    assert w.tolist() == [[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 1, 1]]
    r = tr.randomized_weights([2, 3, 5])
    assert r[2].tolist() == [30, 15, 5, 1] and r[0].tolist() == [2, 1, 0, 0]


SCHEMES = {
    "full": tr.full,
    "sliding window k=2": tr.sliding_window(2),
    "subsequence k=2": tr.subsequence(2),
    "Williams-Peng (2; 1)": tr.williams_peng(2, 1),
    "arbitrary f": [0, 1, 1],
    "window >= T": tr.sliding_window(3),
}


@pytest.mark.parametrize("H", [1, pytest.param(2, marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", SCHEMES)
def test_truncated_gradient_equals_pair_sum_rnn(name, H):
    config = RecurrentConfig("rnn", 1, H)
    assert surrogate_vs_pair_sum(config, 3, SCHEMES[name]).holds()
    if any(tr.window_function(SCHEMES[name], 3)):  # the neighbouring convention differs
        assert not surrogate_vs_pair_sum(config, 3, SCHEMES[name], planted="neighbour").holds()


@pytest.mark.parametrize(
    "config,T",
    [(RecurrentConfig("lstm", 1, 1), 2), (RecurrentConfig("gru", 1, 1), 2),
     pytest.param(RecurrentConfig("lstm", 1, 2), 2, marks=pytest.mark.slow),
     pytest.param(RecurrentConfig("gru", 1, 2), 2, marks=pytest.mark.slow),
     pytest.param(RecurrentConfig("lstm", 1, 1), 3, marks=pytest.mark.slow),
     pytest.param(RecurrentConfig("gru", 1, 1), 3, marks=pytest.mark.slow),
     pytest.param(RecurrentConfig("rnn", 1, 3), 4, marks=pytest.mark.slow),
     pytest.param(RecurrentConfig("rnn", 2, 2, nonlinearity="relu"), 4, marks=pytest.mark.slow),
     pytest.param(RecurrentConfig("lstm", 1, 2), 3, marks=pytest.mark.slow),
     pytest.param(RecurrentConfig("gru", 1, 2), 3, marks=pytest.mark.slow),
     pytest.param(RecurrentConfig("rnn", 1, 2), 6, marks=pytest.mark.slow)],
    ids=lambda v: v.describe() if hasattr(v, "describe") else str(v),
)
def test_truncated_gradient_equals_pair_sum_gated(config, T):
    f = tr.sliding_window(T - 1)  # some f(t) > 0, so the neighbouring convention differs
    assert surrogate_vs_pair_sum(config, T, f).holds()
    assert not surrogate_vs_pair_sum(config, T, f, planted="neighbour").holds()


def test_surrogate_gradient_by_sympys_own_diff():
    """The surrogate's gradient by ``sympy.diff`` itself (the default is reverse mode)."""
    config = RecurrentConfig("rnn", 1, 1)
    f = tr.sliding_window(2)
    assert surrogate_vs_pair_sum(config, 3, f, engine="sympy").holds()
    assert not surrogate_vs_pair_sum(config, 3, f, planted="neighbour", engine="sympy").holds()


def test_window_at_least_T_is_full_bptt():
    config = RecurrentConfig("rnn", 1, 1)
    full = surrogate_vs_pair_sum(config, 3, tr.full)
    wide = surrogate_vs_pair_sum(config, 3, tr.sliding_window(5))
    assert full.lhs == wide.lhs and full.rhs == wide.rhs


@pytest.mark.parametrize("T", [1, 2, 3, 4, pytest.param(5, marks=pytest.mark.slow), pytest.param(6, marks=pytest.mark.slow)])
def test_randomized_estimator_is_unbiased_and_controls_are_not(T):
    assert randomized_expectation(T, "compensated").holds()
    assert not randomized_expectation(T, "uncompensated").holds()
    if T > 1:  # one shared coin is unbiased only when no product has two factors
        assert not randomized_expectation(T, "shared_coin").holds()


def test_bad_window_is_rejected():
    from bpttcheck.reference import InvalidArgument

    with pytest.raises(InvalidArgument, match=r"0 <= f\(t\) <= t"):
        tr.window_function([0, 2, 1], 3)
    with pytest.raises(InvalidArgument, match="k=0"):
        tr.sliding_window(0)
