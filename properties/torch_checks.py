"""Cross-checks of PyTorch's recurrent layers (or drop-ins for them) against the reference.

torch is imported lazily: this module imports without it, and its functions say clearly
when torch is needed.
"""

from __future__ import annotations

import warnings

import numpy as np

from bpttcheck.reference.cells import cell_spec

from .compare import Comparison, Mismatch, compare
from .sensitivity import gradient_magnitudes, rounding_sensitivity
from .tolerance import implementation_tolerance

__all__ = [
    "compare_results",
    "compare_with_torch",
    "cuda_available",
    "require_torch",
    "run_torch_layer",
    "torch_available",
    "torch_layer",
]



def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def require_torch():
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            "this check needs PyTorch; install it with: pip install 'bpttcheck[torch]' "
            "(on a CPU-only machine pin the local build, e.g. torch==2.13.0)"
        ) from exc
    return torch


def cuda_available() -> bool:
    if not torch_available():
        return False
    import torch

    return bool(torch.cuda.is_available())


def torch_layer(config, params, *, dtype="float64", device="cpu", batch_first=False, cls=None):
    """A ``torch.nn.{RNN,LSTM,GRU}`` (or drop-in ``cls``) holding ``params``."""
    torch = require_torch()
    if cls is None:
        cls = getattr(torch.nn, cell_spec(config.cell).torch_module)
    kwargs = dict(num_layers=config.num_layers, bias=config.bias, batch_first=batch_first,
                  bidirectional=config.bidirectional)
    if cell_spec(config.cell).takes_nonlinearity:
        kwargs["nonlinearity"] = config.nonlinearity
    if config.proj_size:
        kwargs["proj_size"] = config.proj_size
    module = cls(config.input_size, config.hidden_size, **kwargs)
    module = module.to(device=device, dtype=getattr(torch, dtype))
    with torch.no_grad():
        named = dict(module.named_parameters())
        for name, value in params.items():
            named[name].copy_(torch.from_numpy(np.ascontiguousarray(value)))
    return module


def run_torch_layer(module, case, *, device="cpu", dtype="float64") -> dict:
    """Forward and backward of ``module`` on ``case`` with torch autograd, as NumPy arrays.

    The loss is ``Σ⟨d_output, output⟩ + ⟨d_h_n, h_n⟩ (+ ⟨d_c_n, c_n⟩)``; lengths go through a
    ``PackedSequence``.
    """
    torch = require_torch()
    tdt = getattr(torch, dtype)

    def leaf(a):
        return None if a is None else torch.tensor(a, dtype=tdt, device=device, requires_grad=True)

    x, h0, c0 = leaf(case.x), leaf(case.h0), leaf(case.c0)
    inp = x
    if case.lengths is not None:
        inp = torch.nn.utils.rnn.pack_padded_sequence(
            x, torch.as_tensor(case.lengths), batch_first=case.batch_first, enforce_sorted=False)
    if cell_spec(case.config.cell).has_cell_state:
        hx = None if h0 is None else (h0, c0 if c0 is not None else torch.zeros(
            h0.shape[0], h0.shape[1], case.config.hidden_size, dtype=tdt, device=device))
    else:
        hx = h0
    with warnings.catch_warnings():
        # torch notes that oneDNN has no projection kernel and falls back: not our concern.
        warnings.filterwarnings("ignore", message=".*projections is not supported with oneDNN")
        out, state = module(inp, hx)
    if case.lengths is not None:
        out = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=case.batch_first, total_length=case.T)[0]
    h_n, c_n = state if isinstance(state, tuple) else (state, None)
    loss = out.new_zeros(())
    for value, cot in ((out, case.d_output), (h_n, case.d_h_n), (c_n, case.d_c_n)):
        if value is not None and cot is not None:
            loss = loss + (value * torch.as_tensor(cot, dtype=tdt, device=device)).sum()
    loss.backward()
    res = {
        "output": out.detach().cpu().double().numpy(),
        "h_n": h_n.detach().cpu().double().numpy(),
        "c_n": None if c_n is None else c_n.detach().cpu().double().numpy(),
        "input": x.grad.cpu().double().numpy() if x.grad is not None else np.zeros(case.x.shape),
    }
    for name, p in module.named_parameters():
        res[name] = p.grad.cpu().double().numpy() if p.grad is not None else np.zeros(tuple(p.shape))
    if h0 is not None:
        res["h0"] = h0.grad.cpu().double().numpy() if h0.grad is not None else np.zeros(h0.shape)
    if c0 is not None:
        res["c0"] = c0.grad.cpu().double().numpy() if c0.grad is not None else np.zeros(c0.shape)
    return res


