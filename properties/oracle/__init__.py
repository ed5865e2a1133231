"""The oracle for other projects: verify anyone's recurrent layer, cell, step function, clipping
function, truncated-BPTT loop or randomized estimator (README: the protocols).

    >>> from bpttcheck.properties.oracle import verify_target
    >>> report = verify_target("torch.nn:GRU", device="cpu")   # doctest: +SKIP
    >>> report.ok, print(report.table())                        # doctest: +SKIP

A thin module whose names resolve lazily from their submodules (importing it costs nothing):
``targets`` (loading), ``kinds`` (the kind registry), ``api`` (checks, running), ``sandbox``
(per-case time limit) and one module of checks per kind.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "api": ("BUILTIN_TARGETS", "builtin_checks", "target_checks", "verify_target"),
    "kinds": ("KINDS", "detect_kind"),
    "targets": ("TargetError", "load_target"),
    "report": ("Report",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
