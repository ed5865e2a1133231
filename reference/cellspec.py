"""What the rest of the project needs to know about a recurrent cell: one :class:`CellSpec`.

Each module of :mod:`bpttcheck.reference.cells` defines one ``SPEC``; the registry there
collects them. Nothing outside a cell's own module tests a cell's name for a property the spec
states (``cell_spec(name).has_cell_state``, never a test of the name).

A cell's layer functions (one layer, one direction, time-major) have one signature each::

    forward(x (T,B,D), w, h0 (B,P), c0 (B,H) or None, mask (T,B,1) or None, nonlinearity, keep)
        -> (y (T,B,P), h_T, c_T or None, cache or None)
    backward(cache, dy (T,B,P), dh_T or None, dc_T or None, crossing or None)
        -> (dx (T,B,D), dh_0, dc_0 or None, {weight_ih, weight_hh, [bias_ih, bias_hh], …})
    magnitude_cache(cache) -> a cache of the same type holding the magnitudes of its factors
    step_jacobian(config, params, a_in (T,B,G), a_hh (T,B,G), cache)
        -> (d_pre (T,B,N,G), direct (T,B,N,N) or None, states (T+1,B,N))

``w`` maps weight_ih, weight_hh, bias_ih, bias_hh (None without bias) and weight_hr (None
without projection) to the layer's arrays. The cache is a NamedTuple of ``cache_type`` with
at least ``x``, ``w``, ``states`` (T+1, B, P: the h entering each step, ``states[0]`` = h0)
and ``mask``, plus ``cell_states`` (T+1, B, H) when the cell carries a cell state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .activations import ACTIVATIONS
from .validation import InvalidArgument, describe

__all__ = ["CACHE_FIELDS", "CellSpec"]

#: Fields every cell's cache has (``cell_states`` too for a cell with a cell state).
CACHE_FIELDS = ("x", "w", "states", "mask")


@dataclass(frozen=True)
class CellSpec:
    """One recurrent cell, as the registry knows it.

    name: the ``RecurrentConfig.cell`` value ("lstm"); gates: the names of the row blocks of
    weight_ih / weight_hh in their order (("i", "f", "g", "o")); has_cell_state: whether a c
    travels beside h (then c0, c_n, "c0" gradients exist); nonlinearities: the values
    ``nonlinearity`` may take (the first is the default); projection: whether ``proj_size``
    applies; torch_module / torch_cell: the class names in ``torch.nn`` ("LSTM", "LSTMCell";
    None when torch has none); the layer functions (see the module doc); cache_type: the
    NamedTuple the layer forward returns as its cache; symbolic: the dotted name of the SymPy
    transcription of one step (resolved by :mod:`bpttcheck.symbolic.cells`; the reference never
    imports SymPy); title: the name used in messages ("LSTM"; default the name);
    rank: the order in :data:`bpttcheck.reference.cells.CELLS`.
    """

    name: str
    gates: tuple[str, ...]
    has_cell_state: bool
    nonlinearities: tuple[str, ...]
    forward: Callable
    backward: Callable
    magnitude_cache: Callable
    step_jacobian: Callable
    cache_type: type
    symbolic: str
    projection: bool = False
    torch_module: str | None = None
    torch_cell: str | None = None
    title: str = ""
    rank: int = 100

    def __post_init__(self):
        if not (isinstance(self.name, str) and self.name.isidentifier() and self.name.islower()):
            raise InvalidArgument(f"name={describe(self.name)}: expected a lower-case identifier such as 'lstm'")
        if not self.title:
            object.__setattr__(self, "title", self.name)
        for field_name in ("gates", "nonlinearities"):
            value = getattr(self, field_name)
            if not (isinstance(value, tuple) and value and all(isinstance(v, str) for v in value)):
                raise InvalidArgument(f"{field_name}={describe(value)}: expected a non-empty tuple of names")
        unknown = [a for a in self.nonlinearities if a not in ACTIVATIONS]
        if unknown:
            raise InvalidArgument(f"nonlinearities={self.nonlinearities!r}: expected names among {ACTIVATIONS} (unknown: {unknown})")
        for field_name in ("forward", "backward", "magnitude_cache", "step_jacobian"):
            if not callable(getattr(self, field_name)):
                raise InvalidArgument(f"{field_name}={describe(getattr(self, field_name))}: expected the cell's {field_name} function")
        fields = getattr(self.cache_type, "_fields", None)
        needed = CACHE_FIELDS + (("cell_states",) if self.has_cell_state else ())
        if fields is None or any(f not in fields for f in needed):
            raise InvalidArgument(f"cache_type={describe(self.cache_type)}: expected a NamedTuple with fields {needed}")
        if not (isinstance(self.symbolic, str) and "." in self.symbolic):
            raise InvalidArgument(f"symbolic={describe(self.symbolic)}: expected the dotted name of a SymPy step, "
                                  "e.g. 'bpttcheck.symbolic.cells.lstm_step'")
        for field_name in ("torch_module", "torch_cell"):
            value = getattr(self, field_name)
            if value is not None and not (isinstance(value, str) and value.isidentifier()):
                raise InvalidArgument(f"{field_name}={describe(value)}: expected a class name in torch.nn or None")

    @property
    def takes_nonlinearity(self) -> bool:
        """Whether ``nonlinearity`` is a real choice for this cell (torch's ``nonlinearity=``)."""
        return len(self.nonlinearities) > 1

    def torch_mode(self, nonlinearity: str) -> str:
        """torch's ``mode`` string: "LSTM", "GRU", or "RNN_TANH" for a cell taking a nonlinearity."""
        if self.torch_module is None:
            raise InvalidArgument(f"cell={self.name!r} (type=str): expected a cell with a torch class; torch has none for it")
        base = self.torch_module.upper()
        return f"{base}_{nonlinearity.upper()}" if self.takes_nonlinearity else base
