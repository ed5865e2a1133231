"""Deprecated alias of :mod:`bpttcheck.properties.symbolic_checks` (moved there so that the
symbolic layer imports nothing from the properties above it); removed in 0.3.

``from bpttcheck.symbolic.checks import check_against_oracle`` keeps working and warns.
"""

from __future__ import annotations

import importlib
import warnings

__all__ = [
    "check_against_oracle",
    "check_lambdified",
    "oracle_tolerance_eps",
    "reference_gradients",
    "torch_gradients",
]

_TARGET = "bpttcheck.properties.symbolic_checks"


def __getattr__(name):
    if name in __all__:
        warnings.warn(f"bpttcheck.symbolic.checks.{name} moved to {_TARGET}.{name}; the old name goes in 0.3",
                      DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(_TARGET), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
