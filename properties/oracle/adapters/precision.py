"""Does a float64 target compute in float64? Measured, never guessed from versions.

:func:`float64_probe` runs a numpy-protocol target twice on one float32-representable case —
once in float64, once in float32 — and divides its float64 error against the reference by its
float32 error. A computation carried in float64 is ~10⁶ times more accurate than its float32
self (u64/u32 ≈ 2e-9, times a condition ratio near 1); one that rounds through float32
anywhere (Keras' ``ops.matmul`` of float64 tensors on the torch and jax backends, an
accidental ``.float()``) is about as accurate as its float32 run. A ratio above
:data:`BELOW_FLOAT64_RATIO` says so, and adapters warn with :class:`BelowFloat64Warning`.
"""

from __future__ import annotations

import numpy as np

from bpttcheck.reference import RecurrentConfig
from bpttcheck.reference.cells import cell_spec

from ...strategies import make_case
from ..numpy_checks import config_dict

__all__ = ["BELOW_FLOAT64_RATIO", "BelowFloat64Warning", "float64_probe"]

#: err(float64 run) / err(float32 run) above this: the float64 target computes below float64.
#: A true float64 computation gives ~1e-9 (u64/u32 times a condition ratio near 1); one that
#: rounds through float32 anywhere gives ~0.1-1.
BELOW_FLOAT64_RATIO = 1e-3


class BelowFloat64Warning(UserWarning):
    """A float64 target whose results are no more accurate than its own float32 run."""


def _probe_case(cell: str, nonlinearity: str):
    cfg = RecurrentConfig(cell=cell, input_size=3, hidden_size=4, num_layers=1, nonlinearity=nonlinearity,
                          bias=True, bidirectional=False, proj_size=0)
    case32 = make_case(cfg, T=5, B=2, seed=20240521, sigma_max=0.8).astype(np.float32)
    return case32, case32.astype(np.float64)  # the same values, exactly representable in both


def _worst_relative_error(fn, case) -> float:
    result, grads = case.astype(np.float64).reference()
    want = {"output": result.output, "h_n": result.h_n, **grads}
    if result.c_n is not None:
        want["c_n"] = result.c_n
    got = fn(config_dict(case.config), dict(case.params), case.x, case.h0, case.c0, case.d_output, case.d_h_n,
             case.d_c_n if cell_spec(case.config.cell).has_cell_state else None)
    worst = 0.0
    for k, e in want.items():
        scale = float(np.max(np.abs(e))) or 1.0
        worst = max(worst, float(np.max(np.abs(np.asarray(got[k], dtype=np.float64) - e))) / scale)
    return worst


def float64_probe(fn, cell: str, nonlinearity: str = "tanh") -> dict:
    """Measure whether the numpy-protocol function ``fn`` computes a float64 case in float64.

    Returns ``{"err64", "err32", "ratio", "below_float64"}``: the worst relative error of
    every result (outputs, states, gradients) against the reference, for the float64 call and
    the float32 call on the same float32-representable values, and their ratio.
    """
    case32, case64 = _probe_case(cell, nonlinearity)
    err64, err32 = _worst_relative_error(fn, case64), _worst_relative_error(fn, case32)
    ratio = err64 / err32 if err32 > 0 else 0.0
    return {"err64": err64, "err32": err32, "ratio": ratio, "below_float64": ratio > BELOW_FLOAT64_RATIO}
