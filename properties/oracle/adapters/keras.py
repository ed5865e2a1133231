"""Keras 3 recurrent layers as ``numpy``-kind targets, under the torch or the jax backend.

    import keras
    from bpttcheck.properties.oracle.adapters.keras import keras_target
    KerasLSTM = keras_target(keras.layers.LSTM)      # then: --target mymod:KerasLSTM --kind numpy

Conventions (SPEC §10): Keras kernels are (input, gates), the transpose of torch's, with one
bias (b_ih + b_hh) for ``SimpleRNN`` and ``LSTM``; LSTM gate blocks i, f, c, o are torch's
i, f, g, o; GRU blocks are z, r, h where torch's are r, z, n, and ``GRU(reset_after=True)``
(the default) keeps a (2, 3H) bias — input row and recurrent row — with the reset inside, as
torch does. ``GRU(reset_after=False)`` applies the reset to h before the matmul (the 2014
paper): a different function, declined here as unsupported. Keras fixes a layer's dtype when it
is built, so the adapter builds one layer per (dtype, sizes), cached, and loads each case's
weights into it. Stacks (num_layers = 2) chain layers; bidirectional and proj_size are declined.

Below float64: on the torch backend ``keras.ops.matmul`` of two float64 tensors returns
float32 (keras-team/keras issues 23704, 23223), so a float64 ``SimpleRNN`` is only
float32-accurate. :func:`float64_probe` measures it: the target's float64 error against the
reference on a float32-representable case, divided by its own float32 error on the same case;
a float64 target is at least ~10⁶ times more accurate than its float32 self, so a ratio above
:data:`BELOW_FLOAT64_RATIO` means it computes below float64, and the adapter warns
(:class:`BelowFloat64Warning`) on its first float64 call for each layer class and cell.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np

from bpttcheck.reference.cells import cell_spec

from ..jax_checks import x64
from ..targets import TargetError
from .precision import BELOW_FLOAT64_RATIO, BelowFloat64Warning, float64_probe

__all__ = ["BELOW_FLOAT64_RATIO", "BelowFloat64Warning", "float64_probe", "keras_target"]

# --------------------------------------------------------------------------- weights


def _perm(cell):
    """Keras gate blocks in torch's block order (GRU: keras z, r, h <-> torch r, z, n)."""
    return (1, 0, 2) if cell == "gru" else tuple(range(len(cell_spec(cell).gates)))


def _blocks(a, cell, axis=0):
    return np.concatenate([np.split(a, len(_perm(cell)), axis=axis)[k] for k in _perm(cell)], axis=axis)


def _to_keras(cell, params, layer_index, bias):
    """torch-named arrays of one layer -> (kernel, recurrent_kernel, bias or None) in Keras' layout."""
    p = lambda n: params[f"{n}_l{layer_index}"]  # noqa: E731
    kernel, recurrent = _blocks(p("weight_ih"), cell).T, _blocks(p("weight_hh"), cell).T
    if not bias:
        return kernel, recurrent, None
    if cell == "gru":  # reset_after=True: row 0 the input bias, row 1 the recurrent bias
        return kernel, recurrent, np.stack([_blocks(p("bias_ih"), cell), _blocks(p("bias_hh"), cell)])
    return kernel, recurrent, p("bias_ih") + p("bias_hh")


def _to_torch(cell, grads, layer_index, bias) -> dict:
    """Gradients in Keras' layout -> torch names (the merged bias's gradient goes to both)."""
    gk, gr, gb = np.asarray(grads[0]), np.asarray(grads[1]), grads[2]
    sfx = f"_l{layer_index}"
    out = {f"weight_ih{sfx}": _blocks(gk.T, cell), f"weight_hh{sfx}": _blocks(gr.T, cell)}
    if bias:
        gb = np.asarray(gb)
        if cell == "gru":
            out[f"bias_ih{sfx}"], out[f"bias_hh{sfx}"] = _blocks(gb[0], cell), _blocks(gb[1], cell)
        else:
            out[f"bias_ih{sfx}"] = out[f"bias_hh{sfx}"] = gb
    return out


# --------------------------------------------------------------------------- the adapter


def _cell_of(layer_cls) -> str:
    name = getattr(layer_cls, "__name__", "")
    for part, cell in (("LSTM", "lstm"), ("GRU", "gru"), ("SimpleRNN", "rnn")):
        if part in name:
            return cell
    raise TargetError(f"keras_target({layer_cls!r}): expected keras.layers.LSTM, GRU or SimpleRNN (or a subclass "
                      "with the same cell weights), or pass cell='lstm'/'gru'/'rnn'")


