"""The cell equations transcribed into SymPy, in PyTorch's layout (one layer, one direction).

Written from SPEC §2, independently of the NumPy reference's cell code::

    rnn:   h' = φ(W_ih x + b_ih + W_hh h + b_hh)
    lstm:  [i f g o] = [σ σ tanh σ](W_ih x + b_ih + W_hh h + b_hh),  c' = f⊙c + i⊙g,
           h' = o⊙tanh(c')   (h' = W_hr (o⊙tanh c') with proj_size)
    gru:   r, z = σ(…), n = tanh(W_in x + b_in + r⊙(W_hn h + b_hn)),  h' = (1−z)⊙n + z⊙h

Vectors are column matrices: x (D×1), h (P×1), c (H×1); weight_ih (G·H × D), weight_hh
(G·H × P), weight_hr (P × H). Parameters are keyed by torch's full names (``weight_hh_l0``).

The transcriptions form a registry keyed by cell name: each cell's
:class:`~bpttcheck.reference.cells.CellSpec` names its step function here
(``symbolic="bpttcheck.symbolic.cells.lstm_step"``) and :func:`transcription` resolves it, so
a new cell adds one function to this module. Every step has the signature
``(config, params, x, h, c) -> (h', c')`` (c and c' None for a cell without a cell state).
"""

from __future__ import annotations

import functools
import importlib

import sympy as sp

from bpttcheck.reference.cells import cell_spec
from bpttcheck.reference.config import RecurrentConfig
from bpttcheck.reference.validation import InvalidArgument, check_int, describe

from .functions import activation, sigmoid, tanh

__all__ = [
    "check_single_layer",
    "elman_step",
    "gru_step",
    "lstm_step",
    "param_symbols",
    "state_sizes",
    "step",
    "transcription",
    "vector_symbols",
]

_SHORT = {"weight_ih": "W_{ih", "weight_hh": "W_{hh", "bias_ih": "b_{ih", "bias_hh": "b_{hh", "weight_hr": "W_{hr"}


def check_single_layer(config) -> RecurrentConfig:
    """The symbolic layer covers one unidirectional layer (where truncation is defined)."""
    if not isinstance(config, RecurrentConfig):
        raise InvalidArgument(f"config={describe(config)}: expected a RecurrentConfig")
    if config.num_layers != 1 or config.bidirectional:
        raise InvalidArgument(
            f"config={config.describe()}: expected num_layers=1 and bidirectional=False; the "
            "symbolic layer transcribes one unidirectional layer"
        )
    return config


def _index(idx) -> str:
    return "".join(str(i) for i in idx) if all(i < 10 for i in idx) else ";".join(str(i) for i in idx)


def param_symbols(config: RecurrentConfig) -> dict[str, sp.Matrix]:
    """One real symbol per parameter entry, as matrices keyed by torch's names.

    A 1×1 weight is named plainly (``W_{hh}``), larger ones by entry (``W_{hh,10}``).
    """
    check_single_layer(config)
    out = {}
    for name, shape in config.param_shapes().items():
        base = _SHORT[name.rsplit("_l", 1)[0]]
        rows, cols = (shape[0], 1) if len(shape) == 1 else shape
        if rows * cols == 1:
            m = sp.Matrix([[sp.Symbol(base + "}")]])
        elif len(shape) == 1:
            m = sp.Matrix(rows, 1, lambda i, j: sp.Symbol(f"{base},{i}}}"))
        else:
            m = sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{base},{_index((i, j))}}}"))
        out[name] = m
    return out


def vector_symbols(prefix: str, n: int, *index) -> sp.Matrix:
    """An n×1 column of real symbols ``prefix_{index,k}`` (the index dropped when empty)."""
    if not isinstance(prefix, str) or not prefix:
        raise InvalidArgument(f"prefix={describe(prefix)}: expected a non-empty string naming the symbols")
    n = check_int("n", n, minimum=0)
    head = ",".join(str(i) for i in index)

    def name(k):
        parts = [p for p in (head, str(k) if n > 1 else "") if p]
        return f"{prefix}_{{{','.join(parts)}}}" if parts else prefix

    return sp.Matrix(n, 1, lambda k, _: sp.Symbol(name(k)))


def state_sizes(config: RecurrentConfig) -> tuple[int, int]:
    """(size of h, size of c): (P, H) for a cell with a cell state (the LSTM), (P, 0) otherwise."""
    if not isinstance(config, RecurrentConfig):
        raise InvalidArgument(f"config={describe(config)}: expected a RecurrentConfig")
    return (config.output_size, config.hidden_size if cell_spec(config.cell).has_cell_state else 0)


