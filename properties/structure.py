"""Structural properties of the architectures in the seeds (issue 8).

Like :mod:`.stability`, each ``check_*`` takes the implementation under test as keyword
arguments (the reference by default) and raises :class:`Mismatch` naming the quantity.
Gradients through the architectures are checked against the complex step along one fixed
random direction (exact to rounding, SPEC §7) and against their structural identities:
teacher forcing = free running with the feedback cut; the encoder sees only ∂L/∂(decoder h0).
"""

from __future__ import annotations

import numpy as np

from bpttcheck.reference.validation import InvalidArgument
from bpttcheck.reference.cells import cell_spec
from bpttcheck.reference.architectures import (
    encoder_decoder_backward,
    encoder_decoder_forward,
    free_running,
    generation_backward,
    layer_config,
    layer_params,
    pseudo_matrix_forward,
    residual_backward,
    residual_forward,
    teacher_forced,
)
from bpttcheck.reference.network import backward, forward

from .compare import Mismatch, assert_close
from .tolerance import implementation_tolerance, precision_of

__all__ = [
    "check_bidirectional",
    "check_encoder_decoder",
    "check_order",
    "check_pseudo_matrix",
    "check_residual",
    "check_teacher_forcing",
]

_EPS = 1e-30


def _tol(dtype, T, scale, amplification=1.0):
    s = float(np.max(np.abs(scale))) if np.size(scale) else 1.0
    return implementation_tolerance(precision_of(dtype), T=max(1, int(T)), amplification=amplification, scale=max(s, 1e-300))


def _close(quantity, got, expected, T, context, reproducer, dtype=np.float64):
    assert_close(quantity, got, expected, _tol(dtype, T, expected), context=context, reproducer=reproducer)


def _directions(arrays: dict, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(np.shape(v)) for k, v in arrays.items() if v is not None}


def _dot(grads: dict, dirs: dict) -> float:
    return float(sum(np.sum(grads[k] * v) for k, v in dirs.items()))


def _close_dot(quantity, grads, dirs, expected, T, context, reproducer, dtype=np.float64):
    """⟨∇L, v⟩ against the complex step, judged on Σ|∇L·v| (the sum may cancel far below its terms)."""
    scale = float(sum(np.sum(np.abs(grads[k] * v)) for k, v in dirs.items()))
    assert_close(quantity, _dot(grads, dirs), expected, _tol(dtype, T, scale), context=context, reproducer=reproducer)


def _perturbed(arrays: dict, dirs: dict) -> dict:
    return {k: (None if v is None else np.asarray(v) + 1j * _EPS * dirs[k]) for k, v in arrays.items()}


def check_pseudo_matrix(config, params, x, h0=None, *, pseudo=pseudo_matrix_forward, reproducer=None) -> None:
    """Seed 004: the stacked equations ``φ(W_xh x + W_hh h + b)`` equal the pseudo-matrix form
    ``φ([W_xh W_hh]·[x; h] + b)`` on every output."""
    x = np.asarray(x)
    expected = forward(config, params, x, h0).output
    _close("output (pseudo-matrix form)", pseudo(config, params, x, h0), expected, x.shape[0],
           f"{config.describe()}, T={x.shape[0]}", reproducer, x.dtype)


def _reverse_layer(config, params, layer, inp, h0, c0):
    """One bidirectional layer as two unidirectional networks: forward, and reversed in time."""
    outs, hs, cs = [], [], []
    for d in range(2):
        sub, p = layer_config(config, layer, d), layer_params(config, params, layer, d)
        i = 2 * layer + d
        seq = inp if d == 0 else inp[::-1]
        r = forward(sub, p, seq, None if h0 is None else h0[i : i + 1], None if c0 is None else c0[i : i + 1])
        outs.append(r.output if d == 0 else r.output[::-1])
        hs.append(r.h_n)
        cs.append(r.c_n)
    return np.concatenate(outs, axis=-1), hs, cs


def check_bidirectional(config, params, x, h0=None, c0=None, *, forward_fn=forward, reproducer=None) -> None:
    """A bidirectional layer = concat(forward RNN on x, time-reversed output of the backward
    RNN on reversed x); layers stack on the concatenation. Outputs and h_n (and c_n) agree."""
    if not config.bidirectional:
        raise InvalidArgument(f"config=RecurrentConfig({config.describe()}): expected bidirectional=True")
    x = np.asarray(x)
    T = x.shape[0]
    got = forward_fn(config, params, x, h0, c0)
    inp, hs, cs = x, [], []
    for layer in range(config.num_layers):
        inp, h, c = _reverse_layer(config, params, layer, inp, h0, c0)
        hs += h
        cs += c
    ctx = f"{config.describe()}, T={T}, two unidirectional networks"
    _close("output (bidirectional = forward | reversed backward)", got.output, inp, T, ctx, reproducer, x.dtype)
    _close("h_n (bidirectional = forward | reversed backward)", got.h_n, np.concatenate(hs), T, ctx, reproducer, x.dtype)
    if cell_spec(config.cell).has_cell_state:
        _close("c_n (bidirectional = forward | reversed backward)", got.c_n, np.concatenate(cs), T, ctx, reproducer, x.dtype)


