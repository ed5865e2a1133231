"""Checks of ``numpy`` targets: a plain callable over NumPy arrays, so that JAX or any framework
(or a project without torch) can plug in::

    fn(config, params, x, h0, c0, d_output, d_h_n, d_c_n) -> dict

``config`` is a plain dict (cell "rnn"/"lstm"/"gru", input_size, hidden_size, num_layers,
nonlinearity, bias, bidirectional, proj_size); ``params`` maps torch's parameter names to
arrays; ``x`` (T, B, D) time-major; ``h0`` (L·dirs, B, P); ``c0`` (L·dirs, B, H) for an LSTM,
else None; the cotangents define ``L = Σ⟨d_output, output⟩ + ⟨d_h_n, h_n⟩ (+ ⟨d_c_n, c_n⟩)``.
The result holds "output", "h_n" ("c_n"), and the gradients of L for every parameter name,
"input", "h0" ("c0"), as arrays (anything ``numpy.asarray`` accepts, e.g. JAX arrays). The
arrays are float64 (or float32 in the float32 checks, judged by the tolerance policy). Raising
NotImplementedError declines a configuration; the target must not modify its arguments.
The target is called once per drawn case, for every cell type unless ``--kind numpy:lstm``
(or a ``cells`` attribute on the target, e.g. ``("gru",)``) narrows it (docs/frameworks.md).
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np

from bpttcheck.reference.cells import TORCH_CELLS, cell_spec

from ..case_space import CaseSpace
from ..reproduce import JUDGE_LINES
from ..runner import PropertyCheck
from .common import Guarded, TargetFailure, call_target, check_id, require_same_inputs, snapshot
from .diagnoses import judged
from .targets import TargetError
from .tbptt_checks import with_initial_states

__all__ = ["case_space", "config_dict", "numpy_checks", "target_cells"]

_GROUPS = {"gradients": dict(bidirectional=False, proj=False), "bidirectional": dict(bidirectional=True, proj=False),
           "proj_size": dict(bidirectional=None, proj=True)}


def config_dict(config) -> dict:
    return dict(cell=config.cell, input_size=config.input_size, hidden_size=config.hidden_size,
                num_layers=config.num_layers, nonlinearity=config.nonlinearity, bias=config.bias,
                bidirectional=config.bidirectional, proj_size=config.proj_size)


def _snippet(spec, case, dtype):
    return case.reproducer(f"""from bpttcheck.properties.oracle import load_target
from bpttcheck.properties.oracle.numpy_checks import config_dict
from bpttcheck.properties.judge import compare_results
fn = load_target({spec!r})
got = fn(config_dict(config), params, x, h0, c0, d_output, d_h_n, d_c_n)
got = {{k: np.asarray(v) for k, v in got.items() if v is not None}}
comparisons = compare_results(case, got, precision={dtype!r}, raise_on_mismatch=False)
""" + JUDGE_LINES)


def _body(fn, spec, dtype, drawn_case):
    case = with_initial_states(drawn_case).astype(np.dtype(dtype))
    case = replace(case, d_c_n=case.d_c_n if cell_spec(case.config.cell).has_cell_state else None)
    ctx = f"{spec}, {dtype}; {case.describe()}"
    rep = lambda: _snippet(spec, case, dtype)  # noqa: E731
    args = (dict(case.params), case.x, case.h0, case.c0, case.d_output, case.d_h_n, case.d_c_n)
    before = snapshot(*args[1:], *case.params.values())
    got = call_target(f"{spec}(config, params, x, h0, c0, d_output, d_h_n, d_c_n)", fn, config_dict(case.config),
                      *args, option=case.config.describe(), context=ctx, reproducer=rep)
    require_same_inputs(("x", "h0", "c0", "d_output", "d_h_n", "d_c_n") + tuple(case.params), before,
                        (*args[1:], *case.params.values()), ctx, rep)
    if not isinstance(got, dict):
        raise TargetFailure(f"WrongType: returned {type(got).__name__}; expected a dict of output, h_n, "
                            f"gradients by name ({ctx})")
    arrays = {}
    for k, v in got.items():
        try:
            arrays[k] = None if v is None else np.asarray(v)
        except Exception as exc:
            raise TargetFailure(f"WrongType: result[{k!r}] ({type(v).__name__}) is not an array: {exc} ({ctx})") from None
        if arrays[k] is not None and arrays[k].dtype != np.dtype(dtype):
            raise TargetFailure(f"WrongDtype: result[{k!r}] has dtype {arrays[k].dtype} where {dtype} was expected ({ctx})")
    return judged(case, arrays, precision=dtype, context=ctx, reproducer=rep)


def case_space(cell, group, dtype):
    """The cases of one check: time-major, unpadded (the protocol's form), the group's own
    options only, float32 contractive; the coverage phases of
    :class:`~bpttcheck.properties.case_space.CaseSpace` (no unbatched form in this protocol)."""
    g = _GROUPS[group]
    return CaseSpace(cell, bidirectional=g["bidirectional"], proj=g["proj"], packed=False, unbatched=False,
                     float64=dtype == "float64", batch_first=False)


def target_cells(target) -> tuple:
    """The cells a numpy target is checked for: the one its kind names (``numpy:lstm``), else
    those its ``cells`` attribute lists (adapters set it), else every cell torch has."""
    if target.cell:
        return (target.cell,)
    declared = getattr(target.obj, "cells", None)
    if declared is None:
        return TORCH_CELLS
    cells = (declared,) if isinstance(declared, str) else tuple(declared)
    unknown = [c for c in cells if c not in TORCH_CELLS]
    if not cells or unknown:
        raise TargetError(f"target={target.spec!r}: its cells attribute is {declared!r}; expected a non-empty tuple "
                          f"of {', '.join(TORCH_CELLS)}")
    return cells


def numpy_checks(target, options) -> list[PropertyCheck]:
    spec, fn, dtypes = target.spec, target.obj, tuple(options.dtypes)
    cells = target_cells(target)
    out = []
    for dtype in dtypes:
        if dtype not in ("float64", "float32"):
            continue  # NumPy has no bfloat16; half precision is a torch/CUDA concern
        for cell in cells:
            for group in _GROUPS:
                if group == "proj_size" and not cell_spec(cell).projection:
                    continue
                space = case_space(cell, group, dtype)
                out.append(PropertyCheck(
                    name=f"{spec} (numpy) {cell} {group}, {dtype}",
                    strategy=space.main(),
                    coverage=space.coverage,
                    body=Guarded(partial(_body, fn, spec, dtype)),
                    id=check_id("numpy", cell, group, "cpu", dtype),
                ))
    return out
