"""Architectures of the seeds, built on the one backward engine (:mod:`.network`).

- Residual (skip) connections between stacked layers: ``y⁽ˡ⁾ = RNN_l(y⁽ˡ⁻¹⁾) + y⁽ˡ⁻¹⁾`` (the
  head of the skip outside the activation, as in seed 004): the layer Jacobian gains the "+1".
- Encoder–decoder: the decoder's initial state is the encoder's final state (h, and c when both
  are LSTMs); the encoder receives gradient only through that state.
- Teacher forcing and free-running generation with continuous outputs fed back,
  ``x_t = y_{t-1}`` with ``y_t = W_hy h_t + b_y``: teacher forcing feeds the targets instead.
  The free-running backward runs BPTT through the feedback path (or cuts it on request).
- The "pseudo-matrix" form of seed 004, ``h_t = φ(W·[x_t; h_{t-1}] + b)`` with
  ``W = [W_xh W_hh]``: a second, independent Elman forward for the structure properties.

Every backward here is :func:`bpttcheck.reference.network.backward` applied per layer or per
step, with the architecture's own wiring of the cotangents in between; nothing re-derives a
cell's backward. Arrays are time-major (T, B, F).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .activations import activate
from .cells import cell_spec, cell_state_note
from .config import RecurrentConfig
from .network import ForwardResult, backward, check_params, forward
from .validation import InvalidArgument, check_array, check_bool, check_int, describe

__all__ = [
    "EncoderDecoderResult",
    "GenerationResult",
    "ResidualResult",
    "encoder_decoder_backward",
    "encoder_decoder_forward",
    "free_running",
    "generation_backward",
    "layer_config",
    "layer_params",
    "pseudo_matrix_forward",
    "residual_backward",
    "residual_forward",
    "teacher_forced",
]


def _check_config(config) -> RecurrentConfig:
    if not isinstance(config, RecurrentConfig):
        raise InvalidArgument(f"config={describe(config)}: expected a RecurrentConfig")
    return config


def layer_config(config: RecurrentConfig, layer: int, direction: int | None = None) -> RecurrentConfig:
    """Layer ``layer`` of a stack as a network of its own (one direction if ``direction`` is given)."""
    _check_config(config)
    check_int("layer", layer, minimum=0, maximum=config.num_layers - 1)
    bidirectional = config.bidirectional and direction is None
    if direction is not None:
        check_int("direction", direction, minimum=0, maximum=config.num_directions - 1)
    return replace(config, input_size=config.layer_input_size(layer), num_layers=1, bidirectional=bidirectional)


def layer_params(config: RecurrentConfig, params: dict, layer: int, direction: int | None = None) -> dict:
    """The parameters of :func:`layer_config`'s network, renamed to layer 0 (and the forward
    direction when one direction is picked)."""
    sub = layer_config(config, layer, direction)
    out = {}
    for name in sub.param_shapes():
        base, sfx = name.split("_l0")
        if direction is not None:
            sfx = config.suffix(direction)
        out[name] = params[f"{base}_l{layer}{sfx}"]
    return out


def _check_states(config, x, h0, c0):
    """x (T, B, D) and the stack's h0 (L·dirs, B, P) / c0 (L·dirs, B, H), validated whole."""
    x = check_array("x", x, (None, None, config.input_size), dims=("T", "B", "input_size"))
    LD, B = config.num_layers * config.num_directions, x.shape[1]
    if h0 is not None:
        h0 = check_array("h0", h0, (LD, B, config.output_size), dims=("layers*directions", "B", "P"))
    if c0 is not None:
        if not cell_spec(config.cell).has_cell_state:
            raise InvalidArgument(f"c0={describe(c0)}: expected None, {cell_state_note()}")
        c0 = check_array("c0", c0, (LD, B, config.hidden_size), dims=("layers*directions", "B", "hidden_size"))
    return x, h0, c0


