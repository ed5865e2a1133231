"""The running rounding bound (bpttcheck.symbolic.running) and the allowance built on it."""

import numpy as np
import pytest

from bpttcheck.properties.compare import Mismatch
from bpttcheck.reference import RecurrentConfig, init_params
from bpttcheck.symbolic.oracle import pair_sum, rounded_gradients, step_model
from bpttcheck.symbolic.precision import EPS64, Field, to_float

pytestmark = pytest.mark.symbolic

U = EPS64 / 2
FALSE_ALARM = RecurrentConfig("lstm", 1, 2, proj_size=1)  # docs/symbolic.md's case, seed 1042


def problem(config, T, B, seed):
    rng = np.random.default_rng(seed)
    p = init_params(config, rng)
    x = rng.standard_normal((T, B, config.input_size))
    G = rng.standard_normal((T, B, config.output_size))
    L = config.num_layers
    h = rng.standard_normal((L, B, config.output_size))
    c = rng.standard_normal((L, B, config.hidden_size)) if config.cell == "lstm" else None
    return p, x, G, h, c


def test_constant_roundings():
    import mpmath
    import sympy as sp

    from bpttcheck.symbolic.running import constant_roundings

    assert [constant_roundings(c) for c in (1, -1, 2, sp.Rational(1, 2), sp.Rational(-1, 4))] == [0] * 5
    assert constant_roundings(3) == 1 and constant_roundings(sp.Rational(3, 4)) == 1
    assert constant_roundings(sp.Rational(1, 3)) == 2 and constant_roundings(sp.Integer(2**60 + 1)) == 2
    assert constant_roundings(mpmath.mpf(0.5)) == 0 and constant_roundings(mpmath.mpf(0.1)) == 1


