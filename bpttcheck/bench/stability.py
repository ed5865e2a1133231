"""Benchmarks of the stability diagnostics (absolute-time goals of issue 8, no peer)."""

from __future__ import annotations

import numpy as np

from bpttcheck.reference.config import RecurrentConfig, init_params
from bpttcheck.reference.jacobians import chain_jacobians, singular_values, step_jacobians
from bpttcheck.reference.profiles import gradient_profile

from .core import Benchmark

__all__ = ["benchmarks"]


def benchmarks():
    """Absolute-time goals of issue 8 (no peer): the per-lag profile for T = 200, H = 64 under
    1 s, and the singular values of every ∂h_{T-1}/∂h_s for T = 100, H = 64 under 2 s."""
    def setup(T):
        config = RecurrentConfig("rnn", 8, 64)
        rng = np.random.default_rng(0)
        return config, init_params(config, rng), rng.standard_normal((T, 1, 8)), rng.standard_normal((T, 1, 64))

    def make_profile():
        config, params, x, dy = setup(200)
        return (lambda: gradient_profile(config, params, x, dy)), None

    def make_singular_values():
        config, params, x, _ = setup(100)
        return (lambda: singular_values(chain_jacobians(step_jacobians(config, params, x)))), None

    return [
        Benchmark("per-lag profile, tanh RNN T=200 H=64", make_profile, goal=1.0, goal_kind="seconds", group="stability"),
        Benchmark("Jacobian singular values, tanh RNN T=100 H=64", make_singular_values, goal=2.0, goal_kind="seconds", group="stability"),
    ]
