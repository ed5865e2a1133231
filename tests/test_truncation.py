"""Truncated BPTT: the reference's schemes against their oracles (issue 4)."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from bpttcheck.properties import truncation as props
from bpttcheck.properties.strategies import cases, configs, make_case
from bpttcheck.reference import RecurrentConfig
from bpttcheck.reference import pairsum, randomized, stateful, truncation
from bpttcheck.reference.validation import InvalidArgument
from bpttcheck.reference.truncation import (
    Full, Randomized, RandomizedHistory, SlidingWindow, Subsequence, WilliamsPeng, Window,
    truncated_backward, window_starts,
)

unidirectional = cases(configs(bidirectional=False, max_size=3), max_T=6, max_B=2, lengths=False, batch_first=False)


@st.composite
def schemes(draw, max_k=7):
    kind = draw(st.sampled_from(["full", "sub", "slide", "wp", "f"]))
    k = draw(st.integers(1, max_k))
    if kind == "full":
        return Full()
    if kind == "sub":
        return Subsequence(k)
    if kind == "slide":
        return SlidingWindow(k)
    if kind == "wp":
        return WilliamsPeng(k, draw(st.integers(1, k)))
    starts = draw(st.lists(st.integers(0, 6), min_size=8, max_size=8))
    return Window(tuple(min(s, t) for t, s in enumerate(starts)), "drawn f")


def test_module_exports():
    for mod in (truncation, pairsum, randomized, stateful, props):
        for name in mod.__all__:
            assert hasattr(mod, name), (mod.__name__, name)


def test_window_functions_follow_spec():
    T = 10
    assert window_starts(Subsequence(3), T).tolist() == [0, 0, 0, 3, 3, 3, 6, 6, 6, 9]
    assert window_starts(SlidingWindow(3), T).tolist() == [0, 0, 0, 1, 2, 3, 4, 5, 6, 7]
    # The seeds' k-truncated BPTT f(t) = max(0, t-k) is our window of k+1 steps.
    assert window_starts(SlidingWindow.seeds_convention(3), T).tolist() == [max(0, t - 3) for t in range(T)]
    # BPTT(h; h') block ends 1, 3, 5, 7, 9; back 4 steps from each end.
    assert window_starts(WilliamsPeng(4, 2), T).tolist() == [0, 0, 0, 0, 2, 2, 4, 4, 6, 6]
    # Subsequence(k) = BPTT(k; k) only when k divides T: SPEC §3's last block ends at T-1 and
    # reaches back h steps from there, while the last chunk of a detach loop starts at k·⌊t/k⌋.
    assert window_starts(WilliamsPeng(3, 3), 9).tolist() == window_starts(Subsequence(3), 9).tolist()
    assert window_starts(WilliamsPeng(3, 3), T).tolist()[-1] == 7 != window_starts(Subsequence(3), T).tolist()[-1]


@given(unidirectional, schemes())
def test_fast_paths_equal_pairsum(case, scheme):
    props.check_against_pairsum(props.reference_run, scheme, case)


@given(unidirectional, st.integers(1, 7))
def test_sweep_equals_windows_for_subsequence(case, k):
    a = props.reference_run(Subsequence(k), case, method="sweep").grads
    props.check_against_pairsum(lambda s, c: props.reference_run(s, c, method="windows"), Subsequence(k), case)
    props.check_against_pairsum(lambda s, c: props.reference_run(s, c, method="sweep"), Subsequence(k), case)
    assert set(a) == set(props.reference_run(Subsequence(k), case, method="windows").grads)


@settings(max_examples=10)
@given(unidirectional, schemes())
def test_truncated_gradient_is_the_surrogate_gradient(case, scheme):
    props.check_against_surrogate(props.reference_run, scheme, case)


@settings(max_examples=10)
@given(unidirectional)
def test_large_windows_equal_full_and_unit_windows_coincide(case):
    props.check_large_window_is_full(props.reference_run, case)
    props.check_unit_windows_coincide(props.reference_run, case)


@given(unidirectional, schemes())
def test_forward_never_truncated(case, scheme):
    props.check_forward_unchanged(props.reference_run, scheme, case)
    props.check_forward_unchanged(props.reference_run, Randomized((0.5,) * case.T), case)


@pytest.mark.parametrize("nonlinearity", ["tanh", "sigmoid", "relu"])
def test_contractive_error_under_geometric_bound(nonlinearity):
    cfg = RecurrentConfig("rnn", 2, 4, nonlinearity=nonlinearity)
    gamma = {"tanh": 1, "relu": 1, "sigmoid": 0.25}[nonlinearity]
    case = make_case(cfg, T=14, B=2, seed=5, sigma_max=0.75 / gamma, with_state_cotangents=False)
    envelopes, bounds = [], []
    for k in range(1, 16):
        err, bound = props.check_error_bound(SlidingWindow(k), case)
        b, env, rho = props.error_bound(SlidingWindow(k), case)
        bounds.append(b)
        envelopes.append(env)
    assert all(b1 <= b0 for b0, b1 in zip(bounds, bounds[1:]))  # fewer pairs left out
    ratios = [e1 / e0 for e0, e1 in zip(envelopes, envelopes[1:]) if e0 > 0 and e1 > 0]
    assert np.allclose(ratios, rho)  # the envelope shrinks by exactly ρ per step of window
    assert bounds[-1] == 0 and envelopes[-1] == 0
    for scheme in (Subsequence(3), WilliamsPeng(5, 2), Window(lambda t: t // 2)):
        props.check_error_bound(scheme, case)


def test_error_bound_refuses_non_contractive_and_gated_cells():
    case = make_case(RecurrentConfig("rnn", 2, 3), T=4, B=1, seed=0, sigma_max=1.5, with_state_cotangents=False)
    with pytest.raises(InvalidArgument, match="contractive"):
        props.error_bound(SlidingWindow(2), case)
    case = make_case(RecurrentConfig("gru", 2, 3), T=4, B=1, seed=0, with_state_cotangents=False)
    with pytest.raises(InvalidArgument, match="Elman"):
        props.error_bound(SlidingWindow(2), case)


def test_standard_truncation_is_biased_in_general():
    from hypothesis import find

    case = find(
        st.tuples(unidirectional, st.integers(1, 3)),
        lambda ck: ck[0].T > ck[1] and props.truncation_bias(SlidingWindow(ck[1]), ck[0]) > 1e-3,
        settings=settings(database=None, derandomize=True, max_examples=200),
    )
    assert props.truncation_bias(Subsequence(case[1]), case[0]) > 0


@pytest.mark.parametrize("cell,layers", [("rnn", 1), ("lstm", 2), ("gru", 2)])
def test_stateful_chunks_equal_whole_forward_and_subsequence(cell, layers):
    cfg = RecurrentConfig(cell, 2, 3, num_layers=layers)
    case = make_case(cfg, T=12, B=3, seed=1, with_state_cotangents=False)
    for m in (1, 3, 4, 12):
        X = stateful.to_stateful_batches(case.x, m)
        D = stateful.to_stateful_batches(case.d_output, m)
        s = stateful.stateful_backward(cfg, case.params, X, D, case.B, case.h0, case.c0)
        props.check_forward_unchanged(_stateful_run, Subsequence(m), case)
        props.check_against_pairsum(_stateful_run, Subsequence(m), case)
        assert np.array_equal(stateful.from_stateful_batches(X, case.B), case.x)
        assert s.output.shape == (X.shape[0], m, cfg.output_size)


def _stateful_run(scheme, case):
    """Keras stateful training with chunks of the scheme's k, in the run(scheme, case) form."""
    X = stateful.to_stateful_batches(case.x, scheme.k)
    D = stateful.to_stateful_batches(case.d_output, scheme.k)
    s = stateful.stateful_backward(case.config, case.params, X, D, case.B, case.h0, case.c0)
    grads = dict(s.grads)
    grads["input"] = stateful.from_stateful_batches(grads["input"], case.B)
    out = stateful.from_stateful_batches(s.output, case.B)
    return truncation.TruncationResult(out, s.h_n, s.c_n, grads, scheme)


