"""Deprecated: :class:`Benchmark` lives in :mod:`bpttcheck.bench.core` (removed in 0.3)."""

from bpttcheck.bench.core import Benchmark

__all__ = ["Benchmark"]
