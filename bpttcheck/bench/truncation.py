"""Benchmarks of truncated BPTT: truncated sweeps and windows against full BPTT, same network,
same run."""

from __future__ import annotations

import numpy as np

from bpttcheck.properties.strategies import make_case
from bpttcheck.properties.truncation import reference_run
from bpttcheck.reference import RecurrentConfig, backward, forward
from bpttcheck.reference.randomized import sample_xi
from bpttcheck.reference.truncation import Randomized, SlidingWindow, Subsequence

from .core import Benchmark

__all__ = ["benchmarks"]


def benchmarks():
    """Truncated sweeps and windows against full BPTT, same network, same run."""
    def problem(cell):
        return make_case(RecurrentConfig(cell, 16, 32), T=128, B=8, seed=0, with_state_cotangents=False)

    def versus_full(cell, scheme, randomized=False):
        def make():
            case = problem(cell)
            xi = sample_xi(scheme, np.random.default_rng(0), case.T, 1) if randomized else None

            def ours():
                reference_run(scheme, case, xi=xi)

            def full():
                r = forward(case.config, case.params, case.x, case.h0, case.c0)
                backward(case.params, r, case.d_output)
            return ours, full
        return make

    out = []
    for cell in ("rnn", "lstm"):
        out.append(Benchmark(f"subsequence k=8 sweep / full BPTT ({cell} H=32, T=128, B=8)",
                             versus_full(cell, Subsequence(8)), "full BPTT", 1.2, group="truncation"))
        out.append(Benchmark(f"randomized sweep / full BPTT ({cell} H=32, T=128, B=8)",
                             versus_full(cell, Randomized((0.9,) * 128), True), "full BPTT", 1.2, group="truncation"))
        for k in (4, 16):
            out.append(Benchmark(f"sliding window k={k} / full BPTT ({cell} H=32, T=128, B=8)",
                                 versus_full(cell, SlidingWindow(k)), "full BPTT", 1.2 * k, group="truncation"))
    return out
