"""Deprecated location of :mod:`bpttcheck.reference.validation` (kept while the branches of the
architecture wave land; it goes once nothing imports it — tests/test_layers.py flags users)."""

from .validation import *  # noqa: F401,F403
from .validation import __all__  # noqa: F401
