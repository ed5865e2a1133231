"""The configuration of a recurrent network and PyTorch's parameter layout for it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .activations import ACTIVATIONS
from .cells import CELLS, cell_spec, cells_that
from .validation import InvalidArgument, check_bool, check_choice, check_dtype, check_int, check_positive_float, fail

__all__ = ["CELLS", "RecurrentConfig", "init_params"]


@dataclass(frozen=True)
class RecurrentConfig:
    """A (possibly stacked, bidirectional) recurrent network in PyTorch's conventions.

    ``cell`` is a name of the cell registry (:data:`bpttcheck.reference.cells.CELLS`):
    ``"rnn"`` (Elman, with ``nonlinearity`` among tanh, relu, identity, sigmoid — torch itself
    has only tanh and relu), ``"lstm"`` (gates i, f, g, o; optional ``proj_size``) or ``"gru"``
    (gates r, z, n; ``b_hn`` inside the reset product). What each cell allows (its
    nonlinearities, a projection) is read from its :class:`~bpttcheck.reference.cells.CellSpec`.
    """

    cell: str
    input_size: int
    hidden_size: int
    num_layers: int = 1
    nonlinearity: str = "tanh"
    bias: bool = True
    bidirectional: bool = False
    proj_size: int = 0

    def __post_init__(self):
        check_choice("cell", self.cell, CELLS)
        check_int("input_size", self.input_size, minimum=1)
        check_int("hidden_size", self.hidden_size, minimum=1)
        check_int("num_layers", self.num_layers, minimum=1)
        check_choice("nonlinearity", self.nonlinearity, ACTIVATIONS)
        check_bool("bias", self.bias)
        check_bool("bidirectional", self.bidirectional)
        check_int("proj_size", self.proj_size, minimum=0)
        spec = cell_spec(self.cell)
        if self.proj_size and not spec.projection:
            raise InvalidArgument(
                f"proj_size={self.proj_size} (type=int): expected 0 for cell={self.cell!r}; "
                f"projections exist only for {cells_that(lambda s: s.projection)}"
            )
        if self.proj_size >= self.hidden_size:
            raise InvalidArgument(
                f"proj_size={self.proj_size} (type=int): expected a value smaller than "
                f"hidden_size={self.hidden_size} (torch's rule)"
            )
        if self.nonlinearity not in spec.nonlinearities:
            allowed = " or ".join(repr(a) for a in spec.nonlinearities)
            fixed = "" if spec.takes_nonlinearity else " (its nonlinearity is fixed)"
            raise InvalidArgument(
                f"nonlinearity={self.nonlinearity!r} (type=str): expected {allowed} for cell={self.cell!r}{fixed}"
            )

    @property
    def gates(self) -> int:
        """Number of stacked row blocks in ``weight_ih``/``weight_hh`` (1, 4 or 3): the
        cell's gate names are ``cell_spec(config.cell).gates``."""
        return len(cell_spec(self.cell).gates)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """Size of h (and of each direction's output): ``proj_size`` if set, else hidden."""
        return self.proj_size or self.hidden_size

    @property
    def torch_mode(self) -> str:
        """torch's ``mode`` string for this network ("RNN_TANH", "LSTM", "GRU")."""
        return cell_spec(self.cell).torch_mode(self.nonlinearity)

    def layer_input_size(self, layer: int) -> int:
        return self.input_size if layer == 0 else self.num_directions * self.output_size

    def suffix(self, direction: int) -> str:
        return "_reverse" if direction else ""

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Parameter names and shapes in ``named_parameters()`` order (a fresh dict)."""
        return dict(self._param_shapes)

    @cached_property
    def _param_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = {}
        G, H, P = self.gates * self.hidden_size, self.hidden_size, self.output_size
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                sfx = f"_l{layer}{self.suffix(direction)}"
                shapes["weight_ih" + sfx] = (G, self.layer_input_size(layer))
                shapes["weight_hh" + sfx] = (G, P)
                if self.bias:
                    shapes["bias_ih" + sfx] = (G,)
                    shapes["bias_hh" + sfx] = (G,)
                if self.proj_size:
                    shapes["weight_hr" + sfx] = (P, H)
        return shapes

    def describe(self) -> str:
        """A compact description for reports: ``lstm, D=2, H=3, L=2, bidirectional, proj=2``."""
        parts = [f"{self.cell}/{self.nonlinearity}" if cell_spec(self.cell).takes_nonlinearity else self.cell]
        parts.append(f"D={self.input_size}, H={self.hidden_size}")
        if self.num_layers > 1:
            parts.append(f"L={self.num_layers}")
        if self.bidirectional:
            parts.append("bidirectional")
        if self.proj_size:
            parts.append(f"proj={self.proj_size}")
        if not self.bias:
            parts.append("bias=False")
        return ", ".join(parts)


def init_params(
    config: RecurrentConfig, rng: np.random.Generator, dtype=np.float64, scale: float | None = None
) -> dict[str, np.ndarray]:
    """Parameters drawn uniformly from ±scale (torch's default scale is 1/√hidden_size)."""
    if not isinstance(config, RecurrentConfig):
        fail("config", config, "a RecurrentConfig")
    dtype = check_dtype("dtype", dtype)
    if scale is not None:
        check_positive_float("scale", scale, allow_zero=True)
    if not isinstance(rng, np.random.Generator):
        raise InvalidArgument(
            f"rng={rng!r} (type={type(rng).__name__}): expected a numpy.random.Generator, "
            "e.g. numpy.random.default_rng(0)"
        )
    bound = 1.0 / np.sqrt(config.hidden_size) if scale is None else float(scale)
    return {
        name: rng.uniform(-bound, bound, size=shape).astype(dtype)
        for name, shape in config.param_shapes().items()
    }
