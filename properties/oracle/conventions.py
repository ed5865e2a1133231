"""Neighbouring conventions of torch's recurrent layers, as variants of the reference computation.

Each :class:`Convention` is a legitimate-looking reading of torch's equations that a drop-in may
follow by mistake (or by design, in another framework), with what it computes on a case:

- gate blocks in another order (any permutation of i, f, g, o / r, z, n; Keras' GRU kernel is
  z, r, h): the reference forward and BPTT on the case with the weight blocks permuted, the
  gradients permuted back;
- a +1 offset on the LSTM's forget-gate pre-activation (haiku's ``hk.LSTM``): the reference
  with 1 added to that block of ``bias_ih``;
- h (or c) detached between steps: the reference's BPTT with the carried adjoint cut at every
  crossing (its ``crossing`` rule), h0 cut too or kept;
- the GRU's reset applied to h before the matmul (Keras ``reset_after=False``, the 2014 paper),
  or b_hn outside the reset product: forward only (output, h_n), by a plain step loop;
- h_n taken from the wrong step or direction: one step early, the output at the last time index
  (the padding's zeros, the reverse direction's first step), the directions swapped, the stack
  ordered direction-major, left in a PackedSequence's sorted order; a packed batch run through
  its padding: forward only.

``compute(case)`` returns the quantities the convention determines (a subset of output, h_n,
c_n and the gradients by torch name, "input", "h0", "c0"), in float64. The float32-inside-a-
float64-layer reading is judged differently (by the float32 tolerance) and lives in
:mod:`~bpttcheck.properties.oracle.diagnoses`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from bpttcheck.reference import RecurrentConfig, backward, forward
from bpttcheck.reference.activations import sigmoid
from bpttcheck.reference.cells import cell_spec

__all__ = ["Convention", "conventions", "step_network"]


@dataclass(frozen=True)
class Convention:
    """A neighbouring convention: its description for a report and what it computes."""

    name: str
    compute: Callable[[object], dict]


# --------------------------------------------------------------------------- reference variants


def _results(case, params=None, crossing=None, config=None) -> dict:
    c = case.astype(np.float64)
    cfg, p = config or c.config, params if params is not None else c.params
    res = forward(cfg, p, c.x, c.h0, c.c0, lengths=c.lengths, batch_first=c.batch_first)
    grads = backward(p, res, c.d_output, c.d_h_n, c.d_c_n, crossing=crossing)
    out = {"output": res.output, "h_n": res.h_n, **grads}
    if res.c_n is not None:
        out["c_n"] = res.c_n
    if c.h0 is None:
        out.pop("h0", None)
        out.pop("c0", None)
    return out


_BLOCKED = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _permuted(params: dict, order: list[int], H: int, back: bool = False) -> dict:
    """Each gate-blocked tensor with its blocks rearranged: block j of the result is block
    ``order[j]`` of the input (``back``: the inverse)."""
    inverse = [order.index(j) for j in range(len(order))]
    use = inverse if back else order
    out = {}
    for name, v in params.items():
        if name.startswith(_BLOCKED):
            out[name] = np.concatenate([v[k * H:(k + 1) * H] for k in use], axis=0)
        else:
            out[name] = v
    return out


def _gate_order(case, read: tuple) -> dict:
    """The results of a layer that reads its row blocks as the gates ``read`` (block k holds
    gate ``read[k]``) where torch has ``cell_spec(...).gates``."""
    gates = cell_spec(case.config.cell).gates
    H = case.config.hidden_size
    order = [read.index(g) for g in gates]  # reference gate j sits in the target's block order[j]
    c = case.astype(np.float64)
    got = _results(c, params=_permuted(c.params, order, H))
    grads = {k: v for k, v in got.items() if k.startswith(_BLOCKED)}
    got.update(_permuted(grads, order, H, back=True))
    return got


def _forget_offset(case, offset: float = 1.0) -> dict:
    c = case.astype(np.float64)
    cfg, H = c.config, c.config.hidden_size
    params = dict(c.params)
    config = cfg if cfg.bias else replace(cfg, bias=True)  # the offset needs a bias to live in
    for name, shape in config.param_shapes().items():
        if name.startswith("bias_"):
            b = np.array(params[name]) if name in params else np.zeros(shape)
            if name.startswith("bias_ih"):
                b[H:2 * H] += offset
            params[name] = b
    got = _results(c, params=params, config=config)
    if not cfg.bias:
        got = {k: v for k, v in got.items() if not k.startswith("bias_")}
    return got


def _detached(which: str, keep_h0: bool):
    """The carried adjoint of h (``"h"``), c (``"c"``) or both cut when crossing into each step
    (into step 0 too unless ``keep_h0``)."""

    def crossing(t, dh, dc):
        if keep_h0 and t == 0:
            return dh, dc
        if which in ("h", "both"):
            dh = np.zeros_like(dh)
        if which in ("c", "both") and dc is not None:
            dc = np.zeros_like(dc)
        return dh, dc

    def compute(case):
        got = _results(case, crossing=crossing)
        return {k: v for k, v in got.items() if k not in ("output", "h_n", "c_n")}  # the forward is torch's

    return compute


# --------------------------------------------------------------------------- a plain step loop


def _affine(x, h, w):
    a = x @ w["weight_ih"].T + h @ w["weight_hh"].T
    if w["bias_ih"] is not None:
        a = a + w["bias_ih"] + w["bias_hh"]
    return a


def _rnn_step(nonlinearity):
    act = {"tanh": np.tanh, "relu": lambda a: np.maximum(a, 0.0), "identity": lambda a: a, "sigmoid": sigmoid}
    return lambda x, h, c, w: (act[nonlinearity](_affine(x, h, w)), None)


def _lstm_step(x, h, c, w):
    H = c.shape[-1]
    a = _affine(x, h, w)
    i, f, g, o = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), sigmoid(a[:, 3 * H:])
    c = f * c + i * g
    m = o * np.tanh(c)
    return (m if w["weight_hr"] is None else m @ w["weight_hr"].T), c


def _gru_step(reset: str):
    """torch's GRU step; ``reset="before"``: n = tanh(W_in x + b_in + W_hn (r⊙h) + b_hn);
    ``"bias_outside"``: n = tanh(W_in x + b_in + r⊙(W_hn h) + b_hn)."""

    def step(x, h, c, w):
        H = h.shape[-1]
        gi = x @ w["weight_ih"].T
        bias = w["bias_ih"] is not None
        if bias:
            gi = gi + w["bias_ih"]
        W, b = w["weight_hh"], w["bias_hh"]
        gh = h @ W[:2 * H].T + (b[:2 * H] if bias else 0.0)
        r, z = sigmoid(gi[:, :H] + gh[:, :H]), sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
        b_hn = b[2 * H:] if bias else 0.0
        if reset == "before":
            n = np.tanh(gi[:, 2 * H:] + (r * h) @ W[2 * H:].T + b_hn)
        elif reset == "bias_outside":
            n = np.tanh(gi[:, 2 * H:] + r * (h @ W[2 * H:].T) + b_hn)
        else:
            n = np.tanh(gi[:, 2 * H:] + r * (h @ W[2 * H:].T + b_hn))
        return (1 - z) * n + z * h, None

    return step


def _step_of(config, gru_reset: str = "inside"):
    if config.cell == "lstm":
        return _lstm_step
    if config.cell == "gru":
        return _gru_step(gru_reset)
    return _rnn_step(config.nonlinearity)


def step_network(case, step=None, *, masked: bool = True) -> dict:
    """Forward of the case's network by a plain loop over ``step(x_t, h, c, w) -> (h, c)``
    (default: torch's step of the case's cell): ``output`` (the case's layout), ``h_n``,
    ``c_n`` (LSTM), and ``states``: per layer·direction the h entering each step and after the
    last, in the direction's own time order, (T+1, B, P) (``cells`` the same for c).
    ``masked=False`` runs a padded batch through its padding (lengths ignored), its output
    zeroed at the padding afterwards, as a packing of it would."""
    c = case.astype(np.float64)
    cfg = c.config
    step = step or _step_of(cfg)
    x = c.x.transpose(1, 0, 2) if c.batch_first else c.x
    T, B = x.shape[:2]
    lengths = np.full(B, T) if c.lengths is None else np.asarray(c.lengths)
    t_idx = np.arange(T)[:, None]
    valid = t_idx < lengths[None, :]
    run = valid if masked else np.ones_like(valid)
    order = np.where(run, (lengths[None, :] if masked else T) - 1 - t_idx, t_idx)  # reversal within length
    dirs, LD = cfg.num_directions, cfg.num_layers * cfg.num_directions
    P, H = cfg.output_size, cfg.hidden_size
    h0 = np.zeros((LD, B, P)) if c.h0 is None else c.h0
    carries = cell_spec(cfg.cell).has_cell_state
    c0 = (np.zeros((LD, B, H)) if c.c0 is None else c.c0) if carries else None
    gather = lambda a: np.take_along_axis(a, order[..., None], axis=0)  # noqa: E731 (an involution)
    inp, h_n, c_n, states, cells = x, [], [], [], []
    for layer in range(cfg.num_layers):
        outs = []
        for d in range(dirs):
            idx = layer * dirs + d
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            w = {k: c.params.get(k + sfx) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")}
            xin = inp if d == 0 else gather(inp)
            h, cc = h0[idx], None if c0 is None else c0[idx]
            ys, hs, cs = [], [h], [cc]
            for t in range(T):
                hn, cn = step(xin[t], h, cc, w)
                m = run[t][:, None]
                h = np.where(m, hn, h)
                cc = None if cc is None else np.where(m, cn, cc)
                ys.append(np.where(m, hn, 0.0))
                hs.append(h)
                cs.append(cc)
            y = np.stack(ys)
            outs.append(y if d == 0 else gather(y))
            h_n.append(h)
            c_n.append(cc)
            states.append(np.stack(hs))
            cells.append(None if cc is None else np.stack(cs))
        inp = np.concatenate(outs, axis=-1)
    output = inp * valid[..., None]
    out = {"output": output.transpose(1, 0, 2) if c.batch_first else output, "h_n": np.stack(h_n),
           "states": states, "cells": cells, "lengths": lengths}
    if carries:
        out["c_n"] = np.stack(c_n)
    return out


def _forward_only(net: dict) -> dict:
    return {k: net[k] for k in ("output", "h_n", "c_n") if k in net}


def _gru_variant(reset: str):
    return lambda case: _forward_only(step_network(case, _gru_step(reset)))


# --------------------------------------------------------------------------- h_n from the wrong place


def _final(case, pick) -> dict:
    """h_n rebuilt by ``pick(states (T+1, B, P), lengths, direction) -> (B, P)`` per layer and
    direction (h_n alone: a target may take c_n right and h_n wrong, or the other way round)."""
    net = step_network(case)
    dirs = case.config.num_directions
    return {"h_n": np.stack([pick(s, net["lengths"], i % dirs) for i, s in enumerate(net["states"])])}


def _one_step_early(states, lengths, d):
    return states[np.maximum(lengths - 1, 0), np.arange(len(lengths))]


def _last_time_index(states, lengths, d):
    """The output at time index T-1: a forward direction's state there if the sequence reaches
    it (0 in its padding), the reverse direction's first step (own time 0) where it does."""
    T = states.shape[0] - 1
    b = np.arange(len(lengths))
    full = lengths == T
    if d == 0:
        return np.where(full[:, None], states[T, b], 0.0)
    return np.where(full[:, None], states[1, b], 0.0)


def _swap_directions(case):
    net = step_network(case)
    out = {}
    v = net["h_n"]
    out["h_n"] = v.reshape(-1, 2, *v.shape[1:])[:, ::-1].reshape(v.shape)
    return out


def _direction_major(case):
    net = step_network(case)
    L = case.config.num_layers
    out = {}
    v = net["h_n"]
    out["h_n"] = v.reshape(L, 2, *v.shape[1:]).swapaxes(0, 1).reshape(v.shape)
    return out


def _sorted_batch_order(case):
    """h_n (c_n) left in a PackedSequence's sorted order, longest first (its ``sorted_indices``),
    instead of being put back in the batch's order (``unsorted_indices``)."""
    net = step_network(case)
    order = np.argsort(-np.asarray(case.lengths), kind="stable")
    return {k: net[k][:, order] for k in ("h_n", "c_n") if k in net}


def _through_padding(case):
    net = step_network(case, masked=False)
    return _forward_only(net)


# --------------------------------------------------------------------------- the list


def _gate_name(gates, read) -> str:
    text = f"the gate blocks read in the order ({', '.join(read)}) instead of torch's ({', '.join(gates)})"
    if tuple(read) == ("z", "r", "n"):
        text += " (Keras' GRU kernel order z, r, h)"
    return text


def conventions(case) -> list[Convention]:
    """The neighbouring conventions that apply to ``case`` (its cell, direction, padding)."""
    cfg: RecurrentConfig = case.config
    spec = cell_spec(cfg.cell)
    out = []
    for read in itertools.permutations(spec.gates):
        if read != spec.gates:
            out.append(Convention(_gate_name(spec.gates, read), lambda c, read=read: _gate_order(c, read)))
    if cfg.cell == "lstm":
        out.append(Convention("a +1 offset on the forget gate's pre-activation (haiku's hk.LSTM adds one)",
                              _forget_offset))
    if cfg.cell == "gru":
        out.append(Convention("the reset gate applied to h before the matmul, n = tanh(W_in x + b_in + "
                              "W_hn (r⊙h) + b_hn) (Keras reset_after=False, the 2014 paper); torch "
                              "resets after it, inside r⊙(W_hn h + b_hn)", _gru_variant("before")))
        out.append(Convention("b_hn outside the reset product, n = tanh(W_in x + b_in + r⊙(W_hn h) + b_hn); "
                              "torch has r⊙(W_hn h + b_hn)", _gru_variant("bias_outside")))
    out.append(Convention("h detached between steps (no gradient flows from one step into the previous "
                          "one, nor into h0)", _detached("h", keep_h0=False)))
    out.append(Convention("h detached between steps after the first (the gradient reaches h0 but no "
                          "earlier step)", _detached("h", keep_h0=True)))
    if spec.has_cell_state:
        out.append(Convention("c detached between steps (the cell state's gradient stops at each step)",
                              _detached("c", keep_h0=False)))
        out.append(Convention("h and c detached between steps", _detached("both", keep_h0=False)))
    out.append(Convention("h_n taken one step before each sequence's end",
                          lambda c: _final(c, _one_step_early)))
    if cfg.bidirectional or case.lengths is not None:
        out.append(Convention("h_n taken from the output at the last time index (output[-1]: zero in "
                              "a padded sequence, the reverse direction's first step)",
                              lambda c: _final(c, _last_time_index)))
    if cfg.bidirectional:
        out.append(Convention("h_n with the forward and reverse directions swapped", _swap_directions))
        if cfg.num_layers > 1:
            out.append(Convention("h_n stacked direction-major (index direction·num_layers + layer "
                                  "instead of layer·num_directions + direction)", _direction_major))
    if case.lengths is not None and not case.enforce_sorted:
        out.append(Convention("h_n (and c_n) left in the PackedSequence's sorted order, longest first, instead of "
                              "the batch's order (unsorted_indices not applied)", _sorted_batch_order))
    if case.lengths is not None:
        out.append(Convention("the PackedSequence run as its padded tensor: lengths ignored, every sequence "
                              "run on through its padding (h_n at the padded end, the reverse direction "
                              "starting in the padding)", _through_padding))
    return out
