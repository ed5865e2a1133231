"""The arbitrary-precision oracle against the reference (float64), torch and itself."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from bpttcheck.properties.compare import Mismatch
from bpttcheck.reference import RecurrentConfig, init_params
from bpttcheck.symbolic import truncation as tr
from bpttcheck.properties.symbolic_checks import (
    check_against_oracle,
    check_lambdified,
    reference_gradients,
    torch_gradients,
)
from bpttcheck.symbolic.oracle import error_in_eps, pair_sum, unrolled_gradients
from bpttcheck.symbolic.precision import to_float

pytestmark = pytest.mark.symbolic

CONFIGS = [
    RecurrentConfig("rnn", 2, 2, nonlinearity="tanh"),
    RecurrentConfig("rnn", 2, 2, nonlinearity="relu"),
    RecurrentConfig("rnn", 1, 2, nonlinearity="identity"),
    RecurrentConfig("rnn", 2, 2, nonlinearity="sigmoid"),
    RecurrentConfig("rnn", 2, 1, bias=False),
    RecurrentConfig("lstm", 1, 2),
    RecurrentConfig("lstm", 1, 2, proj_size=1),
    RecurrentConfig("gru", 1, 2),
    RecurrentConfig("gru", 2, 1, bias=False),
]


def problem(config, T, B, seed, h0=True):
    rng = np.random.default_rng(seed)
    p = init_params(config, rng)
    x = rng.standard_normal((T, B, config.input_size))
    G = rng.standard_normal((T, B, config.output_size))
    L = config.num_layers
    h = rng.standard_normal((L, B, config.output_size)) if h0 else None
    c = rng.standard_normal((L, B, config.hidden_size)) if h0 and config.cell == "lstm" else None
    return p, x, G, h, c


@pytest.mark.parametrize("config", [c if c.bias else pytest.param(c, marks=pytest.mark.slow) for c in CONFIGS],
                         ids=lambda c: c.describe())
def test_transcription_matches_reference_forward(config):
    from bpttcheck.properties.tolerance import implementation_tolerance
    from bpttcheck.properties.compare import assert_close
    from bpttcheck.reference import forward

    p, x, G, h, c = problem(config, 2, 1, 5)
    oracle = pair_sum(config, p, x, G, h, c)
    out = forward(config, p, x, h, c).output
    assert_close("output", out, to_float(oracle.output), implementation_tolerance("float64", T=2),
                 context=f"SymPy transcription vs reference, {config.describe()}")


@settings(max_examples=6)  # each example may compile SymPy Jacobians for a new configuration
@given(
    config=st.sampled_from(CONFIGS),
    T=st.integers(1, 4),
    B=st.integers(1, 2),
    seed=st.integers(0, 2**16),
)
def test_reference_agrees_with_arbitrary_precision(config, T, B, seed):
    p, x, G, h, c = problem(config, T, B, seed)
    check_against_oracle(config, p, x, G, h, c)


@pytest.mark.torch
@pytest.mark.parametrize("config", [c for c in CONFIGS if c.nonlinearity in ("tanh", "relu")], ids=lambda c: c.describe())
def test_torch_agrees_with_arbitrary_precision(config):
    pytest.importorskip("torch")
    p, x, G, h, c = problem(config, 3, 2, 11)
    check_against_oracle(config, p, x, G, h, c, grads=torch_gradients(config, p, x, G, h, c), label="torch")


@pytest.mark.parametrize(
    "config,T",
    [(RecurrentConfig("rnn", 1, 2), 2), (RecurrentConfig("rnn", 1, 2, nonlinearity="relu"), 2),
     pytest.param(RecurrentConfig("rnn", 2, 2, nonlinearity="sigmoid"), 3, marks=pytest.mark.slow),
     pytest.param(RecurrentConfig("lstm", 1, 1), 2, marks=pytest.mark.slow),
     pytest.param(RecurrentConfig("gru", 1, 1), 2, marks=pytest.mark.slow)],
    ids=lambda v: v.describe() if hasattr(v, "describe") else str(v),
)
def test_unrolled_derivative_equals_pair_sum(config, T):
    """Two symbolic routes: SymPy's derivative of the unrolled loss, and the pair-sum of
    SymPy's step Jacobians, agree to 1e-50 relative (exactly for rational networks)."""
    p, x, G, h, c = problem(config, T, 1, 3)
    a = unrolled_gradients(config, p, x, G, h, c)
    b = pair_sum(config, p, x, G, h, c)
    for name, expected in b.grads.items():
        for u, v, s in zip(a.grads[name].ravel(), expected.ravel(), b.scale[name].ravel()):
            if a.field.exact:
                assert u == v, name
            else:
                assert abs(u - v) <= 1e-50 * max(s, 1e-300), name


