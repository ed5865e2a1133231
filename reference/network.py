"""Stacked, bidirectional recurrent networks: forward and hand-written BPTT.

One backward engine serves every scheme: each layer's backward sweep takes a ``crossing``
rule that transforms the carried adjoint as it crosses the link into step t (identity for
full BPTT; a cut or a 1/π weight for truncated and randomized schemes). Every layer of a stack
is cut at the same times. Arrays are time-major inside; ``batch_first`` is converted here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .cells import cell_spec, cell_state_note
from .config import RecurrentConfig
from .validation import InvalidArgument, check_array, check_bool, check_int, check_lengths, describe, real_dtype

__all__ = ["ForwardResult", "forward", "backward", "Crossing", "check_params", "compose_crossings"]

#: ``crossing(t, dh, dc) -> (dh, dc)``: applied to the adjoint carried from step t back to
#: step t-1 (t = 0: back to the initial state), in every layer and direction.
Crossing = Callable[[int, np.ndarray, "np.ndarray | None"], tuple]


def compose_crossings(*crossings: Crossing | None) -> Crossing | None:
    """One crossing rule applying ``crossings`` in order (None entries are skipped)."""
    for i, c in enumerate(crossings):
        if c is not None and not callable(c):
            raise InvalidArgument(f"crossings[{i}]={describe(c)}: expected None or a rule (t, dh, dc) -> (dh, dc)")
    rules = [c for c in crossings if c is not None]
    if not rules:
        return None
    if len(rules) == 1:
        return rules[0]

    def crossing(t, dh, dc):
        for rule in rules:
            dh, dc = rule(t, dh, dc)
        return dh, dc

    return crossing


def _checked_crossing(rule: Crossing) -> Crossing:
    """``rule`` with its result checked at each step: a rule returning something other than a
    pair (dh, dc) shaped like its inputs is named here, not as an unpacking error in a cell."""
    def crossing(t, dh, dc):
        out = rule(t, dh, dc)
        if (not isinstance(out, (tuple, list)) or len(out) != 2
                or getattr(out[0], "shape", None) != dh.shape
                or (dc is not None and getattr(out[1], "shape", None) != dc.shape)):
            raise InvalidArgument(
                f"crossing returned {describe(out)} at t={t}: expected a pair (dh, dc) shaped like its "
                f"inputs (dh {dh.shape}, dc {None if dc is None else dc.shape})"
            )
        return out
    return crossing


@dataclass(frozen=True)
class ForwardResult:
    """What :func:`forward` returns: output, final states, and what the backward needs.

    output (T, B, directions·P) — (B, T, …) with ``batch_first``; h_n (layers·directions, B, P);
    c_n (layers·directions, B, H) for a cell with a cell state (the LSTM), else None.
    :meth:`layer_cache` gives one layer's and direction's named cache.
    """

    output: np.ndarray
    h_n: np.ndarray
    c_n: np.ndarray | None
    config: RecurrentConfig
    batch_first: bool
    lengths: np.ndarray | None
    stack_shape: tuple = ()
    _caches: list = field(repr=False, default_factory=list)
    _order: np.ndarray | None = field(repr=False, default=None)  # reversal within lengths
    _weights: dict = field(repr=False, default_factory=dict)  # parameter name -> the array used

    @property
    def has_cache(self) -> bool:
        """False for a forward run with ``keep_cache=False`` (it cannot be differentiated)."""
        return bool(self._caches) and self._caches[0] is not None

    def layer_cache(self, layer: int = 0, direction: int = 0):
        """The named cache (``cell_spec(config.cell).cache_type``) of one layer and direction.

        Its ``states`` field (T+1, …, B, P) holds the h entering each step (``states[0]`` =
        h0, time-major, in the direction's own time order), ``cell_states`` the c of a cell
        with a cell state.
        """
        c = self.config
        layer = check_int("layer", layer, minimum=0, maximum=c.num_layers - 1)
        direction = check_int("direction", direction, minimum=0, maximum=c.num_directions - 1)
        if not self.has_cache:
            raise InvalidArgument(
                "result was computed with keep_cache=False: expected the result of a forward with "
                "keep_cache=True (the default), which keeps the caches"
            )
        return self._caches[layer * c.num_directions + direction]


def _reverse_order(lengths, T: int, B: int):
    """Index array ``idx`` (T, B) such that x[idx, b] reverses each sequence within its length.

    It is an involution, so the same index maps reversed results back. Padding stays put.
    """
    t = np.arange(T)[:, None]
    if lengths is None:
        return np.broadcast_to(T - 1 - t, (T, B))
    return np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)


def _layer_weights(config, params, layer, direction):
    sfx = f"_l{layer}{config.suffix(direction)}"
    return {
        "weight_ih": params["weight_ih" + sfx],
        "weight_hh": params["weight_hh" + sfx],
        "bias_ih": params.get("bias_ih" + sfx),
        "bias_hh": params.get("bias_hh" + sfx),
        "weight_hr": params.get("weight_hr" + sfx),
    }


def check_params(config: RecurrentConfig, params, name: str = "params") -> dict:
    """``params`` validated against ``config``: a dict holding exactly the config's parameter
    names, each a finite floating array of its shape (lists are converted). Returns the arrays.

    Every parameter may carry the same leading stack shape S (several parameter sets, as the
    vectorised finite differences pass); see :func:`forward`.
    """
    return _checked_params(config, params, name)[0]


def _checked_params(config, params, name="params"):
    if not isinstance(params, dict):
        raise InvalidArgument(f"{name}={describe(params)}: expected a dict of parameter name -> array")
    shapes = config._param_shapes
    if len(params) != len(shapes) or any(n not in params for n in shapes):
        missing = [n for n in shapes if n not in params]
        extra = [n for n in params if n not in shapes]
        raise InvalidArgument(
            f"{name} has keys {sorted(map(str, params))}: expected exactly {list(shapes)} for "
            f"{config.describe()} (missing {missing}, unexpected {extra})"
        )
    stack, out = None, {}
    for key, shape in shapes.items():
        value = params[key]
        lead = getattr(value, "shape", ())[: max(0, getattr(value, "ndim", 0) - len(shape))]
        if stack is None:
            stack = lead
        out[key] = check_array(key if name == "params" else f"{name}[{key!r}]", value, stack + shape)
    return out, stack


def _gather_time(a, order, stack_ndim: int):
    """a (T, *S, B, F) with each sequence reversed within its length (order: (T, B))."""
    if order is None:
        return a[::-1]
    T, B = order.shape
    return np.take_along_axis(a, order.reshape((T,) + (1,) * stack_ndim + (B, 1)), axis=0)


def forward(
    config: RecurrentConfig,
    params: dict,
    x,
    h0=None,
    c0=None,
    *,
    lengths=None,
    batch_first: bool = False,
    keep_cache: bool = True,
) -> ForwardResult:
    """Run the network like ``torch.nn.{RNN,LSTM,GRU}`` with the same weights.

    x: (T, B, input_size), or (B, T, input_size) with ``batch_first``. h0: (L·dirs, B, P);
    c0: (L·dirs, B, H) for the LSTM. ``lengths`` (B,) marks padded sequences as a
    ``PackedSequence`` would: padding never changes any result and the output there is 0.

    Parameters may carry a common leading stack shape S (several parameter sets evaluated in
    one call, as the vectorised finite differences do); x, h0 and c0 may then carry S too, and
    every result gets S in front. :func:`backward` takes unstacked results only.
    ``keep_cache=False`` skips the arrays only the backward needs (a forward-only call, as
    finite differences make); such a result cannot be passed to :func:`backward`.
    """
    if not isinstance(config, RecurrentConfig):
        raise InvalidArgument(f"config={describe(config)}: expected a RecurrentConfig")
    batch_first = check_bool("batch_first", batch_first)
    spec = cell_spec(config.cell)
    keep_cache = check_bool("keep_cache", keep_cache)
    params, S = _checked_params(config, params)
    ns = len(S)
    if isinstance(x, np.ndarray) and x.ndim == 3 + ns and ns:
        x = check_array("x", x, S + (None, None, config.input_size))
    else:
        x = check_array("x", x, (None, None, config.input_size),
                        dims=("B", "T", "input_size") if batch_first else ("T", "B", "input_size"))
        x = x.reshape((1,) * ns + x.shape)
    if batch_first:
        x = x.swapaxes(ns, ns + 1)
    T, B = x.shape[ns], x.shape[ns + 1]
    if T == 0 or B == 0:
        raise InvalidArgument(f"x={describe(x)}: expected at least one time step and one batch element")
    LD, P, H = config.num_layers * config.num_directions, config.output_size, config.hidden_size
    state_dims = ("layers*directions", "B")
    if h0 is not None:
        h0 = _check_state("h0", h0, S, (LD, B, P), state_dims + ("P",))
    if c0 is not None:
        if not spec.has_cell_state:
            raise InvalidArgument(f"c0={describe(c0)}: expected None, {cell_state_note()}")
        c0 = _check_state("c0", c0, S, (LD, B, H), state_dims + ("hidden_size",))
    real_dtype(x, h0, c0, *params.values())
    lengths = check_lengths(lengths, T, B)
    dtype = np.result_type(x, *(a for a in (h0, c0) if a is not None), *params.values())
    x = (np.moveaxis(x, ns, 0) if ns else x).astype(dtype, copy=False)  # (T, *S', B, D)
    h0 = _initial_state(h0, dtype, S + (LD, B, P))
    if spec.has_cell_state:
        c0 = _initial_state(c0, dtype, S + (LD, B, H))
    mask = None
    if lengths is not None:
        mask = (np.arange(T)[:, None] < lengths[None, :]).reshape((T,) + (1,) * ns + (B, 1))
    order = None
    if config.bidirectional and lengths is not None:
        order = _reverse_order(lengths, T, B)
    caches = []
    h_n = np.empty(S + (LD, B, P), dtype)
    c_n = np.empty(S + (LD, B, H), dtype) if spec.has_cell_state else None
    inp = x
    for layer in range(config.num_layers):
        outs = []
        for d in range(config.num_directions):
            idx = layer * config.num_directions + d
            xin = inp if d == 0 else _gather_time(inp, order, ns)
            y, hT, cT, cache = spec.forward(
                xin, _layer_weights(config, params, layer, d), h0[..., idx, :, :],
                None if c0 is None else c0[..., idx, :, :], mask, config.nonlinearity, keep_cache,
            )
            outs.append(y if d == 0 else _gather_time(y, order, ns))
            caches.append(cache)
            h_n[..., idx, :, :] = hT
            if c_n is not None:
                c_n[..., idx, :, :] = cT
        inp = outs[0] if len(outs) == 1 else np.concatenate(outs, axis=-1)
    output = np.moveaxis(inp, 0, ns) if ns else inp
    if batch_first:
        output = output.swapaxes(ns, ns + 1)
    return ForwardResult(
        output=output,
        h_n=h_n,
        c_n=c_n,
        config=config,
        batch_first=batch_first,
        lengths=lengths,
        stack_shape=S,
        _caches=caches,
        _order=order,
        _weights=params,
    )


def _initial_state(value, dtype, shape):
    if value is None:
        return np.zeros(shape, dtype)
    value = value.astype(dtype, copy=False)
    return value if value.shape == shape else np.broadcast_to(value, shape)


def _check_state(name, value, S, shape, dims):
    if isinstance(value, np.ndarray) and value.ndim == len(S) + 3 and S:
        return check_array(name, value, S + shape)
    return check_array(name, value, shape, dims=dims)


def _check_forward_params(params, result) -> None:
    """``params`` must be the parameters the forward ran with: the backward differentiates that
    computation (its caches), so any other values would give silently wrong gradients."""
    used = result._weights
    if isinstance(params, dict) and len(params) == len(used) and all(params.get(k) is v for k, v in used.items()):
        return  # the very arrays the forward validated and used: nothing to compare
    params = check_params(result.config, params)
    for key, value in used.items():
        given = params[key]
        if given is not value and not np.array_equal(given, value):
            diff = float(np.max(np.abs(given - value)))
            raise InvalidArgument(
                f"params[{key!r}]={describe(given)} differs from the values forward() ran with (max |Δ| = "
                f"{diff:.3g}): expected the params passed to forward; the backward differentiates the "
                "forward's own computation, so run forward again with these params"
            )


def backward(
    params: dict,
    result: ForwardResult,
    d_output=None,
    d_h_n=None,
    d_c_n=None,
    *,
    crossing: Crossing | None = None,
    magnitudes: bool = False,
) -> dict[str, np.ndarray]:
    """Hand-written BPTT through :func:`forward`'s network.

    Given cotangents of the output (same layout as ``result.output``), of h_n and of c_n
    (each optional), returns the gradients of every parameter (torch names) and of
    ``"input"`` (layout of x), ``"h0"`` and, for the LSTM, ``"c0"``.

    With ``magnitudes=True`` the same sweep runs on the magnitudes of every factor (absolute
    weights, states, inputs and cotangents; each activation derivative replaced by the sum of
    the absolute values of the terms it is computed from): each result is then the sum of the
    absolute values of the terms that make up that gradient element — the scale against which
    its rounding error is judged (condition-aware), since cancellation can make a gradient far
    smaller than the terms it adds.
    """
    if not isinstance(result, ForwardResult):
        raise InvalidArgument(f"result={describe(result)}: expected the ForwardResult of forward()")
    config = result.config
    if not result.has_cache:
        raise InvalidArgument(
            "result was computed with keep_cache=False: expected the result of a forward with "
            "keep_cache=True (the default), which keeps what the backward needs"
        )
    if result.stack_shape:
        raise InvalidArgument(
            f"result has stacked parameters (stack shape {result.stack_shape}): expected the "
            "result of a forward with unstacked parameters; backward takes one parameter set"
        )
    _check_forward_params(params, result)
    magnitudes = check_bool("magnitudes", magnitudes)
    if crossing is not None and not callable(crossing):
        raise InvalidArgument(f"crossing={describe(crossing)}: expected None or a rule (t, dh, dc) -> (dh, dc)")
    if crossing is not None:
        crossing = _checked_crossing(crossing)
    out = result.output
    T, B = (out.shape[1], out.shape[0]) if result.batch_first else out.shape[:2]
    LD, P = config.num_layers * config.num_directions, config.output_size
    if d_output is None and d_h_n is None and d_c_n is None:
        raise InvalidArgument("d_output, d_h_n and d_c_n are all None: expected at least one cotangent")
    dtype = out.dtype
    if d_output is None:
        dy = np.zeros((T, B, out.shape[-1]), dtype)
    else:
        dy = check_array("d_output", d_output, out.shape, dims=("B", "T", "P") if result.batch_first else ("T", "B", "P"))
        dy = dy.transpose(1, 0, 2) if result.batch_first else dy
    if d_h_n is not None:
        d_h_n = check_array("d_h_n", d_h_n, result.h_n.shape, dims=("layers*directions", "B", "P"))
    if d_c_n is not None:
        if result.c_n is None:
            raise InvalidArgument(f"d_c_n={describe(d_c_n)}: expected None, {cell_state_note()}")
        d_c_n = check_array("d_c_n", d_c_n, result.c_n.shape, dims=("layers*directions", "B", "hidden_size"))
    spec = cell_spec(config.cell)
    order = result._order
    grads: dict[str, np.ndarray] = {}
    dh0 = [None] * LD
    dc0 = [None] * LD
    for layer in range(config.num_layers - 1, -1, -1):
        d_in = None
        for d in range(config.num_directions):
            idx = layer * config.num_directions + d
            dyd = dy[..., d * P : (d + 1) * P] if config.bidirectional else dy
            if d == 1:
                dyd = _gather_time(dyd, order, 0)
            cache = result._caches[idx]
            dhT = None if d_h_n is None else d_h_n[idx]
            dcT = None if d_c_n is None else d_c_n[idx]
            if magnitudes:
                cache, dyd = spec.magnitude_cache(cache), np.abs(dyd)
                dhT = None if dhT is None else np.abs(dhT)
                dcT = None if dcT is None else np.abs(dcT)
            dx, dh, dc, g = spec.backward(cache, dyd, dhT, dcT, crossing)
            if d == 1:
                dx = _gather_time(dx, order, 0)
            d_in = dx if d_in is None else d_in + dx
            dh0[idx], dc0[idx] = dh, dc
            sfx = f"_l{layer}{config.suffix(d)}"
            for k, v in g.items():
                grads[k + sfx] = v
        dy = d_in
    ordered = {name: grads[name] for name in config._param_shapes}
    ordered["input"] = dy.transpose(1, 0, 2) if result.batch_first else dy
    ordered["h0"] = _stacked(dh0)
    if spec.has_cell_state:
        ordered["c0"] = _stacked(dc0)
    return ordered


def _stacked(arrays):
    """np.stack for a handful of equally shaped arrays, without its per-call overhead."""
    out = np.empty((len(arrays),) + arrays[0].shape, np.result_type(*arrays))
    for i, a in enumerate(arrays):
        out[i] = a
    return out
