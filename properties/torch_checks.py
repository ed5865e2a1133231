"""Cross-checks of PyTorch's recurrent layers (or drop-ins for them) against the reference.

Running torch is the torch adapter's (:mod:`bpttcheck.properties.torch_adapter`); judging the
results is the judge's (:mod:`bpttcheck.properties.judge`, re-exported here as
:func:`compare_results`). torch is imported lazily: this module imports without it, and its
functions say clearly when torch is needed.
"""

from __future__ import annotations

from bpttcheck.reference.cells import cell_spec
from bpttcheck.reference.precision import get_precision

from .compare import Comparison
from .judge import compare_results
from .reproduce import torch_check_snippet
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


def torch_layer(config, params, *, dtype="float64", device="cpu", batch_first=False, cls=None):
    """A ``torch.nn.{RNN,LSTM,GRU}`` (or drop-in ``cls``) holding ``params``."""
    module = build_module(cls, config, batch_first=batch_first, device=device, dtype=dtype)
    load_weights(module, params)
    return module


def run_torch_layer(module, case, *, device="cpu", dtype="float64") -> dict:
    """Forward and backward of ``module`` on ``case`` with torch autograd, as NumPy arrays
    (the adapter's :func:`~bpttcheck.properties.torch_adapter.run_module`)."""
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
