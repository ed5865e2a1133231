"""Benchmarks of the gradient checks: whole checks (analytic BPTT + vectorised differences +
comparison) against torch's gradcheck on the same RNN loss (float64), and against JAX's
check_grads."""

from __future__ import annotations

import numpy as np

from bpttcheck.properties.gradcheck import check_gradients
from bpttcheck.properties.torch_adapter import build_module
from bpttcheck.reference import RecurrentConfig, init_params

from .core import Benchmark

__all__ = ["benchmarks"]

#: (D, H): an Elman tanh RNN with P = 36 and P = 416 parameters; T = 20, B = 4.
_BENCH_SIZES = {36: (3, 4), 416: (8, 16)}
_BENCH_T, _BENCH_B = 20, 4


def _bench_problem(P: int):
    D, H = _BENCH_SIZES[P]
    config = RecurrentConfig("rnn", D, H)
    rng = np.random.default_rng(P)
    params = init_params(config, rng)
    x = rng.standard_normal((_BENCH_T, _BENCH_B, D))
    G = rng.standard_normal((_BENCH_T, _BENCH_B, H))
    G_h = rng.standard_normal((1, _BENCH_B, H))
    return config, params, x, G, G_h


def _torch_loss(config, params, x, G, G_h):
    """The same loss as a torch function of the flat parameters: nn.RNN with those weights."""
    import torch

    rnn = build_module(None, config, dtype="float64")  # the one torch adapter builds it
    shapes = config.param_shapes()
    xt, Gt, Ght = (torch.from_numpy(a) for a in (x, G, G_h))

    def loss(flat):
        weights, start = {}, 0
        for name, shape in shapes.items():
            n = int(np.prod(shape))
            weights[name] = flat[start:start + n].view(shape)
            start += n
        out, h_n = torch.func.functional_call(rnn, weights, (xt,))
        return (out * Gt).sum() + (h_n * Ght).sum()

    flat = torch.from_numpy(np.concatenate([params[n].ravel() for n in shapes])).requires_grad_()
    return loss, flat


def _make_vs_gradcheck(P: int, method: str, fast_mode: bool):
    def make():
        import torch

        config, params, x, G, G_h = _bench_problem(P)
        loss, flat = _torch_loss(config, params, x, G, G_h)
        wrt = tuple(config.param_shapes())

        def ours():
            check_gradients(config, params, x, d_output=G, d_h_n=G_h, method=method, wrt=wrt)

        def peer():
            torch.autograd.gradcheck(loss, (flat,), fast_mode=fast_mode)

        return ours, peer

    return make


def _make_vs_jax(P: int):
    def make():
        import jax
        from jax.test_util import check_grads

        jax.config.update("jax_enable_x64", True)
        jnp = jax.numpy
        config, params, x, G, G_h = _bench_problem(P)
        shapes = config.param_shapes()

        def loss(flat):
            w, start = {}, 0
            for name, shape in shapes.items():
                n = int(np.prod(shape))
                w[name] = flat[start:start + n].reshape(shape)
                start += n

            def step(h, xt):
                h = jnp.tanh(xt @ w["weight_ih_l0"].T + w["bias_ih_l0"] + h @ w["weight_hh_l0"].T + w["bias_hh_l0"])
                return h, h

            h_n, out = jax.lax.scan(step, jnp.zeros((x.shape[1], config.hidden_size)), jnp.asarray(x))
            return (out * G).sum() + (h_n * G_h[0]).sum()

        flat = jnp.asarray(np.concatenate([params[n].ravel() for n in shapes]))
        wrt = tuple(shapes)

        def ours():
            check_gradients(config, params, x, d_output=G, d_h_n=G_h, method="direction", wrt=wrt)

        def peer():
            check_grads(loss, (flat,), order=1, modes=("rev",))

        return ours, peer

    return make


def benchmarks() -> list:
    """Whole gradient checks (analytic BPTT + vectorised differences + comparison) against
    torch's gradcheck on the same RNN loss (float64), and against JAX's check_grads."""
    out = []
    for P, goal in ((36, 1 / 50), (416, 1 / 15)):
        out.append(Benchmark(
            name=f"gradcheck: central differences, RNN P={P} (T={_BENCH_T}, B={_BENCH_B})",
            make=_make_vs_gradcheck(P, "central", False),
            peer_name="torch.autograd.gradcheck (default)", goal=goal, needs=("torch",), group="gradcheck",
        ))
    out.append(Benchmark(
        name=f"gradcheck: random directions, RNN P=416 (T={_BENCH_T}, B={_BENCH_B})",
        make=_make_vs_gradcheck(416, "direction", True),
        peer_name="torch.autograd.gradcheck(fast_mode=True)", goal=1 / 10, needs=("torch",), group="gradcheck",
    ))
    out.append(Benchmark(
        name=f"gradcheck: complex step, RNN P=416 (T={_BENCH_T}, B={_BENCH_B})",
        make=_make_vs_gradcheck(416, "complex", False),
        peer_name="torch.autograd.gradcheck (default)", goal=None, needs=("torch",), group="gradcheck",
        notes="informational: the exact oracle's cost",
    ))
    out.append(Benchmark(
        name=f"gradcheck: random directions vs JAX, RNN P=416 (T={_BENCH_T}, B={_BENCH_B})",
        make=_make_vs_jax(416),
        peer_name="jax.test_util.check_grads(order=1, modes=('rev',))", goal=None, needs=("jax",), group="gradcheck",
    ))
    return out