def check_order(config, params, x, h0=None, c0=None, *, forward_fn=forward, perm=None, reproducer=None) -> None:
    """Permuting the batch permutes every result; reversing time changes the last output
    (an RNN is not a bag of inputs). The second part needs inputs that are not palindromes
    and a trajectory that depends on them (it is skipped when the reference says otherwise)."""
    x = np.asarray(x)
    T, B = x.shape[:2]
    perm = np.arange(B)[::-1] if perm is None else np.asarray(perm)
    ctx = f"{config.describe()}, T={T}, B={B}, batch permutation {perm.tolist()}"
    r = forward_fn(config, params, x, h0, c0)
    rp = forward_fn(config, params, x[:, perm], None if h0 is None else h0[:, perm], None if c0 is None else c0[:, perm])
    _close("output under a batch permutation", rp.output, r.output[:, perm], T, ctx, reproducer, x.dtype)
    _close("h_n under a batch permutation", rp.h_n, r.h_n[:, perm], T, ctx, reproducer, x.dtype)
    ref_gap = np.abs(forward(config, params, x[::-1], h0, c0).output[-1] - forward(config, params, x, h0, c0).output[-1]).max()
    tol = _tol(x.dtype, T, r.output)
    if T < 2 or ref_gap <= 1e3 * tol.atol:
        return  # the reference itself cannot tell the orders apart on this input
    gap = np.abs(forward_fn(config, params, x[::-1], h0, c0).output[-1] - r.output[-1]).max()
    if gap <= tol.atol:
        raise Mismatch(
            f"OutputMismatch: output[T-1] does not depend on the order of the inputs ({config.describe()}, T={T})\n"
            f"  max |y_T(x) − y_T(reversed x)| = {gap:.2e} ≤ {tol.atol:.1e}; the reference gives {ref_gap:.2e}", None)


def check_residual(config, params, x, h0=None, c0=None, d_output=None, *, forward_fn=residual_forward,
                   backward_fn=residual_backward, reproducer=None) -> None:
    """Residual stacks (every layer from 1 up has a skip): (a) with the weights of those layers
    set to 0 (and their initial states 0) each is the identity, so the output is layer 0's and
    ∂L/∂x passes unchanged; (b) for any weights the gradient matches the complex step."""
    if config.num_layers < 2:
        raise InvalidArgument(f"config.num_layers={config.num_layers} (type=int): expected >= 2 for a skip between layers")
    x = np.asarray(x)
    T, B = x.shape[:2]
    ctx = f"{config.describe()}, residual layers 1..{config.num_layers - 1}, T={T}, B={B}"
    rng = np.random.default_rng(0)
    dy = rng.standard_normal((T, B, config.num_directions * config.output_size)) if d_output is None else d_output
    D = config.num_directions
    zero = {k: (np.zeros_like(v) if not k.split("_l")[1].startswith("0") else v) for k, v in params.items()}
    z_h0 = None if h0 is None else np.concatenate([h0[:D], np.zeros_like(h0[D:])])
    z_c0 = None if c0 is None else np.concatenate([c0[:D], np.zeros_like(c0[D:])])
    res = forward_fn(config, zero, x, z_h0, z_c0)
    g = backward_fn(zero, res, dy)
    base_cfg, base_p = layer_config(config, 0), layer_params(config, params, 0)
    base = forward(base_cfg, base_p, x, None if h0 is None else h0[:D], None if c0 is None else c0[:D])
    gb = backward(base_p, base, dy)
    _close("output (zero-weight residual layers are the identity)", res.output, base.output, T, ctx, reproducer, x.dtype)
    _close("input (gradient through zero-weight residual layers)", g["input"], gb["input"], T, ctx, reproducer, x.dtype)
    # (b) any weights: ⟨∇, v⟩ against Im L(θ + iεv)/ε over parameters, input and initial states
    arrays = dict(params, input=x, h0=h0, c0=c0)
    dirs = _directions(arrays)
    res = forward_fn(config, params, x, h0, c0)
    g = backward_fn(params, res, dy)
    p = _perturbed(arrays, dirs)
    rc = forward_fn(config, {k: p[k] for k in params}, p["input"], p["h0"], p["c0"])
    expected = float(np.sum(dy * rc.output).imag / _EPS)
    _close_dot("⟨∇L, v⟩ through the residual stack", g, dirs, expected, T, ctx + ", complex step", reproducer, x.dtype)


