"""SymPy derivations of BPTT: an independent transcription of the cells (stacks of any depth),
the unrolled loss differentiated symbolically (reverse mode over its DAG, or SymPy's diff), an
arbitrary-precision gradient oracle, and symbolic identities.

Importing this package is cheap: SymPy is loaded only when a submodule is used, e.g.
``from bpttcheck.symbolic.oracle import pair_sum``.
"""

from __future__ import annotations

import importlib

__all__ = [
    "bench",
    "bounds",
    "cells",
    "checks",
    "codegen",
    "dag",
    "derive",
    "derive_cli",
    "functions",
    "identities",
    "layers",
    "oracle",
    "polynomial",
    "precision",
    "program",
    "render",
    "reverse",
    "running",
    "truncation",
    "truncation_identities",
    "unroll",
]


def __getattr__(name):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
