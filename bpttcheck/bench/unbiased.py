"""Benchmarks of the unbiasedness tests: the exact enumeration of randomized truncation and the
Monte Carlo test (absolute-time goals)."""

from __future__ import annotations

import numpy as np

from bpttcheck.properties.strategies import make_case
from bpttcheck.properties.unbiased import statistical_test
from bpttcheck.reference import RecurrentConfig
from bpttcheck.reference.pairsum import pair_contributions
from bpttcheck.reference.randomized import exact_moments
from bpttcheck.reference.truncation import Randomized

from .core import Benchmark

__all__ = ["benchmarks"]


def benchmarks():
    def enumeration():
        case = make_case(RecurrentConfig("rnn", 2, 3), T=12, B=2, seed=0, with_state_cotangents=False)
        scheme = Randomized(tuple(np.linspace(0.5, 0.95, 12)))

        def ours():
            exact_moments(case.config, case.params, case.x, case.d_output, scheme, case.h0, case.c0)
        return ours, None

    def monte_carlo():
        case = make_case(RecurrentConfig("rnn", 2, 3), T=24, B=1, seed=0, sigma_max=0.8, with_state_cotangents=False)
        scheme = Randomized((0.9,) * 24)
        pairs = pair_contributions(case.config, case.params, case.x, case.d_output, case.h0, case.c0)

        def ours():
            statistical_test(scheme, case, 4096, 0, pairs=pairs)
        return ours, None

    return [
        Benchmark("exact enumeration, T=12 (4096 patterns), rnn H=3", enumeration, None, 1.0, "seconds",
                  group="truncation", notes="pair contributions + all patterns, vectorised over patterns"),
        Benchmark("Monte Carlo unbiasedness test, 4096 samples, T=24", monte_carlo, None, 2.0, "seconds",
                  group="truncation", notes="samples/second = 4096 / time; vectorised over samples"),
    ]