def check_teacher_forcing(config, params, readout, x0, T, d_outputs, h0=None, c0=None, *, teacher=teacher_forced,
                          free=free_running, grads_fn=generation_backward, reproducer=None) -> None:
    """Generation with continuous outputs fed back (x_t = y_{t-1}):

    (a) teacher forcing with targets equal to the free-running outputs gives the same outputs;
    (b) its gradient equals the free-running gradient with the feedback path cut;
    (c) the free-running gradient with feedback matches the complex step of the free-running
        loss ``Σ_t ⟨d_outputs[t], y_t⟩`` along a random direction (BPTT through the feedback).
    """
    ctx = f"{config.describe()}, T={T}, generation with y_{{t-1}} fed back"
    fr = free(config, params, readout, x0, T, h0, c0)
    tf = teacher(config, params, readout, x0, fr.outputs, h0, c0)
    dt = np.asarray(x0).dtype
    _close("output (teacher forcing on the free-running outputs)", tf.outputs, fr.outputs, T, ctx, reproducer, dt)
    g_tf = grads_fn(params, readout, tf, d_outputs)
    g_cut = grads_fn(params, readout, fr, d_outputs, feedback=False)
    for name in [*params, *readout, "x0", "h0"] + (["c0"] if c0 is not None or cell_spec(config.cell).has_cell_state else []):
        _close(f"{name} (teacher forcing vs feedback cut)", g_tf[name], g_cut[name], T, ctx, reproducer, dt)
    arrays = dict(params, **readout, x0=x0, h0=h0, c0=c0)
    dirs = _directions(arrays, seed=1)
    p = _perturbed(arrays, dirs)
    frc = free(config, {k: p[k] for k in params}, {k: p[k] for k in readout}, p["x0"], T, p["h0"], p["c0"])
    expected = float(np.sum(d_outputs * frc.outputs).imag / _EPS)
    g = grads_fn(params, readout, fr, d_outputs)
    _close_dot("⟨∇L, v⟩ through the feedback path", g, dirs, expected, T, ctx + ", complex step", reproducer, dt)


def check_encoder_decoder(enc_config, enc_params, dec_config, dec_params, x_enc, x_dec, d_output, h0=None, c0=None, *,
                          forward_fn=encoder_decoder_forward, backward_fn=encoder_decoder_backward, reproducer=None) -> None:
    """The encoder receives gradient only through the decoder's initial state: its gradients
    equal the engine's with cotangents ∂L/∂(decoder h0, c0) on its final state and none on its
    outputs; and they match the complex step of the whole loss along a random direction."""
    T = np.asarray(x_enc).shape[0] + np.asarray(x_dec).shape[0]
    ctx = f"encoder {enc_config.describe()} → decoder {dec_config.describe()}, T_enc={np.shape(x_enc)[0]}, T_dec={np.shape(x_dec)[0]}"
    res = forward_fn(enc_config, enc_params, dec_config, dec_params, x_enc, x_dec, h0, c0)
    g_enc, g_dec = backward_fn(enc_params, dec_params, res, d_output)
    carries_c = cell_spec(enc_config.cell).has_cell_state and cell_spec(dec_config.cell).has_cell_state
    only = backward(enc_params, res.encoder, None, g_dec["h0"], g_dec["c0"] if carries_c else None)
    for name in enc_params:
        _close(f"encoder {name} (only through the decoder's initial state)", g_enc[name], only[name], T, ctx, reproducer)
    arrays = dict(enc_params, x_enc=x_enc, h0=h0, c0=c0)
    dirs = _directions(arrays, seed=2)
    p = _perturbed(arrays, dirs)
    rc = forward_fn(enc_config, {k: p[k] for k in enc_params}, dec_config,
                    {k: v.astype(complex) for k, v in dec_params.items()}, p["x_enc"], np.asarray(x_dec, complex), p["h0"], p["c0"])
    expected = float(np.sum(d_output * rc.output).imag / _EPS)
    g_enc = dict(g_enc, x_enc=g_enc["input"])
    _close_dot("⟨∇_encoder L, v⟩", g_enc, dirs, expected, T, ctx + ", complex step", reproducer)
