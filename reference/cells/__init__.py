"""The cell registry: one :class:`~bpttcheck.reference.cellspec.CellSpec` per recurrent cell.

Every module of this package defines one cell — its layer forward, backward, magnitude cache,
step Jacobian, named cache type — and ends with ``SPEC = CellSpec(...)``. The modules are
found here automatically, so adding a cell is one new module in this package plus its SymPy
transcription (named by ``SPEC.symbolic``, in :mod:`bpttcheck.symbolic.cells`). Everything
else asks the registry::

    cell_spec(config.cell).has_cell_state     # rather than testing the name
    cell_spec("gru").gates                    # ("r", "z", "n")
    cell_spec("lstm").torch_module            # "LSTM"

:data:`CELLS` lists the names in rank order: rnn, lstm, gru, then any others.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..cellspec import CellSpec
from ..validation import InvalidArgument, check_choice

__all__ = ["CELLS", "CellSpec", "TORCH_CELLS", "cell_spec", "cell_specs", "cell_state_note", "cells_that"]


def _discover() -> dict[str, CellSpec]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        spec = getattr(module, "SPEC", None)
        if not isinstance(spec, CellSpec):
            raise ImportError(f"{module.__name__} defines no SPEC = CellSpec(...): every module of "
                              f"{__name__} is one cell")
        found.append(spec)
    found.sort(key=lambda s: (s.rank, s.name))
    names = [s.name for s in found]
    if len(set(names)) != len(names):
        raise ImportError(f"two cell modules in {__name__} register the same name: {names}")
    return {s.name: s for s in found}


_REGISTRY = _discover()

#: Every registered cell's name, in rank order (rnn, lstm, gru, …).
CELLS: tuple[str, ...] = tuple(_REGISTRY)

#: The cells torch has classes for (``torch.nn.<torch_module>`` and ``<torch_cell>``).
TORCH_CELLS: tuple[str, ...] = tuple(n for n, s in _REGISTRY.items() if s.torch_module is not None)


def cell_spec(name) -> CellSpec:
    """The :class:`CellSpec` of the cell called ``name``; InvalidArgument for an unknown one."""
    if not isinstance(name, str):
        raise InvalidArgument(f"cell={name!r} (type={type(name).__name__}): expected one of "
                              + ", ".join(repr(c) for c in CELLS))
    spec = _REGISTRY.get(name)
    if spec is None:
        check_choice("cell", name, CELLS)
    return spec


def cell_specs() -> tuple[CellSpec, ...]:
    """Every registered :class:`CellSpec`, in :data:`CELLS` order."""
    return tuple(_REGISTRY.values())


def cells_that(predicate) -> str:
    """The cells whose spec satisfies ``predicate``, for messages: "the LSTM", "the LSTM and the X"."""
    titles = [f"the {s.title}" for s in _REGISTRY.values() if predicate(s)]
    return " and ".join(titles) if titles else "no registered cell"


def cell_state_note() -> str:
    """"only the LSTM has a cell state", for the errors about c0, c_n and their cotangents."""
    text = cells_that(lambda s: s.has_cell_state)
    return f"only {text} {'have' if ' and ' in text else 'has'} a cell state"
