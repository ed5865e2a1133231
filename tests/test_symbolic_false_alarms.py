"""A systematic search for false alarms of the symbolic oracle's allowance (slow).

The reference and torch (where torch has the cell) against the arbitrary-precision pair-sum,
over fixed seeds and shapes, for every cell and nonlinearity, projections, two-layer stacks,
and three kinds of data: *plain* (the reference's initialisation, unit-normal data),
*saturated* (weights ×4, inputs ×3: σ and tanh near ±1, σ′ = σ(1 − σ) formed from σ ≈ 1) and
*cancelling* (layer 0's hidden-side bias cancels the first pre-activation of batch row 0 to
~1e-2; for the LSTM also c₀ set so that c′ = f·c₀ + i·g cancels to ~5%). Every case must pass;
each test prints its worst error as a fraction of the allowance
(:func:`bpttcheck.properties.tolerance.symbolic_oracle_allowance`), and of each of its two parts.

``python tests/test_symbolic_false_alarms.py`` prints the whole table (docs/symbolic.md's figures).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bpttcheck.reference import RecurrentConfig, init_params

pytestmark = [pytest.mark.symbolic, pytest.mark.slow]

CONFIGS = {
    "tanh": RecurrentConfig("rnn", 2, 2, nonlinearity="tanh"),
    "relu": RecurrentConfig("rnn", 2, 2, nonlinearity="relu"),
    "identity": RecurrentConfig("rnn", 1, 2, nonlinearity="identity"),
    "sigmoid": RecurrentConfig("rnn", 2, 2, nonlinearity="sigmoid"),
    "tanh-nobias": RecurrentConfig("rnn", 2, 1, bias=False),
    "lstm": RecurrentConfig("lstm", 1, 2),
    "lstm-proj": RecurrentConfig("lstm", 1, 2, proj_size=1),
    "lstm-D2": RecurrentConfig("lstm", 2, 1),
    "gru": RecurrentConfig("gru", 1, 2),
    "gru-nobias": RecurrentConfig("gru", 2, 1, bias=False),
    "tanh-L2": RecurrentConfig("rnn", 2, 2, num_layers=2),
    "relu-L2": RecurrentConfig("rnn", 1, 2, num_layers=2, nonlinearity="relu"),
    "sigmoid-L2": RecurrentConfig("rnn", 2, 1, num_layers=2, nonlinearity="sigmoid"),
    "lstm-L2": RecurrentConfig("lstm", 1, 2, num_layers=2),
    "lstm-proj-L2": RecurrentConfig("lstm", 2, 2, num_layers=2, proj_size=1),
    "gru-L2": RecurrentConfig("gru", 1, 2, num_layers=2),
}
REGIMES = ("plain", "saturated", "cancelling")
SEEDS = range(4)
SHAPES = ((1, 1), (2, 1), (3, 2), (4, 1))  # (T, B)


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def problem(config, T, B, seed, regime):
    """One case's (params, x, cotangent, h0, c0) in the given regime."""
    rng = np.random.default_rng(seed)
    p = init_params(config, rng)
    x = rng.standard_normal((T, B, config.input_size))
    G = rng.standard_normal((T, B, config.output_size))
    L = config.num_layers
    h = rng.standard_normal((L, B, config.output_size))
    c = rng.standard_normal((L, B, config.hidden_size)) if config.cell == "lstm" else None
    if regime == "saturated":
        p = {k: 4 * v for k, v in p.items()}
        x = 3 * x
    elif regime == "cancelling" and config.bias:
        a = x[0, 0] @ p["weight_ih_l0"].T + p["bias_ih_l0"] + h[0, 0] @ p["weight_hh_l0"].T
        p["bias_hh_l0"] = -a + 1e-2 * rng.standard_normal(a.shape)
        if config.cell == "lstm":
            H = config.hidden_size
            a = a + p["bias_hh_l0"]
            i, f, g = _sigmoid(a[:H]), _sigmoid(a[H : 2 * H]), np.tanh(a[2 * H : 3 * H])
            c[0, 0] = -(i * g) / f * (1 + 0.05 * rng.standard_normal(H))
    return p, x, G, h, c