def _check_cotangents(result, d_h_n, d_c_n):
    if d_h_n is not None:
        d_h_n = check_array("d_h_n", d_h_n, result.h_n.shape, dims=("layers*directions", "B", "P"))
    if d_c_n is not None:
        if result.c_n is None:
            raise InvalidArgument(f"d_c_n={describe(d_c_n)}: expected None, {cell_state_note()}")
        d_c_n = check_array("d_c_n", d_c_n, result.c_n.shape, dims=("layers*directions", "B", "hidden_size"))
    return d_h_n, d_c_n


def _rename(grads: dict, layer: int) -> dict:
    return {k.replace("_l0", f"_l{layer}"): v for k, v in grads.items() if "_l0" in k}


# ---------------------------------------------------------------- residual stacks


@dataclass(frozen=True)
class ResidualResult:
    """output (T, B, dirs·P), h_n (L·dirs, B, P), c_n; ``residual[l]``: layer l has a skip."""

    output: np.ndarray
    h_n: np.ndarray
    c_n: np.ndarray | None
    config: RecurrentConfig
    residual: tuple
    layers: tuple = field(repr=False)  # one ForwardResult per layer


def residual_forward(config: RecurrentConfig, params: dict, x, h0=None, c0=None, *, residual_layers=None) -> ResidualResult:
    """A stack whose layers in ``residual_layers`` (default: every layer from 1 up) add their
    input to their output. A skip needs equal input and output sizes (dirs·P)."""
    _check_config(config)
    params = check_params(config, params)
    x, h0, c0 = _check_states(config, x, h0, c0)
    L, D = config.num_layers, config.num_directions
    chosen = range(1, L) if residual_layers is None else residual_layers
    if isinstance(chosen, (int, np.integer)) or not hasattr(chosen, "__iter__"):
        raise InvalidArgument(f"residual_layers={describe(chosen)}: expected a collection of layer indices")
    flags = [False] * L
    for layer in chosen:
        check_int("residual_layers entry", layer, minimum=0, maximum=L - 1)
        if config.layer_input_size(layer) != D * config.output_size:
            raise InvalidArgument(
                f"residual_layers={list(chosen)}: expected layers whose input size equals their output "
                f"size; layer {layer} takes {config.layer_input_size(layer)} and gives {D * config.output_size}"
            )
        flags[layer] = True
    results, inp = [], x
    for layer in range(L):
        sl = slice(layer * D, (layer + 1) * D)
        r = forward(layer_config(config, layer), layer_params(config, params, layer), inp,
                    None if h0 is None else h0[sl], None if c0 is None else c0[sl])
        results.append(r)
        inp = r.output + inp if flags[layer] else r.output
    return ResidualResult(
        output=inp,
        h_n=np.concatenate([r.h_n for r in results]),
        c_n=np.concatenate([r.c_n for r in results]) if cell_spec(config.cell).has_cell_state else None,
        config=config,
        residual=tuple(flags),
        layers=tuple(results),
    )


def residual_backward(params: dict, result: ResidualResult, d_output=None, d_h_n=None, d_c_n=None) -> dict:
    """Gradients of every parameter (torch names), ``"input"``, ``"h0"`` (and ``"c0"``):
    each layer's engine backward, plus the skip's identity path for the cotangent."""
    if not isinstance(result, ResidualResult):
        raise InvalidArgument(f"result={describe(result)}: expected a ResidualResult")
    config = result.config
    params = check_params(config, params)  # each layer's backward checks they are the forward's
    d_h_n, d_c_n = _check_cotangents(result, d_h_n, d_c_n)
    L, D = config.num_layers, config.num_directions
    if d_output is None and d_h_n is None and d_c_n is None:
        raise InvalidArgument("d_output, d_h_n and d_c_n are all None: expected at least one cotangent")
    dy = np.zeros_like(result.output) if d_output is None else check_array("d_output", d_output, result.output.shape)
    grads, dh0, dc0 = {}, [None] * L, [None] * L
    for layer in range(L - 1, -1, -1):
        sl = slice(layer * D, (layer + 1) * D)
        g = backward(
            layer_params(config, params, layer), result.layers[layer], dy,
            None if d_h_n is None else d_h_n[sl], None if d_c_n is None else d_c_n[sl],
        )
        grads.update(_rename(g, layer))
        dh0[layer], dc0[layer] = g["h0"], g.get("c0")
        dy = g["input"] + dy if result.residual[layer] else g["input"]
    out = {name: grads[name] for name in config.param_shapes()}
    out["input"] = dy
    out["h0"] = np.concatenate(dh0)
    if cell_spec(config.cell).has_cell_state:
        out["c0"] = np.concatenate(dc0)
    return out


