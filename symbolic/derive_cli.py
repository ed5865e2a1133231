"""Deprecated: ``bpttcheck derive`` lives in :mod:`bpttcheck.commands.derive` (removed in 0.3)."""

from bpttcheck.commands.derive import add_arguments, run

__all__ = ["add_arguments", "run"]
