"""Code generation: the symbolic gradients of the unrolled loss, compiled to float64 code.

A further independent numeric oracle: no hand-written backward, no pair-sum — the code is
printed from the derivative expressions of :func:`.unroll.gradient` (reverse mode over the
DAG) as straight-line code with one line per distinct subexpression (:class:`.program.Program`),
of about linear size in T where the expression trees grow exponentially.
"""

from __future__ import annotations

import functools

import numpy as np

from bpttcheck.reference.validation import check_int

from .oracle import check_data, flatten_params

__all__ = ["LambdifiedGradient", "clear_caches", "lambdify_gradients"]


class LambdifiedGradient:
    """``fn(params, x, cotangent, h0=None, c0=None) -> dict`` of float64 gradients
    (torch names, "input" (T,B,D), "h0" (1,B,P), "c0" (1,B,H)) for fixed T and batch."""

    def __init__(self, config, T: int, batch: int):
        from .program import Program
        from .unroll import gradient, unroll

        self.config, self.T, self.batch = config, T, batch
        u = unroll(config, T, batch)
        grads = gradient(u)
        self.shapes = {k: v.shape for k, v in grads.items()}
        exprs = [e for v in grads.values() for e in v.ravel()]
        self.fn = Program(u.arguments(), exprs, "numpy")
        self.n_ops = self.fn.n_ops

    def __call__(self, params, x, cotangent, h0=None, c0=None) -> dict[str, np.ndarray]:
        x, h0, c0, G = check_data(self.config, x, h0, c0, cotangent)
        values = [flatten_params(self.config, params), x.ravel(), h0.ravel()]
        if c0 is not None:
            values.append(c0.ravel())
        values.append(G.ravel())
        flat = np.asarray(self.fn(*np.concatenate(values)), dtype=np.float64)
        out, k = {}, 0
        for name, shape in self.shapes.items():
            n = int(np.prod(shape))
            out[name] = flat[k : k + n].reshape(shape)
            k += n
        return out


@functools.lru_cache(maxsize=16)
def lambdify_gradients(config, T: int, batch: int = 1) -> LambdifiedGradient:
    """The (cached) lambdified full-BPTT gradient of ``config`` unrolled for T steps."""
    return LambdifiedGradient(config, check_int("T", T, minimum=1), check_int("batch", batch, minimum=1))


def clear_caches() -> None:
    """Forget the lambdified gradients: the next call starts cold."""
    lambdify_gradients.cache_clear()