# ---------------------------------------------------------------- encoder–decoder


@dataclass(frozen=True)
class EncoderDecoderResult:
    """output: the decoder's output (T_dec, B, F); the two networks' forward results."""

    output: np.ndarray
    encoder: ForwardResult = field(repr=False)
    decoder: ForwardResult = field(repr=False)


def encoder_decoder_forward(enc_config, enc_params, dec_config, dec_params, x_enc, x_dec, h0=None, c0=None) -> EncoderDecoderResult:
    """Encode ``x_enc`` (T_enc, B, D_enc) from h0/c0, then decode ``x_dec`` (T_dec, B, D_dec)
    starting from the encoder's final state (its c too when both networks are LSTMs)."""
    _check_config(enc_config)
    _check_config(dec_config)
    enc = forward(enc_config, enc_params, x_enc, h0, c0)
    want = (dec_config.num_layers * dec_config.num_directions, enc.h_n.shape[1], dec_config.output_size)
    if enc.h_n.shape != want:
        raise InvalidArgument(
            f"dec_config=RecurrentConfig({dec_config.describe()}): expected a decoder whose initial state "
            f"has the encoder's final-state shape {enc.h_n.shape}, it needs {want}"
        )
    carries_c = cell_spec(dec_config.cell).has_cell_state and cell_spec(enc_config.cell).has_cell_state
    dc0 = enc.c_n if carries_c else None
    if dc0 is not None and dc0.shape[-1] != dec_config.hidden_size:
        raise InvalidArgument(
            f"dec_config.hidden_size={dec_config.hidden_size}: expected {dc0.shape[-1]}, the encoder's cell size"
        )
    dec = forward(dec_config, dec_params, x_dec, enc.h_n, dc0)
    return EncoderDecoderResult(dec.output, enc, dec)


def encoder_decoder_backward(enc_params, dec_params, result: EncoderDecoderResult, d_output, d_h_n=None, d_c_n=None):
    """``(encoder grads, decoder grads)``: the encoder's cotangents are exactly the decoder's
    initial-state gradients (its outputs are unused)."""
    if not isinstance(result, EncoderDecoderResult):
        raise InvalidArgument(f"result={describe(result)}: expected an EncoderDecoderResult")
    dec = backward(dec_params, result.decoder, d_output, d_h_n, d_c_n)
    carries_c = result.decoder.c_n is not None and result.encoder.c_n is not None
    enc = backward(enc_params, result.encoder, None, dec["h0"], dec["c0"] if carries_c else None)
    return enc, dec


# ---------------------------------------------------------------- generation


@dataclass(frozen=True)
class GenerationResult:
    """outputs (T, B, K) = y_t; inputs (T, B, K) actually fed (x_0, then targets or outputs);
    hidden (T, B, P) the network's output h_t; steps: one ForwardResult per step (free running)
    or a single one (teacher forcing)."""

    outputs: np.ndarray
    inputs: np.ndarray
    hidden: np.ndarray
    h_n: np.ndarray
    c_n: np.ndarray | None
    config: RecurrentConfig
    teacher_forced: bool
    steps: tuple = field(repr=False)
    readout: dict | None = field(repr=False, default=None)  # the readout the forward used


