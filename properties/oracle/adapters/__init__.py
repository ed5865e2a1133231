"""Adapters that make other frameworks' recurrent code a bpttcheck target (docs/frameworks.md).

- :mod:`.jax_layouts` — torch-named parameters in the layouts of flax (linen), equinox and
  haiku cells, and ``flax_cell`` / ``equinox_cell`` / ``haiku_cell``, which turn a library's
  cell class into a :class:`~bpttcheck.properties.oracle.jax_checks.JaxCell` (the ``jax`` kind);
- :mod:`.keras` — ``keras_target(keras.layers.LSTM)`` and friends: a Keras 3 recurrent layer
  as a ``numpy``-kind target under the torch or the jax backend, with a warning when a float64
  layer computes below float64 (measured, not guessed from versions).

Each module imports its framework only when used.
"""

from __future__ import annotations

__all__: list[str] = []