def keras_target(layer_cls, *, cell: str | None = None, warn_below_float64: bool = True, **layer_kwargs):
    """A numpy-protocol target (``fn(config, params, x, h0, c0, d_output, d_h_n, d_c_n)``) for
    a Keras 3 recurrent layer class; ``layer_kwargs`` go to its constructor (with ``units``,
    ``dtype``, ``use_bias`` and, for SimpleRNN, ``activation`` set from the case). The result
    carries ``cells`` (the one cell it handles), so the numpy kind checks only that cell."""
    cell = cell or _cell_of(layer_cls)
    if cell not in ("rnn", "lstm", "gru"):
        raise TargetError(f"keras_target(cell={cell!r}): expected 'rnn', 'lstm' or 'gru'")
    if cell == "gru" and layer_kwargs.get("reset_after", True) is False:
        raise TargetError("keras_target(GRU, reset_after=False): the 2014 paper's convention (reset applied to h "
                          "before the matmul) is a different function from torch's GRU, which the reference "
                          "computes; use reset_after=True (Keras' default)")
    layers: dict = {}
    probed: dict = {}

    def build(dtype, D, H, bias, activation, index):
        key = (dtype, D, H, bias, activation, index)
        if key not in layers:
            kw = dict(layer_kwargs)
            if cell == "rnn":
                kw.setdefault("activation", activation)
            layer = layer_cls(H, return_sequences=True, return_state=True, use_bias=bias, dtype=dtype, **kw)
            if cell == "gru" and not getattr(layer.cell, "reset_after", True):
                raise NotImplementedError("GRU(reset_after=False) is the 2014 paper's convention (reset before the "
                                          "matmul); torch's GRU and the reference put it after: not comparable")
            layer.build((None, None, D))
            layers[key] = layer
        return layers[key]

    def fn(config, params, x, h0, c0, d_output, d_h_n, d_c_n):
        import keras

        if config["cell"] != cell:
            raise NotImplementedError(f"this adapter wraps {layer_cls.__name__} ({cell}), not {config['cell']}")
        if config["bidirectional"] or config["proj_size"]:
            raise NotImplementedError("bidirectional and proj_size are not adapted (keras.layers.Bidirectional "
                                      "and projections have other layouts)")
        dtype = np.asarray(x).dtype
        if dtype == np.float64 and warn_below_float64 and not probed:
            probed.update(float64_probe(_run, cell, config["nonlinearity"]))
            if probed["below_float64"]:
                warnings.warn(BelowFloat64Warning(
                    f"{layer_cls.__name__} on the {keras.backend.backend()} backend computes below float64: its "
                    f"float64 results are {probed['err64']:.1e} off the reference, {probed['ratio']:.2g} of its own "
                    f"float32 error ({probed['err32']:.1e}); float64 checks will fail at float32 accuracy"),
                    stacklevel=2)
        return _run(config, params, x, h0, c0, d_output, d_h_n, d_c_n)

    def _run(config, params, x, h0, c0, d_output, d_h_n, d_c_n):
        import keras

        if keras.backend.backend() == "jax":  # float64 variables need JAX's 64-bit mode (scoped)
            scope = x64(np.asarray(x).dtype == np.float64)
        else:
            scope = contextlib.nullcontext()
        with scope:
            return _run_in_scope(config, params, x, h0, c0, d_output, d_h_n, d_c_n)

    def _run_in_scope(config, params, x, h0, c0, d_output, d_h_n, d_c_n):
        import keras

        dtype = np.asarray(x).dtype
        L, D, H, bias = config["num_layers"], config["input_size"], config["hidden_size"], config["bias"]
        stack = [build(dtype.name, D if i == 0 else H, H, bias, config["nonlinearity"], i) for i in range(L)]
        for i, layer in enumerate(stack):
            k, r, b = _to_keras(cell, params, i, bias)
            layer.cell.kernel.assign(k)
            layer.cell.recurrent_kernel.assign(r)
            if b is not None:
                layer.cell.bias.assign(b)
        run = {"torch": _torch_run, "jax": _jax_run}.get(keras.backend.backend())
        if run is None:
            raise NotImplementedError(f"the {keras.backend.backend()} backend is not adapted (torch and jax are)")
        return run(stack, cell, bias, dtype, x, h0, c0, d_output, d_h_n, d_c_n)

    fn.cells = (cell,)
    fn.bpttcheck_kind = "numpy"
    fn.precision = probed
    fn.__name__ = fn.__qualname__ = f"keras_{layer_cls.__name__}"
    return fn


