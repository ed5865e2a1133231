"""Cross-checks of PyTorch's recurrent layers (or drop-ins for them) against the reference.

Running torch is the torch adapter's (:mod:`bpttcheck.properties.torch_adapter`); judging the
results is the judge's (:mod:`bpttcheck.properties.judge`, re-exported here as
:func:`compare_results`). torch is imported lazily: this module imports without it, and its
functions say clearly when torch is needed.
"""

from __future__ import annotations

from bpttcheck.reference.cells import cell_spec
from bpttcheck.reference.config import RecurrentConfig
from bpttcheck.reference.validation import check_callable, check_instance, fail
from bpttcheck.reference.precision import get_precision

from .compare import Comparison
from .judge import compare_results
from .reproduce import torch_check_snippet
from .strategies import Case
from .torch_adapter import (
    build_module,
    cuda_available,
    load_weights,
    precision_mode,
    require_torch,
    run_module,
    torch_available,
)

__all__ = [
    "compare_results",
    "compare_with_torch",
    "cuda_available",
    "require_torch",
    "run_torch_layer",
    "torch_available",
    "torch_layer",
]


def _check_device(device) -> None:
    torch = require_torch()
    try:
        ok = isinstance(device, (str, torch.device)) and torch.device(device) is not None
    except (RuntimeError, ValueError, TypeError):
        ok = False
    if not ok:
        fail("device", device, "a torch device such as 'cpu' or 'cuda'")


def _check_torch_dtype(dtype) -> None:
    torch = require_torch()
    value = getattr(torch, dtype, None) if isinstance(dtype, str) else None
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        fail("dtype", dtype, "the name of a torch floating-point dtype such as 'float64' or 'float32'")


def _check_case(case) -> None:
    check_instance("case", case, Case, "a Case (from make_case() or the cases() strategy)")


def torch_layer(config, params, *, dtype="float64", device="cpu", batch_first=False, cls=None):
    """A ``torch.nn.{RNN,LSTM,GRU}`` (or drop-in ``cls``) holding ``params``."""
    check_instance("config", config, RecurrentConfig, "a RecurrentConfig")
    _check_torch_dtype(dtype)
    _check_device(device)
    if cls is not None:
        check_callable("cls", cls, "None or a drop-in class for torch's layer (same constructor)")
    module = build_module(cls, config, batch_first=batch_first, device=device, dtype=dtype)
    load_weights(module, params)
    return module


def run_torch_layer(module, case, *, device="cpu", dtype="float64") -> dict:
    """Forward and backward of ``module`` on ``case`` with torch autograd, as NumPy arrays
    (the adapter's :func:`~bpttcheck.properties.torch_adapter.run_module`)."""
    check_callable("module", module, "a torch module, e.g. from torch_layer()")
    _check_case(case)
    _check_torch_dtype(dtype)
    _check_device(device)
    return run_module(module, case, device=device, dtype=dtype)


def compare_with_torch(case, *, device="cpu", dtype="float64", precision=None, cls=None,
                       raise_on_mismatch=True) -> list[Comparison]:
    """Compare torch (``dtype`` on ``device``) with the float64 reference on ``case``.

    The reference runs in float64 on the case's values (rounded to ``dtype``'s storage
    first), so the float32 comparison measures torch's float32 error, judged by the tolerance
    policy with ``precision`` (a row of the precision table: "float32", "tf32", …; default
    ``dtype`` itself). Every output, state and gradient is compared; the first mismatch raises
    :class:`~bpttcheck.properties.compare.Mismatch` with an asserting reproducer. ``cls``
    replaces torch's built-in class by a drop-in with the same constructor.
    """
    _check_case(case)
    _check_device(device)
    row = get_precision(precision or dtype)
    storage = get_precision(dtype).storage
    case = case.rounded(dtype)
    with precision_mode(device, row):
        module = torch_layer(case.config, case.params, dtype=storage, device=device,
                             batch_first=case.batch_first, cls=cls)
        got = run_module(module, case, device=device, dtype=storage)
    name = getattr(cls, "__name__", "cls") if cls is not None else f"torch.nn.{cell_spec(case.config.cell).torch_module}"
    return compare_results(
        case, got, precision=row.name,
        context=f"{name} on {device}, {dtype} vs reference; {case.describe()}",
        reproducer=lambda: case.reproducer(torch_check_snippet(case, device, cls, row.name)),
        raise_on_mismatch=raise_on_mismatch,
    )