STACKS = [
    RecurrentConfig("rnn", 2, 2, num_layers=2),
    RecurrentConfig("lstm", 1, 2, num_layers=2),
    pytest.param(RecurrentConfig("rnn", 1, 2, num_layers=2, nonlinearity="relu"), marks=pytest.mark.slow),
    pytest.param(RecurrentConfig("gru", 1, 2, num_layers=2), marks=pytest.mark.slow),
    pytest.param(RecurrentConfig("lstm", 2, 2, num_layers=2, proj_size=1), marks=pytest.mark.slow),
    pytest.param(RecurrentConfig("gru", 2, 1, num_layers=3, bias=False), marks=pytest.mark.slow),
]


def _stack_id(v):
    return v.describe() if hasattr(v, "describe") else str(v)


@pytest.mark.parametrize("config", STACKS, ids=_stack_id)
def test_stacks_agree_with_arbitrary_precision(config):
    """Two-layer (and three-layer) stacks: the reference, and torch where it has the cell."""
    p, x, G, h, c = problem(config, 3, 2, 21)
    check_against_oracle(config, p, x, G, h, c)
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    check_against_oracle(config, p, x, G, h, c, grads=torch_gradients(config, p, x, G, h, c), label="torch")


@pytest.mark.parametrize(
    "config,T",
    [(RecurrentConfig("rnn", 1, 2, num_layers=2, nonlinearity="relu"), 3),
     (RecurrentConfig("rnn", 2, 1, num_layers=2, nonlinearity="sigmoid"), 2),
     pytest.param(RecurrentConfig("lstm", 1, 2, num_layers=2), 3, marks=pytest.mark.slow),
     pytest.param(RecurrentConfig("gru", 1, 2, num_layers=2), 3, marks=pytest.mark.slow),
     pytest.param(RecurrentConfig("rnn", 1, 2, num_layers=3), 4, marks=pytest.mark.slow)],
    ids=_stack_id,
)
def test_stacks_unrolled_derivative_equals_pair_sum(config, T):
    """The unrolled stack differentiated whole = the pair-sum chaining each layer's Jacobians."""
    _routes_agree(config, T)


def _routes_agree(config, T):
    p, x, G, h, c = problem(config, T, 1, 3)
    a = unrolled_gradients(config, p, x, G, h, c)
    b = pair_sum(config, p, x, G, h, c)
    assert a.grads.keys() == b.grads.keys()
    for name, expected in b.grads.items():
        assert a.grads[name].shape == expected.shape, name
        for u, v, s in zip(a.grads[name].ravel(), expected.ravel(), b.scale[name].ravel()):
            if a.field.exact:
                assert u == v, name
            else:
                assert abs(u - v) <= 1e-50 * max(s, 1e-300), name


@pytest.mark.parametrize("cell", ["rnn", pytest.param("lstm", marks=pytest.mark.slow)])
def test_stacked_truncation_engine_agrees_with_pair_sum(cell):
    from bpttcheck.reference import truncation as rt

    config = RecurrentConfig(cell, 1, 2, num_layers=2)
    T = 4
    p, x, G, h, c = problem(config, T, 1, 17)
    for window, scheme in ((tr.sliding_window(2), rt.SlidingWindow(2)), (tr.subsequence(2), rt.Subsequence(2))):
        grads = reference_gradients(config, p, x, G, h, c, scheme=scheme)
        check_against_oracle(config, p, x, G, h, c, grads=grads, weights=tr.pair_weights(T, window), context=str(scheme))