def _problem(T=4, cell="rnn", bidirectional=False):
    cfg = RecurrentConfig(cell, 2, 3, bidirectional=bidirectional)
    c = make_case(cfg, T=max(T, 1), B=1, seed=0, with_state_cotangents=False)
    return cfg, c.params, c.x, c.d_output


BAD = [
    (lambda: Subsequence(0), "k=0 (type=int): expected an integer >= 1"),
    (lambda: SlidingWindow(-2), "k=-2"),
    (lambda: Subsequence(2.5), "k=2.5 (type=float): expected an integer"),
    (lambda: SlidingWindow("3"), "k='3' (type=str)"),
    (lambda: WilliamsPeng(2, 3), "h=2 (type=int): expected h >= h_prime=3"),
    (lambda: WilliamsPeng(2, 0), "h_prime=0"),
    (lambda: Randomized((0.5, 0.0)), "pis[1]=0.0 (type=float): expected a probability in (0, 1]"),
    (lambda: Randomized((1.2,)), "pis[0]=1.2"),
    (lambda: Randomized(()), "at least one probability"),
    (lambda: RandomizedHistory((0.5, -1)), "run_probs[1]=-1.0"),
    (lambda: truncated_backward(*_problem(4), Randomized((0.5,) * 3), xi=np.ones(4)),
     "pis has length 3: expected T=4 probabilities"),
    (lambda: truncated_backward(*_problem(4), Randomized((0.5,) * 4)), "xi=None"),
    (lambda: truncated_backward(*_problem(4), Randomized((0.5,) * 4), xi=np.ones(3)), "xi=array(shape=(1, 3)"),
    (lambda: truncated_backward(*(_problem(4)[:2] + (np.zeros((0, 1, 2)), np.zeros((0, 1, 3)))), Full()),
     "expected T >= 1 time steps"),
    (lambda: window_starts(Window(lambda t: t + 1, "f(t)=t+1"), 5), "f(0)=1: expected 0 <= f(t) <= t=0"),
    (lambda: window_starts(Window(lambda t: 0.5), 5), "f(0)=0.5 (type=float): expected an integer"),
    (lambda: window_starts(Window((0, 0)), 5), "a sequence of T=5 integers"),
    (lambda: truncated_backward(*_problem(4, bidirectional=True), Full()), "expected a unidirectional network"),
    (lambda: truncated_backward(*_problem(4), "k=3"), "scheme='k=3'"),
    (lambda: truncated_backward(*_problem(4), SlidingWindow(2), method="sweep"), "no O(T) sweep exists"),
    (lambda: randomized.exact_moments(*_problem(13), Randomized((0.5,) * 13)), "expected T <= 12"),
    (lambda: randomized.sample_xi(Randomized((0.5,)), 0, 1), "rng=0 (type=int): expected a numpy.random.Generator"),
    (lambda: stateful.to_stateful_batches(np.zeros((5, 1, 2)), 2), "m=2 (type=int): expected a divisor of T=5"),
]