def _weights(layer, bias):
    c = layer.cell
    return [c.kernel, c.recurrent_kernel] + ([c.bias] if bias else [])


def _forward(call, stack, cell, x, h0, c0):
    """Run the stack batch-major; returns output (T, B, H) and per-layer final states."""
    seq, hs, cs = x, [], []
    for i, layer in enumerate(stack):
        init = [h0[i], c0[i]] if cell_spec(cell).has_cell_state else [h0[i]]
        out = call(layer, i, seq, init)
        seq = out[0]
        hs.append(out[1])
        if cell_spec(cell).has_cell_state:
            cs.append(out[2])
    return seq, hs, cs


def _torch_run(stack, cell, bias, dtype, x, h0, c0, d_output, d_h_n, d_c_n):
    import torch

    t = lambda a: torch.tensor(np.asarray(a), requires_grad=True)  # noqa: E731
    xb, h0t = t(np.swapaxes(x, 0, 1)), t(h0)
    c0t = t(c0) if cell_spec(cell).has_cell_state else None
    weights = [[w.value for w in _weights(layer, bias)] for layer in stack]
    seq, hs, cs = _forward(lambda layer, i, s, init: layer(s, initial_state=init), stack, cell, xb, h0t, c0t)
    h_n, c_n = torch.stack(hs), (torch.stack(cs) if cs else None)
    loss = (seq * torch.tensor(np.swapaxes(d_output, 0, 1))).sum() + (h_n * torch.tensor(d_h_n)).sum()
    if c_n is not None and d_c_n is not None:
        loss = loss + (c_n * torch.tensor(d_c_n)).sum()
    leaves = [w for ws in weights for w in ws] + [xb, h0t] + ([c0t] if c0t is not None else [])
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    grads = [torch.zeros_like(v) if g is None else g for v, g in zip(leaves, grads)]
    host = lambda a: a.detach().cpu().numpy()  # noqa: E731
    out = {"output": np.swapaxes(host(seq), 0, 1), "h_n": host(h_n), "input": np.swapaxes(host(grads[-3 if c0t is not None else -2]), 0, 1),
           "h0": host(grads[-2 if c0t is not None else -1])}
    if c0t is not None:
        out.update(c_n=host(c_n), c0=host(grads[-1]))
    n = len(weights[0])
    for i in range(len(stack)):
        out.update(_to_torch(cell, [host(g) for g in grads[i * n:(i + 1) * n]] + [None] * (3 - n), i, bias))
    return out


def _jax_run(stack, cell, bias, dtype, x, h0, c0, d_output, d_h_n, d_c_n):
    import jax
    import jax.numpy as jnp

    # already inside the adapter's x64 scope
    state = [([v.value for v in layer.trainable_variables], [v.value for v in layer.non_trainable_variables])
             for layer in stack]
    order = [[[id(w) for w in layer.trainable_variables].index(id(w)) for w in _weights(layer, bias)]
             for layer in stack]

    def f(trainables, xb, h0, c0):
        def call(layer, i, s, init):
            out, _ = layer.stateless_call(trainables[i], state[i][1], s, initial_state=init)
            return out
        seq, hs, cs = _forward(call, stack, cell, xb, h0, c0)
        return seq, jnp.stack(hs), (jnp.stack(cs) if cs else None)

    args = ([s[0] for s in state], jnp.asarray(np.swapaxes(x, 0, 1)), jnp.asarray(h0),
            jnp.asarray(c0) if cell_spec(cell).has_cell_state else None)
    (seq, h_n, c_n), pull = jax.vjp(f, *args)
    cot = (jnp.asarray(np.swapaxes(d_output, 0, 1)), jnp.asarray(d_h_n),
           jnp.asarray(d_c_n) if c_n is not None else None)
    g_tr, g_x, g_h0, g_c0 = pull(cot)
    out = {"output": np.swapaxes(np.asarray(seq), 0, 1), "h_n": np.asarray(h_n),
           "input": np.swapaxes(np.asarray(g_x), 0, 1), "h0": np.asarray(g_h0)}
    if c_n is not None:
        out.update(c_n=np.asarray(c_n), c0=np.asarray(g_c0))
    for i in range(len(stack)):
        gs = [np.asarray(g_tr[i][j]) for j in order[i]]
        out.update(_to_torch(cell, gs + [None] * (3 - len(gs)), i, bias))
    return out