def test_planted_swapped_layer_gradients_are_caught():
    config = RecurrentConfig("rnn", 2, 2, num_layers=2)
    p, x, G, h, c = problem(config, 3, 2, 4)
    g = reference_gradients(config, p, x, G, h, c)
    g["weight_hh_l0"], g["weight_hh_l1"] = g["weight_hh_l1"], g["weight_hh_l0"]
    with pytest.raises(Mismatch, match="weight_hh_l0 differs"):
        check_against_oracle(config, p, x, G, h, c, grads=g)


SCHEMES = [
    ("sliding window k=2", tr.sliding_window(2), "SlidingWindow", (2,)),
    ("subsequence k=2", tr.subsequence(2), "Subsequence", (2,)),
    ("Williams-Peng h=3, h'=2", tr.williams_peng(3, 2), "WilliamsPeng", (3, 2)),
    ("window >= T", tr.sliding_window(9), "SlidingWindow", (9,)),
]


@pytest.mark.parametrize("cell", ["rnn", pytest.param("lstm", marks=pytest.mark.slow), pytest.param("gru", marks=pytest.mark.slow)])
@pytest.mark.parametrize("label,window,scheme,args", SCHEMES, ids=[s[0] for s in SCHEMES])
def test_truncation_engine_agrees_with_pair_sum(cell, label, window, scheme, args):
    from bpttcheck.reference import truncation as rt

    config = RecurrentConfig(cell, 1, 2)
    T = 4
    p, x, G, h, c = problem(config, T, 2, 7)
    grads = reference_gradients(config, p, x, G, h, c, scheme=getattr(rt, scheme)(*args))
    check_against_oracle(config, p, x, G, h, c, grads=grads, weights=tr.pair_weights(T, window), context=label)


def test_randomized_engine_per_pattern_and_in_expectation():
    """Each ξ pattern against its weighted pair-sum, and the probability-weighted mean of all
    2^T patterns against full BPTT (the exact expectation; never ξ = 1 alone)."""
    import itertools

    from bpttcheck.properties.compare import assert_close
    from bpttcheck.properties.tolerance import implementation_tolerance
    from bpttcheck.reference import truncation as rt

    config = RecurrentConfig("rnn", 1, 2)
    T = 3
    pis = (0.5, 0.75, 0.25)
    p, x, G, h, _ = problem(config, T, 1, 9)
    mean = None
    for kept in itertools.product((0, 1), repeat=T):
        xi = np.array([1 / pi if k else 0.0 for pi, k in zip(pis, kept)])
        prob = np.prod([pi if k else 1 - pi for pi, k in zip(pis, kept)])
        g = reference_gradients(config, p, x, G, h, scheme=rt.Randomized(pis), xi=xi)
        check_against_oracle(config, p, x, G, h, grads=g, weights=tr.randomized_weights(xi), context=f"xi={xi}")
        mean = {k: prob * v for k, v in g.items()} if mean is None else {k: mean[k] + prob * v for k, v in g.items()}
    full = to_float(pair_sum(config, p, x, G, h).grads["weight_hh_l0"])
    assert_close("weight_hh_l0", mean["weight_hh_l0"], full,
                 implementation_tolerance("float64", T=T, amplification=4.0, scale=float(np.abs(full).max())))


def test_lambdified_gradients_agree_with_reference():
    config = RecurrentConfig("rnn", 1, 2)
    p, x, G, h, c = problem(config, 3, 1, 2)
    check_lambdified(config, p, x, G, h, c)


def test_error_in_eps_reports_units_of_epsilon():
    import sympy as sp

    e = np.array([sp.Rational(1, 3)], dtype=object)
    err = error_in_eps(np.array([1 / 3]), e, np.array([1.0]))
    assert 0 < err[0] <= 0.5  # correctly rounded: at most half an ulp of 1/3 < half eps
    assert error_in_eps(np.array([0.0]), np.array([sp.S.Zero], dtype=object), np.array([0.0]))[0] == 0


# --- planted bugs: each must be caught, naming the right quantity ---------------------------


def _planted_transposed(config, p, x, G, h, c):
    g = reference_gradients(config, p, x, G, h, c)
    g["weight_hh_l0"] = g["weight_hh_l0"].T.copy()
    return g, "weight_hh_l0"


