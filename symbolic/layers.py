"""Stacked layers for the symbolic transcription: per-layer symbols and the stacked step.

A network of L unidirectional layers (SPEC §2) is, at each time step, the cells applied in
order — layer l reads layer l−1's new h — so the whole stack is one step
``S' = F(x, S)`` of the stacked state ``S = [h_0, c_0, h_1, c_1, …]`` (c only for the LSTM).
Every scheme of :mod:`.truncation` cuts all layers at the same times, as the reference does,
so the pair-sum over S covers stacks unchanged.

Layer l's parameters are torch's ``*_l{l}``; their symbols carry the layer as a superscript
(``W_{hh,00}^{(1)}``) from layer 1 on, so one-layer names stay as they were. The cell
equations themselves are :func:`.cells.step`'s, applied to a one-layer configuration.
"""

from __future__ import annotations

import sympy as sp

from bpttcheck.reference.validation import InvalidArgument, describe
from bpttcheck.reference.config import RecurrentConfig

from .cells import param_symbols, state_sizes, step, vector_symbols

__all__ = [
    "check_unidirectional",
    "join",
    "layer_config",
    "stacked_symbols",
    "stacked_step",
    "state_layout",
    "state_symbols",
]


def check_unidirectional(config) -> RecurrentConfig:
    """Stacks of any depth; one direction (where a time step, and truncation, is defined)."""
    if not isinstance(config, RecurrentConfig):
        raise InvalidArgument(f"config={describe(config)}: expected a RecurrentConfig")
    if config.bidirectional:
        raise InvalidArgument(
            f"config={config.describe()}: expected bidirectional=False; the symbolic layer "
            "transcribes unidirectional stacks (num_layers ≥ 1)"
        )
    return config


def layer_config(config: RecurrentConfig, layer: int) -> RecurrentConfig:
    """The one-layer configuration of layer ``layer`` (its input is the layer below's h)."""
    return RecurrentConfig(
        config.cell, config.layer_input_size(layer), config.hidden_size, nonlinearity=config.nonlinearity,
        bias=config.bias, proj_size=config.proj_size,
    )


def _layer_symbols(config, layer: int) -> dict[str, sp.Matrix]:
    """Layer ``layer``'s parameter symbols, keyed by the one-layer names (``*_l0``)."""
    syms = param_symbols(layer_config(config, layer))
    if layer == 0:
        return syms
    rename = lambda s: sp.Symbol(f"{s.name}^{{({layer})}}")  # noqa: E731
    return {name: m.applyfunc(rename) for name, m in syms.items()}


def stacked_symbols(config) -> dict[str, sp.Matrix]:
    """Every parameter's symbols keyed by torch's full names (``weight_hh_l1``), in
    ``named_parameters()`` order."""
    check_unidirectional(config)
    out = {}
    for layer in range(config.num_layers):
        for name, m in _layer_symbols(config, layer).items():
            out[name[: -len("_l0")] + f"_l{layer}"] = m
    return out


def _per_layer(config, params: dict, layer: int) -> dict:
    sfx = f"_l{layer}"
    return {name[: -len(sfx)] + "_l0": m for name, m in params.items() if name.endswith(sfx)}


def state_layout(config) -> tuple[int, int, int]:
    """(P, H, n): sizes of each layer's h and c (H = 0 without a cell state) and of S."""
    P, H = state_sizes(layer_config(config, 0))
    return P, H, config.num_layers * (P + H)


def state_symbols(config, prefix_h: str, prefix_c: str, *index) -> list[tuple]:
    """Per layer, ``(h, c)`` columns of fresh symbols (c is None without a cell state);
    layer 0's names are those of a one-layer network."""
    P, H, _ = state_layout(config)
    out = []
    for layer in range(config.num_layers):
        tag = (f"l{layer}",) if layer else ()
        h = vector_symbols(prefix_h, P, *index, *tag)
        c = vector_symbols(prefix_c, H, *index, *tag) if H else None
        out.append((h, c))
    return out


def stacked_step(config, params: dict, x: sp.Matrix, states: list) -> list[tuple]:
    """One time step of the stack: per layer ``(h', c')`` from ``states`` = per layer
    ``(h, c)``; layer l's input is layer l−1's h'."""
    new, inp = [], x
    for layer, (h, c) in enumerate(states):
        h_new, c_new = step(layer_config(config, layer), _per_layer(config, params, layer), inp, h, c)
        new.append((h_new, c_new))
        inp = h_new
    return new


def join(states: list) -> sp.Matrix:
    """S = [h_0, c_0, h_1, c_1, …] as one column."""
    parts = [m for h, c in states for m in (h, c) if m is not None]
    return sp.Matrix.vstack(*parts)
