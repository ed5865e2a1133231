"""Running a torch target on a :class:`~bpttcheck.properties.strategies.Case`: build it with
torch's constructor arguments, load the reference weights, run forward and backward with the
loss ``Σ⟨d_output, output⟩ + ⟨d_h_n, h_n⟩ (+ ⟨d_c_n, c_n⟩)`` and return every result as
float64 NumPy (output, h_n, c_n, gradients by torch name, "input", "h0", "c0").

Along the way the target's contract is checked: parameter names and shapes, the dtype and
shape of what it returns, and that it leaves its inputs untouched. torch is imported lazily.
"""

from __future__ import annotations

import warnings

import numpy as np

from bpttcheck.reference.cells import cell_spec

from .common import TargetFailure, call_target, require_same_inputs, snapshot

__all__ = ["build", "load_weights", "run_cell", "run_module"]


def build(cls, args: tuple, kwargs: dict, *, device, dtype, option: str, context: str):
    """``cls(*args, **kwargs)`` moved to ``device``/``dtype``; a refusal declines ``option``."""
    import torch

    module = call_target(f"{cls.__name__}(...)", cls, *args, option=option, constructor=True,
                         context=context, **kwargs)
    return call_target(".to(device, dtype)", module.to, device=device, dtype=getattr(torch, dtype),
                       option=f"device={device}, dtype={dtype}", constructor=True, context=context)


def load_weights(module, params: dict, rename=lambda n: n, *, context: str = "", reproducer=None) -> None:
    """Copy the reference ``params`` into the module; names and shapes must be torch's."""
    import torch

    named = dict(module.named_parameters())
    wanted = {rename(n): np.shape(v) for n, v in params.items()}
    have = {n: tuple(p.shape) for n, p in named.items()}
    if set(have) != set(wanted) or any(have[n] != tuple(s) for n, s in wanted.items()):
        missing = sorted(set(wanted) - set(have))
        extra = sorted(set(have) - set(wanted))
        shapes = [f"{n} {have[n]} (expected {tuple(wanted[n])})" for n in sorted(set(have) & set(wanted))
                  if have[n] != tuple(wanted[n])]
        parts = ([f"missing {missing}"] if missing else []) + ([f"unexpected {extra}"] if extra else []) + shapes
        raise TargetFailure(f"ParameterMismatch: the target's parameters do not follow torch's names and shapes: "
                            f"{'; '.join(parts)} ({context})")
    with torch.no_grad():
        for n, v in params.items():
            named[rename(n)].copy_(torch.as_tensor(np.ascontiguousarray(v), dtype=named[rename(n)].dtype))


def _leaf(torch, a, dtype, device):
    return None if a is None else torch.tensor(np.asarray(a), dtype=dtype, device=device, requires_grad=True)


def _expect(name, tensor, shape, dtype, context, reproducer):
    if not hasattr(tensor, "shape") or not hasattr(tensor, "dtype"):
        raise TargetFailure(f"WrongType: {name} is {type(tensor).__name__}, expected a Tensor ({context})")
    if tuple(tensor.shape) != tuple(shape):
        raise TargetFailure(f"WrongShape: {name} has shape {tuple(tensor.shape)} where {tuple(shape)} was expected ({context})")
    if dtype is not None and tensor.dtype != dtype:
        raise TargetFailure(f"WrongDtype: {name} has dtype {tensor.dtype} where {dtype} was expected ({context})")


def _finish(torch, named, leaves, values, case, dtype_check, context, reproducer):
    """Backward of the cotangent loss; results as float64 NumPy."""
    device = values["output"].device
    loss = values["output"].new_zeros((), dtype=torch.float64)
    for key, cot in (("output", case.d_output), ("h_n", case.d_h_n), ("c_n", case.d_c_n)):
        if values.get(key) is not None and cot is not None:
            loss = loss + (values[key].double() * torch.as_tensor(cot, dtype=torch.float64, device=device)).sum()
    for p in named.values():
        p.grad = None
    call_target("backward", loss.backward, context=context, reproducer=reproducer)
    res = {k: (None if v is None else v.detach().double().cpu().numpy()) for k, v in values.items()}
    for n, p in named.items():
        res[n] = np.zeros(tuple(p.shape)) if p.grad is None else p.grad.double().cpu().numpy()
    for key, leaf in leaves.items():
        if leaf is not None:
            res[key] = np.zeros(tuple(leaf.shape)) if leaf.grad is None else leaf.grad.double().cpu().numpy()
    return res