def compare_with_torch(case, *, device="cpu", dtype="float64", precision=None, cls=None,
                       raise_on_mismatch=True) -> list[Comparison]:
    """Compare torch (``dtype`` on ``device``) with the float64 reference on ``case``.

    The reference runs in float64 on the case's values (rounded to ``dtype`` first), so the
    float32 comparison measures torch's float32 error, judged by the tolerance policy with
    ``precision`` ("float32", "tf32", …; default: the dtype's). Every output, state and
    gradient is compared; the first mismatch raises :class:`Mismatch` with a reproducer.
    ``cls`` replaces torch's built-in class by a drop-in with the same constructor.
    """
    from .reproduce import torch_check_snippet

    case = case.astype(np.dtype(dtype) if dtype in ("float32", "float64") else np.float32)
    module = torch_layer(case.config, case.params, dtype=dtype, device=device,
                         batch_first=case.batch_first, cls=cls)
    got = run_torch_layer(module, case, device=device, dtype=dtype)
    name = cls.__name__ if cls is not None else f"torch.nn.{cell_spec(case.config.cell).torch_module}"
    return compare_results(
        case, got,
        precision=precision or ("float64" if dtype == "float64" else "float32" if dtype == "float32" else dtype),
        context=f"{name} on {device}, {dtype} vs reference; {case.describe()}",
        reproducer=lambda: case.reproducer(torch_check_snippet(case, device)),
        raise_on_mismatch=raise_on_mismatch,
    )


def compare_results(case, got: dict, *, precision="float64", context="", reproducer=None,
                    raise_on_mismatch=True) -> list[Comparison]:
    """Compare an implementation's results (``got``: output, h_n, c_n and gradients keyed by
    torch names, "input", "h0", "c0") with the float64 reference on ``case``.

    A quantity the implementation did not return counts as a mismatch, so an implementation
    cannot pass by omission. ``reproducer`` is a string or a callable returning one.
    """
    case64 = case.astype(np.float64)
    result, grads = case64.reference()
    mags = gradient_magnitudes(case64, result)
    sens = rounding_sensitivity(case64, precision if precision in ("float64", "float32") else "float32",
                                seed=case.seed % 2**32)
    expected = {"output": result.output, "h_n": result.h_n}
    if result.c_n is not None:
        expected["c_n"] = result.c_n
    expected.update(grads)
    if case.h0 is None:
        expected.pop("h0", None)
        expected.pop("c0", None)
    comparisons = []
    for quantity, exp in expected.items():
        scale = float(np.max(np.abs(exp))) if exp.size else 1.0
        tol = implementation_tolerance(precision, T=case.T, scale=scale, magnitude=mags.get(quantity),
                                       sensitivity=sens.get(quantity))
        if got.get(quantity) is None:
            c = Comparison(quantity, False, exp.size, exp.size, (), np.nan, np.nan, np.inf, np.inf, tol,
                           problem="missing from the implementation's results")
        else:
            c = compare(quantity, got[quantity], exp, tol)
        comparisons.append(c)
        if raise_on_mismatch and not c.ok:
            text = reproducer() if callable(reproducer) else reproducer
            raise Mismatch(c.message(context, text), c)
    return comparisons
