"""torch's cell parameters in the layouts of JAX libraries (the adapters are in :mod:`.jax_cells`).

Every layout is a function of the torch-named cell parameters (``weight_ih`` (G·H, D),
``weight_hh`` (G·H, H), ``bias_ih``/``bias_hh`` (G·H,), absent when bias=False; gate blocks
r, z, n for a GRU and i, f, g, o for an LSTM) returning the library's parameter pytree. The
``jax`` kind traces it, so gradients come back under torch's names. A library bias that torch
lacks (bias=False) is filled with zeros, which is the same function.

| layout | cells | the library's parameters |
|---|---|---|
| ``"torch"`` | any | the same dict |
| ``"flax"`` (linen) | ``LSTMCell``, ``OptimizedLSTMCell`` | ``ii, if, ig, io: {kernel (D, H)}``, ``hi, hf, hg, ho: {kernel (H, H), bias}`` with bias = b_ih + b_hh; carry (c, h) |
| | ``GRUCell`` | ``ir, iz: {kernel, bias = b_i· + b_h·}``, ``in: {kernel, bias = b_in}``, ``hr, hz: {kernel}``, ``hn: {kernel, bias = b_hn}`` (reset inside, torch's convention) |
| | ``SimpleCell`` | ``i: {kernel (D, H), bias = b_ih + b_hh}``, ``h: {kernel (H, H)}`` |
| ``"equinox"`` | ``nn.LSTMCell`` | ``weight_ih (4H, D)``, ``weight_hh (4H, H)``, ``bias = b_ih + b_hh``; gates i, f, g, o; unbatched (vmapped here) |
| | ``nn.GRUCell`` | ``weight_ih``, ``weight_hh``, ``bias = (b_ir + b_hr, b_iz + b_hz, b_in)``, ``bias_n = b_hn`` |
| ``"haiku"`` | ``LSTM`` | ``<name>/linear: {w (D+H, 4H) over [x, h], b}``, gates i, **g, f**, o, and **+1 added to f** (bias stored 1 lower) |
| | ``VanillaRNN`` (relu) | ``<name>/linear: {w (D, H), b = b_ih}``, ``<name>/linear_1: {w (H, H), b = b_hh}`` (without b when double_bias=False: b_ih + b_hh on the first) |

haiku's ``GRU`` applies the reset gate to h before the matmul (the 2014 paper's convention):
a legitimate function, but not torch's GRU, so the reference cannot judge it and
``haiku_cell`` (:mod:`.jax_cells`) refuses it.
"""

from __future__ import annotations

from functools import partial

from bpttcheck.reference.cells import cell_spec

from ..targets import TargetError

__all__ = ["LAYOUTS", "equinox_params", "flax_params", "haiku_params", "layout", "torch_params"]


def _jnp():
    import jax.numpy as jnp

    return jnp


def _split(tp, name, cell):
    """The gate blocks of ``tp[name]`` (zeros of the right size for a missing bias)."""
    jnp = _jnp()
    n = len(cell_spec(cell).gates)
    if name in tp:
        return jnp.split(tp[name], n, axis=0)
    ref = tp["weight_hh"]
    return [jnp.zeros(ref.shape[1], ref.dtype)] * n


def torch_params(cell, tp):
    """The torch layout: the dict unchanged (``step`` reads ``weight_ih`` etc. itself)."""
    return dict(tp)


def flax_params(cell, tp):
    """flax.linen's LSTMCell/OptimizedLSTMCell, GRUCell and SimpleCell parameter trees."""
    wi, wh = _split(tp, "weight_ih", cell), _split(tp, "weight_hh", cell)
    bi, bh = _split(tp, "bias_ih", cell), _split(tp, "bias_hh", cell)
    if cell == "lstm":
        out = {}
        for g, a, b, c, d in zip(cell_spec(cell).gates, wi, wh, bi, bh):  # flax names them ii, if, …
            out["i" + g] = {"kernel": a.T}
            out["h" + g] = {"kernel": b.T, "bias": c + d}
        return out
    if cell == "gru":
        return {"ir": {"kernel": wi[0].T, "bias": bi[0] + bh[0]}, "iz": {"kernel": wi[1].T, "bias": bi[1] + bh[1]},
                "in": {"kernel": wi[2].T, "bias": bi[2]}, "hr": {"kernel": wh[0].T}, "hz": {"kernel": wh[1].T},
                "hn": {"kernel": wh[2].T, "bias": bh[2]}}
    return {"i": {"kernel": wi[0].T, "bias": bi[0] + bh[0]}, "h": {"kernel": wh[0].T}}


def equinox_params(cell, tp):
    """equinox.nn.LSTMCell / GRUCell fields: torch's matrices, one merged bias (and bias_n)."""
    jnp = _jnp()
    bi, bh = _split(tp, "bias_ih", cell), _split(tp, "bias_hh", cell)
    out = {"weight_ih": tp["weight_ih"], "weight_hh": tp["weight_hh"]}
    if cell == "gru":
        out["bias"] = jnp.concatenate([bi[0] + bh[0], bi[1] + bh[1], bi[2]])
        out["bias_n"] = bh[2]
    else:
        out["bias"] = jnp.concatenate([a + b for a, b in zip(bi, bh)])
    return out


def haiku_params(cell, tp, name=None, double_bias=True):
    """haiku's LSTM (gates i, g, f, o; +1 on f) and VanillaRNN parameter dicts."""
    jnp = _jnp()
    wi, wh = _split(tp, "weight_ih", cell), _split(tp, "weight_hh", cell)
    bi, bh = _split(tp, "bias_ih", cell), _split(tp, "bias_hh", cell)
    if cell == "lstm":
        order = (0, 2, 1, 3)  # torch i, f, g, o -> haiku i, g, f, o
        w = jnp.concatenate([jnp.concatenate([wi[k], wh[k]], axis=1) for k in order], axis=0).T
        b = jnp.concatenate([bi[k] + bh[k] - (1.0 if k == 1 else 0.0) for k in order])  # hk adds +1 to f
        return {f"{name or 'lstm'}/linear": {"w": w, "b": b}}
    if cell == "rnn":
        base = name or "vanilla_rnn"
        if double_bias:
            return {f"{base}/linear": {"w": wi[0].T, "b": bi[0]}, f"{base}/linear_1": {"w": wh[0].T, "b": bh[0]}}
        return {f"{base}/linear": {"w": wi[0].T, "b": bi[0] + bh[0]}, f"{base}/linear_1": {"w": wh[0].T}}
    raise NotImplementedError("haiku's GRU is the 2014 paper's convention (reset before the matmul), not torch's")


LAYOUTS = {"torch": torch_params, "flax": flax_params, "equinox": equinox_params, "haiku": haiku_params}


def layout(name: str, cell: str):
    """The mapping of layout ``name`` for ``cell``: a function of the torch-named parameters."""
    if name not in LAYOUTS:
        raise TargetError(f"params={name!r}: expected a function of the torch-named parameters or a layout name, "
                          f"one of {', '.join(LAYOUTS)}")
    return partial(LAYOUTS[name], cell)