def _step_program_inputs(config, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    model = step_model(config, Field(exact=False))
    n, p, D = model.n_state, model.n_params, model.D
    values = np.concatenate([rng.standard_normal(D + n), scale * rng.uniform(-1, 1, p)])
    return model, values, D + n


STEPS = [RecurrentConfig("rnn", 2, 2), RecurrentConfig("rnn", 2, 2, nonlinearity="sigmoid"),
         RecurrentConfig("rnn", 2, 2, nonlinearity="relu"), RecurrentConfig("lstm", 1, 2, proj_size=1),
         RecurrentConfig("gru", 1, 2)]


@pytest.mark.parametrize("config", STEPS, ids=lambda c: c.describe())
@pytest.mark.parametrize("scale", [1.0, 4.0], ids=["plain", "saturated"])
def test_bound_covers_a_float64_evaluation_of_the_step(config, scale):
    """The step program (state and Jacobians) evaluated in float64 by the same straight-line
    code (σ as the reference's (1 + tanh(a/2))/2, NumPy's tanh) is within the bound of its exact
    value — with exact inputs, and with the state's inputs moved within given bounds."""
    import mpmath

    from bpttcheck.symbolic.program import Program

    for seed in range(4):
        model, values, uncertain = _step_program_inputs(config, seed, scale)
        fn = model.fn
        n_out = len(fn(list(values), [0] * len(values))[1])
        rng = np.random.default_rng(100 + seed)
        # inputs (x, s) carrying up to 1000 u of error each; the parameters exact
        given = np.concatenate([rng.uniform(0, 1000, uncertain), np.zeros(len(values) - uncertain)])
        moved = values + rng.uniform(-1, 1, len(values)) * given * U
        float64 = Program(fn.args, fn.exprs[:n_out], "numpy")
        for inputs, bounds in ((values, np.zeros(len(values))), (moved, given)):
            got = float64(*inputs)
            with mpmath.workdps(60):
                exact, bound = fn([mpmath.mpf(float(v)) for v in values], [mpmath.mpf(float(b)) for b in bounds])
                for k in range(n_out):
                    err = abs(mpmath.mpf(float(got[k])) - exact[k])
                    assert err <= bound[k] * U * (1 + 1e-9) + 1e-300, (config.describe(), k, float(err / U), float(bound[k]))


def test_bound_sees_cancellation_inside_an_atom():
    """tanh(c′) with c′ = f·c + i·g cancelled to 0.014 (the open false alarm): the bound of
    weight_hr's gradient, one product g·o·tanh(c′), is far above that product's own rounding
    — the rounding of f·c and i·g carried through tanh′."""
    p, x, G, h, c = problem(FALSE_ALARM, 1, 1, 1042)
    o = pair_sum(FALSE_ALARM, p, x, G, h, c)
    ratio = o.rounding["weight_hr_l0"][0, 0] / o.scale["weight_hr_l0"][0, 0]
    assert ratio > 100  # Σ|terms| is the product itself: its own rounding is a few u of it


def test_the_false_alarm_passes():
    from bpttcheck.properties.symbolic_checks import check_against_oracle, torch_gradients

    p, x, G, h, c = problem(FALSE_ALARM, 1, 1, 1042)
    worst = check_against_oracle(FALSE_ALARM, p, x, G, h, c)
    assert worst["weight_hr_l0"] > 10  # above the count bound's 10 eps: the running bound admits it
    pytest.importorskip("torch")
    check_against_oracle(FALSE_ALARM, p, x, G, h, c, grads=torch_gradients(FALSE_ALARM, p, x, G, h, c), label="torch")


def test_planted_bound_keeping_atoms_whole_false_alarms(monkeypatch):
    """The running bound's propagation through the atoms is what admits the false alarm: a
    bound that keeps tanh and σ whole (their own relative rounding, nothing carried through
    φ′, as Σ|terms| does) rejects the correct reference again."""
    from bpttcheck.properties.symbolic_checks import check_against_oracle
    from bpttcheck.symbolic import oracle, running

    monkeypatch.setitem(running._FUNCTIONS, "tanh", lambda a, e, v: 4 * abs(v))
    monkeypatch.setitem(running._FUNCTIONS, "sigmoid", lambda a, e, v: 4 * abs(v))
    oracle.clear_caches()
    try:
        p, x, G, h, c = problem(FALSE_ALARM, 1, 1, 1042)
        with pytest.raises(Mismatch, match="weight_hr_l0 differs"):
            check_against_oracle(FALSE_ALARM, p, x, G, h, c)
    finally:
        monkeypatch.undo()
        oracle.clear_caches()


@pytest.mark.parametrize("factor,fails", [(0.9, False), (1.1, True)])
def test_running_allowance_is_sharp(factor, fails):
    """The false alarm's entry, where the running bound governs: moved by 0.9× its allowance
    it passes, by 1.1× it fails (the other entries exact)."""
    from bpttcheck.properties.symbolic_checks import check_against_oracle, oracle_allowance, oracle_tolerance_eps

    p, x, G, h, c = problem(FALSE_ALARM, 1, 1, 1042)
    exact = pair_sum(FALSE_ALARM, p, x, G, h, c)
    allowed = oracle_allowance(FALSE_ALARM, 1, exact)["weight_hr_l0"][0, 0]
    count = oracle_tolerance_eps(FALSE_ALARM, 1) * EPS64 * exact.scale["weight_hr_l0"][0, 0]
    assert allowed > 10 * count
    grads = {k: to_float(v) for k, v in exact.grads.items()}
    grads["weight_hr_l0"][0, 0] += factor * allowed
    if fails:
        with pytest.raises(Mismatch, match="weight_hr_l0 differs"):
            check_against_oracle(FALSE_ALARM, p, x, G, h, c, grads=grads)
    else:
        check_against_oracle(FALSE_ALARM, p, x, G, h, c, grads=grads)


@pytest.mark.parametrize("config,bits", [(RecurrentConfig("rnn", 2, 2), 46),
                                         pytest.param(RecurrentConfig("lstm", 1, 2, proj_size=1), 46,
                                                      marks=pytest.mark.slow),
                                         pytest.param(RecurrentConfig("gru", 1, 2), 43, marks=pytest.mark.slow)],
                         ids=lambda v: v.describe() if hasattr(v, "describe") else f"{v} bits")
def test_a_noisier_implementation_is_caught(config, bits):
    """A simulated implementation (the unrolled reverse-mode program, every operation rounded
    to ``bits`` bits): at 53 bits — float64's rounding — it passes; with 128× float64's unit
    roundoff (46 bits) it fails for Elman and LSTM, with 1024× (43 bits) for the GRU, where the
    count part of the allowance governs. (Measured on three seeds: Elman and LSTM are caught
    from 47 bits, 64×; at 48 bits, 32×, about half the cases; the GRU from 43–46 bits.)"""
    from bpttcheck.properties.symbolic_checks import check_against_oracle

    p, x, G, h, c = problem(config, 3, 2, 5)
    check_against_oracle(config, p, x, G, h, c, grads=rounded_gradients(config, p, x, G, h, c, bits=53), label="53 bits")
    with pytest.raises(Mismatch, match="differs"):
        check_against_oracle(config, p, x, G, h, c, grads=rounded_gradients(config, p, x, G, h, c, bits=bits),
                             label=f"{bits} bits")
