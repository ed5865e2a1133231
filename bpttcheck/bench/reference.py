"""Benchmarks of the reference: forward + hand-written BPTT against torch ``nn`` forward +
autograd backward on the same weights, inputs and loss (float64, CPU)."""

from __future__ import annotations

import numpy as np

from bpttcheck.properties.torch_adapter import build_module, load_weights
from bpttcheck.reference import RecurrentConfig, backward, forward, init_params

from .core import Benchmark

__all__ = ["SIZES", "benchmarks"]

#: (label, B, T, D, H, goal ratio ours/torch) — the goals of issue 2.
SIZES = (
    ("tiny", 1, 8, 3, 4, 0.2),
    ("medium", 32, 100, 32, 64, 0.6),
    ("large", 64, 200, 128, 256, 1.0),
)


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
    return out