def _planted_float32(config, p, x, G, h, c):
    from bpttcheck.reference import backward, forward

    p32 = {k: v.astype(np.float32) for k, v in p.items()}
    r = forward(config, p32, x.astype(np.float32), h.astype(np.float32))
    g = {k: v.astype(np.float64) for k, v in backward(p32, r, d_output=G.astype(np.float32)).items()}
    return g, None


def _planted_dropped_h0(config, p, x, G, h, c):
    g = reference_gradients(config, p, x, G, h, c)
    g["h0"] = np.zeros_like(g["h0"])
    return g, "h0"


@pytest.mark.parametrize("plant", [_planted_transposed, _planted_float32, _planted_dropped_h0], ids=lambda f: f.__name__)
def test_planted_gradient_bugs_are_caught(plant):
    config = RecurrentConfig("rnn", 2, 2)
    p, x, G, h, c = problem(config, 3, 2, 4)
    grads, name = plant(config, p, x, G, h, c)
    with pytest.raises(Mismatch) as info:
        check_against_oracle(config, p, x, G, h, c, grads=grads)
    if name:
        assert f"{name} differs" in str(info.value)
    assert "symbolic pair-sum" in str(info.value)


def test_planted_off_by_one_window_is_caught():
    from bpttcheck.reference import truncation as rt

    config = RecurrentConfig("rnn", 1, 2)
    T = 4
    p, x, G, h, c = problem(config, T, 1, 8)
    grads = reference_gradients(config, p, x, G, h, scheme=rt.SlidingWindow(3))  # the seeds' k=2
    with pytest.raises(Mismatch, match=r"weight_(ih|hh)_l0 differs"):
        check_against_oracle(config, p, x, G, h, grads=grads, weights=tr.pair_weights(T, tr.sliding_window(2)))


def test_planted_uncompensated_randomized_is_caught():
    config = RecurrentConfig("rnn", 1, 2)
    T = 3
    p, x, G, h, c = problem(config, T, 1, 8)
    from bpttcheck.reference import truncation as rt

    xi = np.array([1.0, 1.0, 1.0])  # kept links, but no 1/π compensation
    grads = reference_gradients(config, p, x, G, h, scheme=rt.Randomized((0.5, 0.5, 0.5)), xi=xi)
    with pytest.raises(Mismatch, match="differs"):
        check_against_oracle(config, p, x, G, h, grads=grads, weights=tr.randomized_weights([2, 2, 2]))


def test_planted_bug_in_lambdified_check_is_caught():
    config = RecurrentConfig("rnn", 1, 2)
    p, x, G, h, c = problem(config, 3, 1, 2)
    grads, name = _planted_transposed(config, p, x, G, h, c)
    with pytest.raises(Mismatch, match="weight_hh_l0 differs"):
        check_lambdified(config, p, x, G, h, c, grads=grads)


@pytest.mark.parametrize("factor,fails", [(0.9, False), (1.1, True)])
def test_stack_allowance_is_sharp(factor, fails):
    """One gradient entry of a two-layer stack moved by ``factor`` times the allowance (in
    eps of its Σ|terms|, n counting both layers' states) passes below it and fails above."""
    from bpttcheck.properties.symbolic_checks import oracle_tolerance_eps
    from bpttcheck.symbolic.precision import EPS64

    config = RecurrentConfig("lstm", 1, 2, num_layers=2)
    T = 2
    p, x, G, h, c = problem(config, T, 1, 6)
    exact = pair_sum(config, p, x, G, h, c)
    grads = {k: to_float(v) for k, v in exact.grads.items()}
    allowed = oracle_tolerance_eps(config, T)
    assert allowed == (T + 1) * (2 * (2 + 2) + 2)
    grads["weight_hh_l1"][1, 0] += factor * allowed * EPS64 * exact.scale["weight_hh_l1"][1, 0]
    if fails:
        with pytest.raises(Mismatch, match="weight_hh_l1 differs"):
            check_against_oracle(config, p, x, G, h, c, grads=grads)
    else:
        check_against_oracle(config, p, x, G, h, c, grads=grads)