def run_module(module, case, *, device, dtype, out_dtype=None, context="", reproducer=None) -> dict:
    """Forward (PackedSequence when the case has lengths) and backward of a drop-in layer."""
    import torch

    cfg = case.config
    tdt = getattr(torch, dtype)
    x, h0, c0 = (_leaf(torch, a, tdt, device) for a in (case.x, case.h0, case.c0))
    inp = x
    if case.lengths is not None:
        inp = torch.nn.utils.rnn.pack_padded_sequence(x, torch.as_tensor(case.lengths),
                                                      batch_first=case.batch_first, enforce_sorted=False)
    hx = h0 if not cell_spec(cfg.cell).has_cell_state or h0 is None else (h0, c0)
    before = snapshot(x, h0, c0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*projections is not supported with oneDNN")
        ret = call_target("forward", module, inp, hx, context=context, reproducer=reproducer)
    require_same_inputs(("input", "h0", "c0"), before, (x, h0, c0), context, reproducer)
    if not (isinstance(ret, tuple) and len(ret) == 2):
        raise TargetFailure(f"WrongType: forward returned {type(ret).__name__}; expected (output, h_n) or "
                            f"(output, (h_n, c_n)) ({context})")
    out, state = ret
    if case.lengths is not None:
        if not isinstance(out, torch.nn.utils.rnn.PackedSequence):
            raise TargetFailure(f"WrongType: a PackedSequence input gave a {type(out).__name__} output; "
                                f"expected a PackedSequence ({context})")
        out = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=case.batch_first, total_length=case.T)[0]
    if cell_spec(cfg.cell).has_cell_state:
        if not (isinstance(state, tuple) and len(state) == 2):
            raise TargetFailure(f"WrongType: an LSTM must return (output, (h_n, c_n)); got state "
                                f"{type(state).__name__} ({context})")
        h_n, c_n = state
    else:
        h_n, c_n = state, None
    LD, B = cfg.num_layers * cfg.num_directions, case.B
    P, H = cfg.output_size, cfg.hidden_size
    out_shape = (B, case.T, cfg.num_directions * P) if case.batch_first else (case.T, B, cfg.num_directions * P)
    want = out_dtype or tdt
    _expect("output", out, out_shape, want, context, reproducer)
    _expect("h_n", h_n, (LD, B, P), want, context, reproducer)
    if c_n is not None:
        _expect("c_n", c_n, (LD, B, H), want, context, reproducer)
    named = dict(module.named_parameters())
    return _finish(torch, named, {"input": x, "h0": h0, "c0": c0}, {"output": out, "h_n": h_n, "c_n": c_n},
                   case, None, context, reproducer)


def run_cell(cell, case, *, device, dtype, out_dtype=None, context="", reproducer=None) -> dict:
    """Unroll a drop-in RNNCell/LSTMCell/GRUCell over the case (one layer, time-major, no
    padding), as a one-layer network: output = the stacked h_t, h_n = (1, B, H)."""
    import torch

    cfg = case.config
    tdt = getattr(torch, dtype)
    x, h0, c0 = (_leaf(torch, a, tdt, device) for a in (case.x, case.h0, case.c0))
    h = None if h0 is None else h0[0]
    c = None if c0 is None else c0[0]
    before = snapshot(x, h0, c0)
    want = out_dtype or tdt
    outs = []
    for t in range(case.T):
        if cell_spec(cfg.cell).has_cell_state:
            hx = None if h is None else (h, c)
            ret = call_target(f"forward at step t={t}", cell, x[t], hx, context=context, reproducer=reproducer)
            if not (isinstance(ret, tuple) and len(ret) == 2):
                raise TargetFailure(f"WrongType: an LSTMCell must return (h, c); got {type(ret).__name__} ({context})")
            h, c = ret
            _expect(f"c at step t={t}", c, (case.B, cfg.hidden_size), want, context, reproducer)
        else:
            h = call_target(f"forward at step t={t}", cell, x[t], h, context=context, reproducer=reproducer)
        _expect(f"h at step t={t}", h, (case.B, cfg.hidden_size), want, context, reproducer)
        outs.append(h)
    require_same_inputs(("input", "h0", "c0"), before, (x, h0, c0), context, reproducer)
    values = {"output": torch.stack(outs), "h_n": h[None], "c_n": None if c is None else c[None]}
    named = {n + "_l0": p for n, p in cell.named_parameters()}
    return _finish(torch, named, {"input": x, "h0": h0, "c0": c0}, values, case, None, context, reproducer)