def _check_generator(config, readout, x0):
    _check_config(config)
    if config.bidirectional:
        raise InvalidArgument(
            f"config=RecurrentConfig({config.describe()}, bidirectional=True): expected a unidirectional "
            "network; a generator cannot look at outputs it has not produced yet"
        )
    if not isinstance(readout, dict):
        raise InvalidArgument(f"readout={describe(readout)}: expected a dict with 'weight_hy' (K, P) and 'bias_y' (K,)")
    K, P = config.input_size, config.output_size
    W = check_array("readout['weight_hy']", readout.get("weight_hy"), (K, P), dims=("K=input_size", "P"))
    b = readout.get("bias_y")
    if b is not None:
        b = check_array("readout['bias_y']", b, (K,), dims=("K=input_size",))
    x0 = check_array("x0", x0, (None, K), dims=("B", "input_size"))
    return W, b, x0


def _readout(h, W, b):
    y = h @ W.T
    return y if b is None else y + b


def teacher_forced(config: RecurrentConfig, params: dict, readout: dict, x0, targets, h0=None, c0=None) -> GenerationResult:
    """Teacher forcing: inputs are ``x0`` (B, K) then ``targets[:-1]`` (targets (T, B, K))."""
    W, b, x0 = _check_generator(config, readout, x0)
    targets = check_array("targets", targets, (None, x0.shape[0], config.input_size), dims=("T", "B", "K"))
    inputs = np.concatenate([x0[None], targets[:-1]], axis=0)
    r = forward(config, params, inputs, h0, c0)
    return GenerationResult(_readout(r.output, W, b), inputs, r.output, r.h_n, r.c_n, config, True, (r,),
                            {"weight_hy": W, "bias_y": b})


def free_running(config: RecurrentConfig, params: dict, readout: dict, x0, T: int, h0=None, c0=None) -> GenerationResult:
    """Free-running generation for ``T`` steps: x_0 = ``x0``, then x_t = y_{t-1}."""
    W, b, x0 = _check_generator(config, readout, x0)
    T = check_int("T", T, minimum=1)
    steps, ys, xs, hs = [], [], [], []
    x, h, c = x0, h0, c0
    for _ in range(T):
        r = forward(config, params, x[None], h, c)
        y = _readout(r.output[0], W, b)
        steps.append(r)
        xs.append(x)
        ys.append(y)
        hs.append(r.output[0])
        x, h, c = y, r.h_n, r.c_n
    return GenerationResult(np.stack(ys), np.stack(xs), np.stack(hs), h, c, config, False, tuple(steps),
                            {"weight_hy": W, "bias_y": b})


def generation_backward(params: dict, readout: dict, result: GenerationResult, d_outputs, *, feedback: bool = True) -> dict:
    """Gradients of ``L`` with ∂L/∂y_t = ``d_outputs[t]`` (T, B, K).

    Returns the parameters' (torch names), ``weight_hy``/``bias_y``, ``"x0"``, ``"h0"`` (and
    ``"c0"``); teacher forcing also gives ``"inputs"`` (T, B, K). Free running back-propagates
    through x_t = y_{t-1} unless ``feedback=False`` cuts that path (a stop-gradient on the
    fed-back output), which is what teacher forcing's gradient equals on the same inputs.
    """
    if not isinstance(result, GenerationResult):
        raise InvalidArgument(f"result={describe(result)}: expected a GenerationResult")
    W, b, _ = _check_generator(result.config, readout, result.inputs[0])
    params = check_params(result.config, params)  # each step's backward checks they are the forward's
    _check_same_readout(result, W, b)
    feedback = check_bool("feedback", feedback)
    dy_all = check_array("d_outputs", d_outputs, result.outputs.shape, dims=("T", "B", "K"))
    grads = {"weight_hy": np.zeros_like(W, dtype=dy_all.dtype)}
    if b is not None:
        grads["bias_y"] = np.zeros_like(b, dtype=dy_all.dtype)
    if result.teacher_forced:
        return _teacher_backward(params, W, b, result, dy_all, grads)
    T = dy_all.shape[0]
    d_fb = np.zeros_like(dy_all[0])
    dh = dc = None
    for t in range(T - 1, -1, -1):
        dy = dy_all[t] + d_fb
        _add_readout_grads(grads, dy, result.hidden[t], b)
        g = backward(params, result.steps[t], (dy @ W)[None], dh, dc)
        for name in params:
            grads[name] = g[name] if name not in grads else grads[name] + g[name]
        dh, dc = g["h0"], g.get("c0")
        d_fb = g["input"][0] if feedback else np.zeros_like(d_fb)
    grads["x0"] = g["input"][0]
    grads["h0"] = dh
    if dc is not None:
        grads["c0"] = dc
    return _ordered(params, grads)


