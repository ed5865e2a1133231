"""Benchmark of clipping: the reference global-norm clip against torch's foreach
clip_grad_norm_ on the CPU."""

from __future__ import annotations

import numpy as np

from bpttcheck.reference.clipping import clip_by_global_norm

from .core import Benchmark

__all__ = ["benchmarks"]


def _make_clip_bench(n_tensors=100, n_elements=10**6, dtype=np.float32):
    import torch

    rng = np.random.default_rng(0)
    cuts = np.sort(rng.choice(np.arange(1, n_elements), n_tensors - 1, replace=False))
    sizes = np.diff(np.concatenate([[0], cuts, [n_elements]]))
    grads = [rng.standard_normal(int(s)).astype(dtype) for s in sizes]
    params = []
    for g in grads:
        q = torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.from_numpy(g[:0]).dtype))
        q.grad = torch.from_numpy(g.copy())
        params.append(q)

    def ours():
        return clip_by_global_norm(grads, 1.0)

    def peer():
        return torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)

    return ours, peer


def benchmarks() -> list[Benchmark]:
    """The reference global-norm clip against torch's foreach clip_grad_norm_ on CPU."""
    return [
        Benchmark(
            name="clip_by_global_norm: 100 float32 tensors, 1e6 elements",
            make=_make_clip_bench,
            peer_name="torch.nn.utils.clip_grad_norm_(foreach=True), CPU",
            goal=None,  # the issue asks for the figure, not a goal: the reference is the truth
            goal_kind="ratio",
            needs=("torch",),
            group="clipping",
            notes="the reference sums float32 terms in float64 (accurate norm) and returns new arrays; "
                  "torch sums in float32 and scales in place",
        )
    ]
