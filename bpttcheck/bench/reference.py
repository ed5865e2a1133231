"""Benchmarks of the reference: forward + hand-written BPTT against torch ``nn`` forward +
autograd backward on the same weights, inputs and loss (float64, CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from bpttcheck.properties.torch_adapter import build_module, load_weights
from bpttcheck.reference import RecurrentConfig, backward, forward, init_params

from .core import Benchmark

__all__ = ["SCALE", "SIZES", "benchmarks", "peak_rss"]

#: (label, B, T, D, H, goal ratio ours/torch) — the goals of issue 2.
SIZES = (
    ("tiny", 1, 8, 3, 4, 0.2),
    ("medium", 32, 100, 32, 64, 0.6),
    ("large", 64, 200, 128, 256, 1.0),
)


#: the scale row of issue 15: (B, T, D, H), LSTM; goals 1.5x torch's time, peak memory < 2 GB
SCALE = (64, 1000, 256, 256)
SCALE_TIME_GOAL = 1.5
SCALE_MEMORY_GOAL = 2 * 10**9

_CHILD = """
import json, resource, sys, time
import numpy as np
which, cell, B, T, D, H = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rng = np.random.default_rng(0)
if which == "ours":
    from bpttcheck.reference import RecurrentConfig, backward, forward, init_params
    config = RecurrentConfig(cell, D, H)
    params = init_params(config, rng)
    x = rng.standard_normal((T, B, D))
    G = rng.standard_normal((T, B, H))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    backward(params, forward(config, params, x), G)
else:
    import torch
    torch.set_num_threads(1)
    module = getattr(torch.nn, cell.upper())(D, H, dtype=torch.float64)
    x = torch.tensor(rng.standard_normal((T, B, D)), requires_grad=True)
    G = torch.tensor(rng.standard_normal((T, B, H)))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    out, _ = module(x)
    (out * G).sum().backward()
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak": peak * 1024, "before": base * 1024, "seconds": seconds}))
"""


def peak_rss(which: str, cell: str = "lstm", size=SCALE) -> dict:
    """One forward+BPTT (``which="ours"``) or torch forward+backward (``"torch"``) in a fresh
    child process: its peak resident set size in bytes (``peak``; ``before``: the peak once
    the data was made, before the pass) and the pass's seconds. One thread."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", _CHILD, which, cell, *map(str, size)], capture_output=True,
                          text=True, env=env, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _make_memory():
    def make():
        return (lambda: peak_rss("ours")["peak"]), (lambda: peak_rss("torch")["peak"])

    return make


def _make(cell: str, B: int, T: int, D: int, H: int):
    def make():
        import torch

        config = RecurrentConfig(cell, D, H)
        rng = np.random.default_rng(0)
        params = init_params(config, rng)
        x = rng.standard_normal((T, B, D))
        G = rng.standard_normal((T, B, H))

        def ours():
            result = forward(config, params, x)
            return backward(params, result, G)

        module = build_module(None, config, dtype="float64")
        load_weights(module, params)
        xt = torch.tensor(x, requires_grad=True)
        Gt = torch.tensor(G)

        def peer():
            module.zero_grad(set_to_none=True)
            xt.grad = None
            out, _ = module(xt)
            (out * Gt).sum().backward()

        return ours, peer

    return make


def benchmarks() -> list[Benchmark]:
    out = []
    for label, B, T, D, H, goal in SIZES:
        for cell in ("rnn", "lstm", "gru"):
            out.append(Benchmark(
                name=f"reference {cell} fwd+BPTT, {label} (B={B},T={T},D={D},H={H})",
                make=_make(cell, B, T, D, H),
                peer_name=f"torch nn.{cell.upper()} fwd+backward",
                goal=goal,
                needs=("torch",),
                group="reference",
            ))
    B, T, D, H = SCALE
    out.append(Benchmark(
        name=f"reference lstm fwd+BPTT, scale (B={B},T={T},D={D},H={H})",
        make=_make("lstm", B, T, D, H),
        peer_name="torch nn.LSTM fwd+backward",
        goal=SCALE_TIME_GOAL, needs=("torch",), group="reference", rounds=3,
    ))
    out.append(Benchmark(
        name=f"reference lstm fwd+BPTT, scale: peak RSS of a child process (B={B},T={T},D={D},H={H})",
        make=_make_memory(),
        peer_name="torch nn.LSTM fwd+backward (its child's peak RSS)",
        goal=SCALE_MEMORY_GOAL, goal_kind="bytes", needs=("torch",), group="reference", rounds=1,
    ))
    return out