@pytest.mark.parametrize("call,fragment", BAD, ids=[b[1][:40] for b in BAD])
def test_bad_input_is_named(call, fragment):
    with pytest.raises(InvalidArgument) as info:
        call()
    assert fragment in str(info.value)


# ---------------------------------------------------------------- the scheme protocol (no whitelist)


class EveryOtherCut:
    """A scheme the project does not ship: chunks of two steps, the links into t = 2, 4, … cut
    (what Subsequence(2) does, written as a plain class with no base)."""

    def window(self, T):
        return np.array([t - (t % 2) for t in range(T)])

    def crossing(self, T):
        return lambda t, dh, dc: (dh * 0, None if dc is None else dc * 0) if t and t % 2 == 0 else (dh, dc)

    def describe(self):
        return "cut every other link"


class HalfAfterKeep:
    """A randomized scheme the project does not ship: keep w.p. 1/2 after a kept link, else 1."""

    def keep_probability(self, t, kept_before):
        last = kept_before[:, -1] if t else np.zeros(kept_before.shape[0], bool)
        return np.where(last, 0.5, 1.0)

    def describe(self):
        return "half after keep"


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_any_object_with_the_protocol_is_a_scheme(cell):
    cfg, params, x, d = _problem(6, cell)
    scheme = EveryOtherCut()
    assert truncation.check_scheme(scheme) == "deterministic"
    assert window_starts(scheme, 6).tolist() == [0, 0, 2, 2, 4, 4]
    sweep = truncated_backward(cfg, params, x, d, scheme, method="sweep").grads
    windows = truncated_backward(cfg, params, x, d, scheme, method="windows").grads
    same = truncated_backward(cfg, params, x, d, Window(scheme.window(6).tolist())).grads
    for k in same:
        np.testing.assert_allclose(sweep[k], same[k], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(windows[k], same[k], rtol=1e-12, atol=1e-14)


def test_any_object_with_the_randomized_protocol_is_a_randomized_scheme():
    scheme = HalfAfterKeep()
    assert truncation.check_scheme(scheme) == "randomized" and truncation.is_randomized(scheme)
    xi, prob = randomized.enumerate_patterns(scheme, 4)
    assert np.isclose(prob.sum(), 1.0)
    np.testing.assert_allclose((prob[:, None] * xi).sum(axis=0), 1.0)  # E[ξ_t] = 1 for every t
    cfg, params, x, d = _problem(4)
    draws = randomized.sample_xi(scheme, np.random.default_rng(0), 4, n=3)
    assert truncated_backward(cfg, params, x, d, scheme, xi=draws).grads["weight_hh_l0"].shape == (3, 3)


class _Bad:
    def window(self, T):
        return [0.5] * T

    def crossing(self, T):
        return "cut"

    def describe(self):
        return "bad scheme"


class _Backwards(_Bad):
    def window(self, T):
        return np.arange(T) + 1


BAD_SCHEMES = [
    (lambda: truncated_backward(*_problem(4), object()), "it has no window, crossing, describe"),
    (lambda: window_starts(type("OnlyWindow", (), {"window": lambda self, T: np.zeros(T, int)})(), 3),
     "it has no crossing, describe"),
    (lambda: window_starts(_Bad(), 3), "scheme=bad scheme: window(3) returned [0.5, 0.5, 0.5]"),
    (lambda: window_starts(_Backwards(), 3), "scheme=bad scheme: window(3)[0]=1: expected 0 <= f(t) <= t=0"),
    (lambda: truncated_backward(*_problem(4), type("C", (_Bad,), {"window": lambda s, T: np.zeros(T, int)})()),
     "crossing(4) returned 'cut' (type=str): expected None or a rule"),
    (lambda: randomized.sample_xi(EveryOtherCut(), np.random.default_rng(0), 3), "expected a randomized scheme"),
]


@pytest.mark.parametrize("call,fragment", BAD_SCHEMES, ids=[b[1][:40] for b in BAD_SCHEMES])
def test_a_non_scheme_is_named(call, fragment):
    with pytest.raises(InvalidArgument) as info:
        call()
    assert fragment in str(info.value)
