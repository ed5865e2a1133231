"""Deprecated: ``bpttcheck diagnose`` lives in :mod:`bpttcheck.commands.diagnose` (removed in 0.3)."""

from bpttcheck.commands.diagnose import COLORS, NAMES, LagCurves, add_arguments, lag_curves, run, scaled_params

__all__ = ["COLORS", "NAMES", "LagCurves", "add_arguments", "lag_curves", "run", "scaled_params"]