def _check_same_readout(result, W, b):
    used = result.readout
    if used is None:
        return
    for key, given, value in (("weight_hy", W, used["weight_hy"]), ("bias_y", b, used["bias_y"])):
        if (given is None) != (value is None) or (given is not None and not np.array_equal(given, value)):
            raise InvalidArgument(
                f"readout[{key!r}]={describe(given)} differs from the readout the generation ran with: "
                "expected the same readout (the fed-back outputs were computed with it)"
            )


def _add_readout_grads(grads, dy, h, b):
    grads["weight_hy"] = grads["weight_hy"] + dy.reshape(-1, dy.shape[-1]).T @ h.reshape(-1, h.shape[-1])
    if b is not None:
        grads["bias_y"] = grads["bias_y"] + dy.reshape(-1, dy.shape[-1]).sum(axis=0)


def _teacher_backward(params, W, b, result, dy_all, grads):
    _add_readout_grads(grads, dy_all, result.hidden, b)
    g = backward(params, result.steps[0], dy_all @ W)
    grads.update({k: v for k, v in g.items() if k != "input"})
    grads["x0"] = g["input"][0]
    grads["inputs"] = g["input"]
    return _ordered(params, grads)


def _ordered(params, grads):
    head = [n for n in params] + [n for n in ("weight_hy", "bias_y") if n in grads]
    return {n: grads[n] for n in head + [n for n in grads if n not in head]}


# ---------------------------------------------------------------- pseudo-matrix form


def pseudo_matrix_forward(config: RecurrentConfig, params: dict, x, h0=None) -> np.ndarray:
    """Seed 004's stacked Elman network in pseudo-matrix form; returns the output (T, B, H).

    Per layer l: ``h_t = φ(W·[x_t; h_{t-1}] + b)`` with ``W = [W_xh W_hh]`` (H, D + H) and
    ``b = b_ih + b_hh``; layer l ≥ 1 takes layer l−1's h_t as its x_t. Unidirectional only.
    """
    _check_config(config)
    if config.cell != "rnn" or config.bidirectional:
        raise InvalidArgument(
            f"config=RecurrentConfig({config.describe()}): expected a unidirectional Elman RNN "
            "(cell='rnn', bidirectional=False); seed 004's pseudo-matrix form is written for it"
        )
    params = check_params(config, params)
    x, h0, _ = _check_states(config, x, h0, None)
    T, B = x.shape[:2]
    H = config.hidden_size
    inp = x
    for layer in range(config.num_layers):
        W = np.concatenate([params[f"weight_ih_l{layer}"], params[f"weight_hh_l{layer}"]], axis=1)
        bias = params[f"bias_ih_l{layer}"] + params[f"bias_hh_l{layer}"] if config.bias else 0.0
        h = np.zeros((B, H), dtype=np.result_type(x, W)) if h0 is None else h0[layer]
        out = []
        for t in range(T):
            stacked = np.concatenate([inp[t], h], axis=-1)  # I = [x_t; h_{t-1}]
            h = activate(config.nonlinearity, stacked @ W.T + bias)
            out.append(h)
        inp = np.stack(out)
    return inp