def _ratios(diff, allowed):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(diff == 0, 0.0, diff / allowed)


def worst_ratios(config, T, B, seed, regime) -> dict[str, tuple]:
    """Check every implementation of one case (raises ``Mismatch`` on a false alarm); per
    implementation, (worst error / allowance, / count part, / running part, the entry)."""
    from bpttcheck.properties.symbolic_checks import (
        check_against_oracle, oracle_allowance, oracle_tolerance_eps, reference_gradients, torch_gradients,
    )
    from bpttcheck.symbolic.oracle import error_in_eps, pair_sum
    from bpttcheck.symbolic.precision import EPS64

    p, x, G, h, c = problem(config, T, B, seed, regime)
    oracle = pair_sum(config, p, x, G, h, c)
    allowed = oracle_allowance(config, T, oracle)
    impls = {"reference": reference_gradients(config, p, x, G, h, c)}
    if config.cell != "rnn" or config.nonlinearity in ("tanh", "relu"):
        try:
            impls["torch"] = torch_gradients(config, p, x, G, h, c)
        except ImportError:
            pass
    out = {}
    for label, grads in impls.items():
        check_against_oracle(config, p, x, G, h, c, grads=grads, label=label, context=f"{regime}, seed {seed}")
        best, r_count, r_running = (0.0, ""), 0.0, 0.0
        for name, expected in oracle.grads.items():
            if not expected.size:
                continue
            diff = error_in_eps(grads[name], expected, np.ones(expected.shape)) * EPS64
            r = _ratios(diff, allowed[name])
            idx = [int(i) for i in np.unravel_index(int(np.argmax(r)), r.shape)]
            best = max(best, (float(r.max()), f"{name}{idx}"))
            # each part of the allowance on its own, over the whole case
            r_count = max(r_count, float(_ratios(diff, oracle_tolerance_eps(config, T) * EPS64 * oracle.scale[name]).max()))
            r_running = max(r_running, float(_ratios(diff, EPS64 * oracle.rounding[name]).max()))
        out[label] = (best[0], r_count, r_running, best[1])
    return out


def _sweep(name, regime):
    worst = {}
    for seed, (T, B) in itertools.product(SEEDS, SHAPES):
        for label, row in worst_ratios(CONFIGS[name], T, B, seed, regime).items():
            if row[0] >= worst.get(label, (0.0,))[0]:
                worst[label] = (*row, f"T={T} B={B} seed={seed}")
    return worst


@pytest.mark.parametrize("regime", REGIMES)
@pytest.mark.parametrize("name", list(CONFIGS))
def test_no_false_alarm(name, regime):
    for label, (r, r_count, r_running, entry, case) in _sweep(name, regime).items():
        print(f"{name} {regime} {label}: worst {r:.3f} of the allowance at {entry} ({case}); "
              f"count part alone {r_count:.3g}, running part alone {r_running:.3g}")
        assert r <= 1.0  # check_against_oracle has already raised otherwise


if __name__ == "__main__":  # pragma: no cover - the table of docs/symbolic.md
    overall = (0.0, "")
    print(f"{'config':14s} {'regime':11s} {'impl':9s} {'worst':>6s} {'count':>9s} {'running':>8s}  where")
    for name, regime in itertools.product(CONFIGS, REGIMES):
        for label, (r, r_count, r_running, entry, case) in _sweep(name, regime).items():
            print(f"{name:14s} {regime:11s} {label:9s} {r:6.3f} {r_count:9.3g} {r_running:8.3f}  {entry} {case}",
                  flush=True)
            overall = max(overall, (r, f"{name} {regime} {label} {entry} {case}"))
    print("worst overall:", overall)
