"""The one way the project runs torch: build a module or a cell for a configuration, load the
reference weights, run it on a :class:`~bpttcheck.properties.strategies.Case`, form the loss
in float64 and back-propagate, and hand every result back as float64 NumPy.

- :func:`build_module` / :func:`build_cell`: ``cls(*torch's constructor arguments)``; a class
  whose signature takes ``device``/``dtype`` gets them at construction, and every module is
  then moved with ``.to(device, dtype)`` (a no-op where it is already there).
- :func:`load_weights`: the reference's parameters copied in; names and shapes must be
  torch's (``weight_ih_l0``… for a module, ``weight_ih``… for a cell).
- :func:`run_module` / :func:`run_cell`: the forward (a ``PackedSequence`` when the case has
  lengths; an LSTM given h0 without c0 starts from c0 = 0), then the loss
  ``L = Σ⟨d_output, output⟩ + ⟨d_h_n, h_n⟩ (+ ⟨d_c_n, c_n⟩)`` summed in float64 whatever the
  module's dtype, then ``L.backward()``. The result holds "output", "h_n", "c_n", every
  parameter's gradient by torch name, "input", "h0" and "c0" (when the case has them).
- :func:`run_target`: all of it in one call, under the precision's TF32/autocast switches
  (:func:`precision_mode`). The printed reproducers call this.
- :func:`protocol_inputs`: the float64 module and input tensors of the tbptt and randomized
  protocols.

Along the way the target's contract is checked: parameter names and shapes, the type, shape
and dtype of what it returns, and that it leaves its inputs untouched; a breach raises
:class:`~bpttcheck.properties.compare.TargetFailure`. Calls into the target go through
``call(what, fn, *args, option=..., constructor=..., **kwargs)`` (default: a plain call), so
the oracle can turn the target's own exceptions into verdicts. torch is imported lazily.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings

import numpy as np

from bpttcheck.reference.cells import cell_spec
from bpttcheck.reference.precision import Precision, get_precision

from .compare import TargetFailure

__all__ = [
    "build_cell",
    "build_module",
    "cell_arguments",
    "cuda_available",
    "global_torch_state",
    "load_weights",
    "module_arguments",
    "precision_mode",
    "protocol_inputs",
    "require_same_inputs",
    "require_torch",
    "restore_torch_state",
    "run_cell",
    "run_module",
    "run_target",
    "snapshot",
    "tf32_state",
    "torch_available",
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


def _direct(what, fn, *args, option="", constructor=False, **kwargs):
    return fn(*args, **kwargs)


def _failure(head: str, context: str = "", reproducer=None) -> TargetFailure:
    text = head + (f" ({context})" if context else "")
    rep = reproducer() if callable(reproducer) else reproducer
    if rep:
        text += "\n  reproduce:\n" + "\n".join("    " + s for s in rep.rstrip().splitlines())
    return TargetFailure(text)


# --------------------------------------------------------------------------- precision switches


def _row(precision) -> Precision:
    return precision if isinstance(precision, Precision) else get_precision(precision)


@contextlib.contextmanager
def precision_mode(device: str, precision):
    """Set TF32 (both switches, and cuDNN's RNN fp32 precision where it exists) and autocast for
    ``precision`` (a row of the precision table or its name); restore the previous state
    afterwards. A no-op on the CPU."""
    row = _row(precision)
    if not str(device).startswith("cuda"):
        yield None
        return
    import torch

    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (cudnn.allow_tf32, matmul.allow_tf32)
    rnn = getattr(cudnn, "rnn", None)
    saved_rnn = getattr(rnn, "fp32_precision", None) if rnn is not None else None
    try:
        cudnn.allow_tf32 = matmul.allow_tf32 = row.tf32
        if saved_rnn is not None:
            rnn.fp32_precision = "tf32" if row.tf32 else "ieee"
        if row.autocast:
            with torch.autocast("cuda", dtype=getattr(torch, row.autocast)):
                yield tf32_state()
        else:
            yield tf32_state()
    finally:
        cudnn.allow_tf32, matmul.allow_tf32 = saved
        if saved_rnn is not None:
            rnn.fp32_precision = saved_rnn


def tf32_state() -> dict:
    """What is in force now: the TF32 switches (and cuDNN's RNN fp32 precision if it exists)."""
    try:
        import torch
    except ImportError:
        return {}
    state = {"cudnn.allow_tf32": bool(torch.backends.cudnn.allow_tf32),
             "cuda.matmul.allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32)}
    rnn = getattr(torch.backends.cudnn, "rnn", None)
    if rnn is not None and hasattr(rnn, "fp32_precision"):
        state["cudnn.rnn.fp32_precision"] = str(rnn.fp32_precision)
    return state


def global_torch_state() -> dict:
    """torch's process-wide switches a target might leave changed: grad mode, default dtype,
    deterministic algorithms, intra-op threads, anomaly mode, the TF32 switches ({} without torch
    or before torch is imported: a target importing it starts from torch's defaults)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "is_grad_enabled"):
        return {}
    return {"grad mode": torch.is_grad_enabled(), "default dtype": torch.get_default_dtype(),
            "deterministic algorithms": torch.are_deterministic_algorithms_enabled(),
            "threads": torch.get_num_threads(), "anomaly mode": torch.is_anomaly_enabled(),
            **tf32_state()}


def restore_torch_state(saved: dict) -> list[str]:
    """Put back what :func:`global_torch_state` saved; the names of the switches that had changed."""
    now = global_torch_state()
    changed = [f"{k}: {saved[k]} -> {now[k]}" for k in saved if k in now and now[k] != saved[k]]
    if not changed:
        return []
    import torch

    torch.set_grad_enabled(saved["grad mode"])
    torch.set_default_dtype(saved["default dtype"])
    torch.use_deterministic_algorithms(saved["deterministic algorithms"])
    if now["threads"] != saved["threads"]:
        torch.set_num_threads(saved["threads"])
    torch.autograd.set_detect_anomaly(saved["anomaly mode"])
    torch.backends.cudnn.allow_tf32 = saved.get("cudnn.allow_tf32", torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = saved.get("cuda.matmul.allow_tf32", torch.backends.cuda.matmul.allow_tf32)
    rnn = getattr(torch.backends.cudnn, "rnn", None)
    if "cudnn.rnn.fp32_precision" in saved and rnn is not None:
        rnn.fp32_precision = saved["cudnn.rnn.fp32_precision"]
    return changed


# --------------------------------------------------------------------------- building


def module_arguments(config, *, batch_first: bool = False) -> tuple[tuple, dict]:
    """torch's constructor arguments for the layer of ``config``."""
    kwargs = dict(num_layers=config.num_layers, bias=config.bias, batch_first=batch_first,
                  bidirectional=config.bidirectional)
    if cell_spec(config.cell).takes_nonlinearity:
        kwargs["nonlinearity"] = config.nonlinearity
    if config.proj_size:
        kwargs["proj_size"] = config.proj_size
    return (config.input_size, config.hidden_size), kwargs


def cell_arguments(config) -> tuple[tuple, dict]:
    """torch's constructor arguments for the cell of (one-layer) ``config``."""
    kwargs = dict(bias=config.bias)
    if cell_spec(config.cell).takes_nonlinearity:
        kwargs["nonlinearity"] = config.nonlinearity
    return (config.input_size, config.hidden_size), kwargs


def _takes_factory_kwargs(cls) -> bool:
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return False
    names = {p.name for p in params}
    return {"device", "dtype"} <= names or any(p.kind is p.VAR_KEYWORD for p in params)


def build(cls, args: tuple, kwargs: dict, *, device="cpu", dtype="float64", call=_direct, option: str = ""):
    """``cls(*args, **kwargs)`` on ``device`` in ``dtype`` (a torch dtype name)."""
    torch = require_torch()
    tdt = getattr(torch, dtype)
    module = None
    if _takes_factory_kwargs(cls):
        try:  # built where it will run (buffers made in __init__ land there too)
            module = cls(*args, **kwargs, device=device, dtype=tdt)
        except Exception:  # noqa: BLE001 - it may not forward them: build plainly, and let call judge
            module = None
    if module is None:
        module = call(f"{getattr(cls, '__name__', cls)}(...)", cls, *args, option=option, constructor=True, **kwargs)
    return call(".to(device, dtype)", module.to, device=device, dtype=tdt,
                option=f"device={device}, dtype={dtype}", constructor=True)


def build_module(cls, config, *, batch_first=False, device="cpu", dtype="float64", call=_direct, option=""):
    """A layer (``cls`` default: torch's own) for ``config``."""
    if cls is None:
        cls = getattr(require_torch().nn, cell_spec(config.cell).torch_module)
    args, kwargs = module_arguments(config, batch_first=batch_first)
    return build(cls, args, kwargs, device=device, dtype=dtype, call=call, option=option)


def build_cell(cls, config, *, device="cpu", dtype="float64", call=_direct, option=""):
    """A cell (``cls`` default: torch's own) for one-layer ``config``."""
    if cls is None:
        cls = getattr(require_torch().nn, cell_spec(config.cell).torch_cell)
    args, kwargs = cell_arguments(config)
    return build(cls, args, kwargs, device=device, dtype=dtype, call=call, option=option)


def _cell_name(name: str) -> str:
    return name[:-3] if name.endswith("_l0") else name


def load_weights(module, params: dict, *, cell: bool = False, context: str = "", reproducer=None) -> None:
    """Copy the reference ``params`` (torch's layer names) into the module; for a cell the
    ``_l0`` suffix is dropped. Names and shapes must be torch's."""
    torch = require_torch()
    rename = _cell_name if cell else (lambda n: n)
    named = dict(module.named_parameters())
    wanted = {rename(n): np.shape(v) for n, v in params.items()}
    have = {n: tuple(p.shape) for n, p in named.items()}
    if set(have) != set(wanted) or any(have[n] != tuple(s) for n, s in wanted.items()):
        missing = sorted(set(wanted) - set(have))
        extra = sorted(set(have) - set(wanted))
        shapes = [f"{n} {have[n]} (expected {tuple(wanted[n])})" for n in sorted(set(have) & set(wanted))
                  if have[n] != tuple(wanted[n])]
        parts = ([f"missing {missing}"] if missing else []) + ([f"unexpected {extra}"] if extra else []) + shapes
        raise _failure("ParameterMismatch: the target's parameters do not follow torch's names and shapes: "
                       + "; ".join(parts), context)
    with torch.no_grad():
        for n, v in params.items():
            p = named[rename(n)]
            p.copy_(torch.as_tensor(np.ascontiguousarray(v), dtype=p.dtype))


# --------------------------------------------------------------------------- contract checks


def snapshot(*arrays):
    """Copies of tensors/arrays, to detect a target that mutates its inputs."""
    out = []
    for a in arrays:
        if a is None:
            out.append(None)
        elif hasattr(a, "detach"):
            out.append(a.detach().clone())
        else:
            out.append(np.array(a, copy=True))
    return out


def require_same_inputs(names, before, after, context: str = "", reproducer=None) -> None:
    """TargetFailure naming the first input the target changed in place."""
    for name, b, a in zip(names, before, after):
        if b is None:
            continue
        if hasattr(b, "detach"):
            same = bool((b.detach() == a.detach()).all() | (b.detach().isnan() & a.detach().isnan()).all())
        else:
            same = np.array_equal(b, np.asarray(a), equal_nan=True)
        if not same:
            raise _failure(f"InputMutated: the target changed its input {name} in place; "
                           "it must leave its arguments untouched", context, reproducer)


def _expect(name, tensor, shape, dtype, context):
    if not hasattr(tensor, "shape") or not hasattr(tensor, "dtype"):
        raise _failure(f"WrongType: {name} is {type(tensor).__name__}, expected a Tensor", context)
    if tuple(tensor.shape) != tuple(shape):
        raise _failure(f"WrongShape: {name} has shape {tuple(tensor.shape)} where {tuple(shape)} was expected", context)
    if dtype is not None and tensor.dtype != dtype:
        raise _failure(f"WrongDtype: {name} has dtype {tensor.dtype} where {dtype} was expected", context)


# --------------------------------------------------------------------------- running


def _leaf(torch, a, dtype, device):
    return None if a is None else torch.tensor(np.asarray(a), dtype=dtype, device=device, requires_grad=True)


def _finish(torch, named, leaves, values, case, call):
    """Backward of the cotangent loss, summed in float64; results as float64 NumPy."""
    device = values["output"].device
    loss = torch.zeros((), dtype=torch.float64, device=device)
    for key, cot in (("output", case.d_output), ("h_n", case.d_h_n), ("c_n", case.d_c_n)):
        if values.get(key) is not None and cot is not None:
            loss = loss + (values[key].double() * torch.as_tensor(np.asarray(cot), dtype=torch.float64,
                                                                   device=device)).sum()
    for p in named.values():
        p.grad = None
    call("backward", loss.backward)
    res = {k: (None if v is None else v.detach().double().cpu().numpy()) for k, v in values.items()}
    for n, p in named.items():
        res[n] = np.zeros(tuple(p.shape)) if p.grad is None else p.grad.double().cpu().numpy()
    for key, leaf in leaves.items():
        if leaf is not None:
            res[key] = np.zeros(tuple(leaf.shape)) if leaf.grad is None else leaf.grad.double().cpu().numpy()
    return res


def _initial_states(torch, case, tdt, device):
    """h0 and c0 as leaves; an LSTM given h0 without c0 starts from c0 = 0 (torch needs both).
    An unbatched case's states are (L·dirs, P) and (L·dirs, H)."""
    cfg = case.config
    unbatched = getattr(case, "unbatched", False)
    form = (lambda a: _unbatch(a, 1)) if unbatched else (lambda a: a)  # noqa: E731
    h0 = _leaf(torch, form(case.h0), tdt, device)
    c0_values = case.c0
    if cell_spec(cfg.cell).has_cell_state and case.h0 is not None and c0_values is None:
        c0_values = np.zeros(np.shape(case.h0)[:2] + (cfg.hidden_size,))
    return h0, _leaf(torch, form(c0_values), tdt, device)


def run_module(module, case, *, device="cpu", dtype="float64", out_dtype=None, call=_direct, context="",
               reproducer=None) -> dict:
    """Forward (PackedSequence when the case has lengths) and float64-loss backward of a layer."""
    torch = require_torch()
    cfg = case.config
    tdt = getattr(torch, dtype)
    unbatched = getattr(case, "unbatched", False)
    x = _leaf(torch, _unbatch(case.x, 0 if case.batch_first else 1) if unbatched else case.x, tdt, device)
    h0, c0 = _initial_states(torch, case, tdt, device)
    inp = x
    if case.lengths is not None:
        inp = torch.nn.utils.rnn.pack_padded_sequence(x, torch.as_tensor(np.asarray(case.lengths)),
                                                      batch_first=case.batch_first,
                                                      enforce_sorted=bool(getattr(case, "enforce_sorted", False)))
    carries_c = cell_spec(cfg.cell).has_cell_state
    hx = h0 if not carries_c or h0 is None else (h0, c0)
    before = snapshot(x, h0, c0)
    with warnings.catch_warnings():
        # torch notes that oneDNN has no projection kernel and falls back: not our concern.
        warnings.filterwarnings("ignore", message=".*projections is not supported with oneDNN")
        ret = call("forward", module, inp, hx)
    require_same_inputs(("input", "h0", "c0"), before, (x, h0, c0), context, reproducer)
    if not (isinstance(ret, tuple) and len(ret) == 2):
        raise _failure(f"WrongType: forward returned {type(ret).__name__}; expected (output, h_n) or "
                       "(output, (h_n, c_n))", context)
    out, state = ret
    if case.lengths is not None:
        if not isinstance(out, torch.nn.utils.rnn.PackedSequence):
            raise _failure(f"WrongType: a PackedSequence input gave a {type(out).__name__} output; "
                           "expected a PackedSequence", context)
        out = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=case.batch_first, total_length=case.T)[0]
    if carries_c:
        if not (isinstance(state, tuple) and len(state) == 2):
            raise _failure(f"WrongType: a layer with a cell state must return (output, (h_n, c_n)); got state "
                           f"{type(state).__name__}", context)
        h_n, c_n = state
    else:
        h_n, c_n = state, None
    LD, B = cfg.num_layers * cfg.num_directions, case.B
    P, H = cfg.output_size, cfg.hidden_size
    out_shape = (B, case.T, cfg.num_directions * P) if case.batch_first else (case.T, B, cfg.num_directions * P)
    want = out_dtype or tdt
    if unbatched:  # torch's unbatched form: (T, dirs·P) and (L·dirs, P), whatever batch_first says
        note = (context + "; " if context else "") + ("torch takes unbatched input (T, D) with states (L·dirs, H) "
                                                      "and returns that form; raise NotImplementedError to decline it")
        _expect("output", out, (case.T, cfg.num_directions * P), want, note)
        _expect("h_n", h_n, (LD, P), want, note)
        if c_n is not None:
            _expect("c_n", c_n, (LD, H), want, note)
        out = out.unsqueeze(0 if case.batch_first else 1)
        h_n, c_n = h_n.unsqueeze(1), None if c_n is None else c_n.unsqueeze(1)
    _expect("output", out, out_shape, want, context)
    _expect("h_n", h_n, (LD, B, P), want, context)
    if c_n is not None:
        _expect("c_n", c_n, (LD, B, H), want, context)
    leaves = {"input": x, "h0": h0, "c0": c0 if case.c0 is not None else None}
    return _batched(case, _finish(torch, dict(module.named_parameters()), leaves,
                                  {"output": out, "h_n": h_n, "c_n": c_n}, case, call))


def _unbatch(a, axis):
    """The unbatched form of a batch-of-one array (None stays None)."""
    return None if a is None else np.take(np.asarray(a), 0, axis=axis)


def _batched(case, res: dict) -> dict:
    """Results of an unbatched run reshaped to the case's batched shapes (the leaves' gradients
    come back in the unbatched form the target saw)."""
    if not getattr(case, "unbatched", False):
        return res
    shapes = {"input": np.shape(case.x), "h0": np.shape(case.h0), "c0": np.shape(case.c0)}
    for key, shape in shapes.items():
        if res.get(key) is not None and res[key].shape != shape:
            res[key] = res[key].reshape(shape)
    return res


def run_cell(cell, case, *, device="cpu", dtype="float64", out_dtype=None, call=_direct, context="",
             reproducer=None) -> dict:
    """Unroll a cell over the case (one layer, time-major, no padding) as a one-layer network:
    output = the stacked h_t, h_n = (1, B, H); gradients by the layer's names (``_l0``)."""
    torch = require_torch()
    cfg = case.config
    tdt = getattr(torch, dtype)
    unbatched = getattr(case, "unbatched", False)  # the cell sees x_t (D,) and states (H,)
    x = _leaf(torch, _unbatch(case.x, 1) if unbatched else case.x, tdt, device)
    h0, c0 = _initial_states(torch, case, tdt, device)
    h = None if h0 is None else h0[0]
    c = None if c0 is None else c0[0]
    before = snapshot(x, h0, c0)
    want = out_dtype or tdt
    outs = []
    carries_c = cell_spec(cfg.cell).has_cell_state
    state_shape = (cfg.hidden_size,) if unbatched else (case.B, cfg.hidden_size)
    for t in range(case.T):
        if carries_c:
            ret = call(f"forward at step t={t}", cell, x[t], None if h is None else (h, c))
            if not (isinstance(ret, tuple) and len(ret) == 2):
                raise _failure(f"WrongType: a cell with a cell state must return (h, c); got {type(ret).__name__}", context)
            h, c = ret
            _expect(f"c at step t={t}", c, state_shape, want, context)
        else:
            h = call(f"forward at step t={t}", cell, x[t], h)
        _expect(f"h at step t={t}", h, state_shape, want, context)
        outs.append(h)
    require_same_inputs(("input", "h0", "c0"), before, (x, h0, c0), context, reproducer)
    output = torch.stack(outs)
    if unbatched:
        output, h, c = output[:, None], h[None], None if c is None else c[None]
    values = {"output": output, "h_n": h[None], "c_n": None if c is None else c[None]}
    named = {n + "_l0": p for n, p in cell.named_parameters()}
    leaves = {"input": x, "h0": h0, "c0": c0 if case.c0 is not None else None}
    return _batched(case, _finish(torch, named, leaves, values, case, call))


def run_target(cls, case, *, kind: str = "module", device: str = "cpu", precision="float64") -> dict:
    """Build ``cls`` (a layer or, with ``kind="cell"``, a cell; None: torch's own) for the case,
    load its weights and run it in ``precision`` (a row of the precision table: its storage
    dtype and TF32/autocast switches) on ``device``: the results as float64 NumPy. The case's
    values should already be rounded to the precision's storage (``case.rounded(precision)``)."""
    row = _row(precision)
    dtype = row.storage
    with precision_mode(device, row):
        if kind == "cell":
            m = build_cell(cls, case.config, device=device, dtype=dtype)
            load_weights(m, case.params, cell=True)
            return run_cell(m, case, device=device, dtype=dtype)
        m = build_module(cls, case.config, batch_first=case.batch_first, device=device, dtype=dtype)
        load_weights(m, case.params)
        return run_module(m, case, device=device, dtype=dtype)


def protocol_inputs(case, device: str = "cpu"):
    """``(module, x, hx, cotangent)`` of the tbptt and randomized protocols for ``case``: torch's
    float64 seq-first layer holding the case's weights, x (T, B, D), hx = h0 or (h0, c0), the
    output cotangent (T, B, H) — tensors on ``device``, not requiring gradients."""
    torch = require_torch()
    module = build_module(None, case.config, device=device, dtype="float64")
    load_weights(module, case.params)
    t = lambda a: torch.tensor(np.asarray(a), dtype=torch.float64, device=device)  # noqa: E731
    h0 = t(case.h0)
    hx = (h0, t(case.c0)) if cell_spec(case.config.cell).has_cell_state else h0
    return module, t(case.x), hx, t(case.d_output)