def _check_step(config, params, x, h, c, cell: str | None = None) -> None:
    """A step's arguments, checked before SymPy multiplies them (where a wrong size would surface
    as a ShapeError or SympifyError naming none of them)."""
    check_single_layer(config)
    if cell is not None and config.cell != cell:
        raise InvalidArgument(f"config={config.describe()}: expected cell={cell!r}, the one cell this "
                              "function transcribes (step() picks the transcription of any cell)")
    shapes = config.param_shapes()
    if not isinstance(params, dict) or set(params) != set(shapes):
        raise InvalidArgument(f"params={describe(params)}: expected a dict with exactly the keys {list(shapes)} "
                              "(e.g. param_symbols(config))")
    P, H = state_sizes(config)
    wanted = [(n, params[n], (s[0], 1) if len(s) == 1 else tuple(s)) for n, s in shapes.items()]
    wanted += [("x", x, (config.input_size, 1)), ("h", h, (P, 1))]
    if H:
        wanted.append(("c", c, (H, 1)))
    for name, value, shape in wanted:
        if not isinstance(value, sp.MatrixBase) or tuple(value.shape) != shape:
            got = f"Matrix of shape {tuple(value.shape)}" if isinstance(value, sp.MatrixBase) else describe(value)
            raise InvalidArgument(f"{name}={got}: expected a SymPy Matrix of shape {shape}")


def _weights(params: dict, config: RecurrentConfig):
    get = lambda base: params.get(base + "_l0")  # noqa: E731 — one layer only
    return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"), get("weight_hr")


def _block(m, k, H):
    return None if m is None else m[k * H : (k + 1) * H, :]


def _add_bias(a, b):
    return a if b is None else a + b


@functools.cache
def transcription(cell: str):
    """The SymPy step of ``cell``: the function its CellSpec names in ``symbolic``."""
    dotted = cell_spec(cell).symbolic
    module_name, _, attr = dotted.rpartition(".")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise InvalidArgument(f"cell={cell!r}: its CellSpec.symbolic={dotted!r} does not name a SymPy step "
                              f"function ({type(exc).__name__}: {exc}); expected 'package.module.function'") from None
    if not callable(fn):
        raise InvalidArgument(f"cell={cell!r}: its CellSpec.symbolic={dotted!r} is {describe(fn)}; expected a function")
    return fn


def step(config: RecurrentConfig, params: dict, x: sp.Matrix, h: sp.Matrix, c: sp.Matrix | None = None):
    """One step of the cell: ``(h', c')`` (c' is None for a cell without a cell state)."""
    _check_step(config, params, x, h, c)
    return transcription(config.cell)(config, params, x, h, c)


def elman_step(config: RecurrentConfig, params: dict, x: sp.Matrix, h: sp.Matrix, c=None):
    """rnn: h' = φ(W_ih x + b_ih + W_hh h + b_hh)."""
    _check_step(config, params, x, h, c, 'rnn')
    W_ih, W_hh, b_ih, b_hh, _ = _weights(params, config)
    a = _add_bias(_add_bias(W_ih * x, b_ih) + W_hh * h, b_hh)
    return a.applyfunc(lambda e: activation(config.nonlinearity, e)), None


def lstm_step(config: RecurrentConfig, params: dict, x: sp.Matrix, h: sp.Matrix, c: sp.Matrix):
    """lstm: gates i, f, g, o; c' = f⊙c + i⊙g, h' = o⊙tanh(c') (times W_hr with proj_size)."""
    _check_step(config, params, x, h, c, 'lstm')
    W_ih, W_hh, b_ih, b_hh, W_hr = _weights(params, config)
    H = config.hidden_size
    a = _add_bias(_add_bias(W_ih * x, b_ih) + W_hh * h, b_hh)
    i = _block(a, 0, H).applyfunc(sigmoid)
    f = _block(a, 1, H).applyfunc(sigmoid)
    g = _block(a, 2, H).applyfunc(tanh)
    o = _block(a, 3, H).applyfunc(sigmoid)
    c_new = f.multiply_elementwise(c) + i.multiply_elementwise(g)
    m = o.multiply_elementwise(c_new.applyfunc(tanh))
    return (m if W_hr is None else W_hr * m), c_new


def gru_step(config: RecurrentConfig, params: dict, x: sp.Matrix, h: sp.Matrix, c=None):
    """gru: the hidden-side pre-activation of n keeps b_hn, and r multiplies all of it."""
    _check_step(config, params, x, h, c, 'gru')
    W_ih, W_hh, b_ih, b_hh, _ = _weights(params, config)
    H = config.hidden_size
    gi = _add_bias(W_ih * x, b_ih)
    gh = _add_bias(W_hh * h, b_hh)
    r = (_block(gi, 0, H) + _block(gh, 0, H)).applyfunc(sigmoid)
    z = (_block(gi, 1, H) + _block(gh, 1, H)).applyfunc(sigmoid)
    n = (_block(gi, 2, H) + r.multiply_elementwise(_block(gh, 2, H))).applyfunc(tanh)
    ones = sp.ones(H, 1)
    return (ones - z).multiply_elementwise(n) + z.multiply_elementwise(h), None
