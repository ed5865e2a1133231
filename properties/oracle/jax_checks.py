"""Checks of ``jax`` targets: a recurrent cell written in JAX, against the NumPy reference.

The target is a :class:`JaxCell` (or a zero-argument factory returning one)::

    JaxCell(step, cell="lstm", params=mapping)
    step(params, x_t, state) -> (output_t, state)    # x_t (B, D); state h (B, H), or (h, c) for an LSTM
    mapping(torch_params) -> params                  # {"weight_ih": (G·H, D), "weight_hh": (G·H, H),
                                                     #  "bias_ih": (G·H,), "bias_hh": (G·H,)} -> step's pytree

``params`` may also name a layout: ``"torch"`` (the dict above, unchanged), or one of the
layouts of :mod:`.adapters.jax_layouts` (``"flax"``, ``"equinox"``, ``"haiku"``); the adapters
``flax_cell``, ``equinox_cell`` and ``haiku_cell`` of :mod:`.adapters.jax_cells` build the whole :class:`JaxCell` from a
library's cell class. The mapping is traced by JAX, so a transpose, a gate reorder or a merged
bias is differentiated through: the gradients come back under torch's names.

The oracle unrolls ``step`` over T steps (one layer, unidirectional), calls ``jax.vjp`` itself
with the loss ``L = Σ⟨d_output, output⟩ + ⟨d_h_n, h_n⟩ (+ ⟨d_c_n, c_n⟩)`` and judges the outputs,
final states and every gradient (parameters, input, initial states) against the reference, in
float64 and float32, like the module and numpy kinds.

Speed: the step's forward and its vjp are ``jax.jit``-compiled once per target and reused, so
JAX's own cache compiles each shape once; time is never a compile key (the oracle loops over
steps), and the batch is padded to a multiple of :data:`BATCH_BUCKET` with copies of row 0
under zero cotangents (exact for any cell that treats batch rows independently), so a check
compiles once per (input_size, hidden_size) at most — not once per drawn case, as a
``lax.scan`` over each case's length does.

float64: the calls run inside ``jax.enable_x64(True)`` (float32 checks inside
``jax.enable_x64(False)``), a thread-local scope: ``jax.config.jax_enable_x64`` is the same
before and after, and the user's process state is not changed.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from bpttcheck.reference.cells import CELLS, cell_spec

from ..judge import compare_results
from ..runner import PropertyCheck
from ..strategies import cases, configs
from .adapters.jax_layouts import layout
from .common import Guarded, TargetFailure, call_target, check_id
from .numpy_checks import config_dict
from .targets import TargetError
from .tbptt_checks import with_initial_states

__all__ = ["BATCH_BUCKET", "JaxCell", "jax_checks", "jax_target", "run_jax_cell", "x64"]

#: The batch is padded up to a multiple of this (copies of row 0, zero cotangents).
BATCH_BUCKET = 4

@dataclass(frozen=True, eq=False)
class JaxCell:
    """A JAX recurrent cell for the ``jax`` kind (see the module docstring).

    ``step(params, x_t, state) -> (output_t, state)``: x_t (B, D); state h (B, H), or the
    tuple (h, c) for a cell with a cell state (the LSTM); output_t must be h_t. ``cell``: a
    name in the cell registry (:data:`bpttcheck.reference.cells.CELLS`). ``params``: a function of the torch-named
    cell parameters returning the pytree ``step`` takes, or a layout name. ``make(input_size,
    hidden_size) -> step``, given instead of ``step``, builds a step for cells whose sizes are
    fixed at construction (flax, haiku, equinox modules). ``nonlinearity``: what the step
    computes, for a cell that takes one (the Elman ``rnn``: "tanh", "relu", …; the registry's
    ``nonlinearities``, the first by default). ``bias``: None if the cell handles both torch bias
    settings (a layout fills missing biases with zeros), True/False if only one.
    """

    step: object = None
    cell: str = "lstm"
    params: object = "torch"
    make: object = None
    nonlinearity: str | None = None
    bias: bool | None = None
    name: str = ""

    bpttcheck_kind = "jax"  # how the target loader recognises it (class attribute, not a field)

    def __post_init__(self):
        if self.cell not in CELLS:
            raise TargetError(f"JaxCell(cell={self.cell!r}): expected one of {', '.join(map(repr, CELLS))} "
                              "(the cell registry, bpttcheck.reference.cells)")
        allowed = cell_spec(self.cell).nonlinearities
        if self.nonlinearity is None:
            object.__setattr__(self, "nonlinearity", allowed[0])  # frozen: the default is the registry's
        if self.nonlinearity not in allowed:
            raise TargetError(f"JaxCell(cell={self.cell!r}, nonlinearity={self.nonlinearity!r}): expected "
                              + (f"one of {', '.join(map(repr, allowed))}" if len(allowed) > 1
                                 else f"{allowed[0]!r} (the {cell_spec(self.cell).title} takes no other)"))
        if (self.step is None) == (self.make is None):
            raise TargetError(f"JaxCell(step={self.step!r}, make={self.make!r}): give exactly one, "
                              "step(params, x_t, state) or make(input_size, hidden_size) -> step")
        for name in ("step", "make"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise TargetError(f"JaxCell({name}={value!r}): expected a callable")
        if not (callable(self.params) or isinstance(self.params, str)):
            raise TargetError(f"JaxCell(params={self.params!r}): expected a function of the torch-named "
                              "parameters or a layout name ('torch', 'flax', 'equinox', 'haiku')")
        if isinstance(self.params, str):
            layout(self.params, self.cell)  # refuses an unknown name now, not in the first case
        if self.bias not in (None, True, False):
            raise TargetError(f"JaxCell(bias={self.bias!r}): expected None (both), True or False")


def jax_target(obj) -> JaxCell:
    """``obj`` itself when it is a :class:`JaxCell`, else what the zero-argument factory returns."""

    if isinstance(obj, JaxCell):
        return obj
    if callable(obj):
        try:
            made = obj()
        except Exception as exc:
            raise TargetError(f"a jax target is a JaxCell or a zero-argument factory returning one; calling "
                              f"{obj!r} raised {type(exc).__name__}: {exc}") from None
        if isinstance(made, JaxCell):
            return made
        obj = made
    raise TargetError(f"a jax target is a JaxCell (bpttcheck.properties.oracle.jax_checks.JaxCell) or a "
                      f"zero-argument factory returning one; got {type(obj).__name__}")


@contextlib.contextmanager
def x64(enabled: bool):
    """JAX's 64-bit mode on (or off) for this thread only; the global flag is left as it was."""
    import jax

    scope = getattr(jax, "enable_x64", None)
    if scope is None:  # older JAX releases keep the context manager in jax.experimental
        from jax.experimental import enable_x64 as on, disable_x64 as off

        with (on() if enabled else off()):
            yield
        return
    with scope(enabled):
        yield


class _Engine:
    """One jitted function per step target: the step's outputs and their vjp in one call, so the
    forward sweep (zero cotangents) and the backward sweep share one compilation per shape."""

    def __init__(self, target: JaxCell, step, mapping):
        import jax

        pair = cell_spec(target.cell).has_cell_state  # the state is (h, c)

        def f(tp, x, s):
            y, s2 = step(mapping(tp), x, s)
            return y, (tuple(s2) if pair and isinstance(s2, list) else s2)

        def both(tp, x, s, dy, ds):
            (y, s2), pull = jax.vjp(f, tp, x, s)
            return y, s2, pull((dy, ds))

        self.both = jax.jit(both)


_ENGINES: dict = {}  # (target, input_size, hidden_size or None) -> _Engine; targets are kept alive


def _engine(target: JaxCell, D: int, H: int) -> _Engine:
    key = (target, D, H) if target.make is not None else (target, None, None)
    if key not in _ENGINES:
        step = target.make(D, H) if target.make is not None else target.step
        mapping = layout(target.params, target.cell) if isinstance(target.params, str) else target.params
        _ENGINES[key] = _Engine(target, step, mapping)
    return _ENGINES[key]


def _decline(target: JaxCell, config: dict):
    if config["cell"] != target.cell:
        raise NotImplementedError(f"this JaxCell is a {target.cell} cell, not {config['cell']}")
    for what, ok in (("num_layers > 1", config["num_layers"] == 1), ("bidirectional", not config["bidirectional"]),
                     ("proj_size", not config["proj_size"])):
        if not ok:
            raise NotImplementedError(f"{what}: a JaxCell is checked as one unidirectional layer")
    if cell_spec(target.cell).takes_nonlinearity and config["nonlinearity"] != target.nonlinearity:
        raise NotImplementedError(f"nonlinearity={config['nonlinearity']!r}: the step computes {target.nonlinearity}")
    if target.bias is not None and config["bias"] != target.bias:
        raise NotImplementedError(f"bias={config['bias']}: the cell has bias={target.bias} only")


def run_jax_cell(target: JaxCell, config: dict, params: dict, x, h0, c0, d_output, d_h_n, d_c_n) -> dict:
    """The numpy protocol (``numpy_checks``) for a :class:`JaxCell`: unroll, ``jax.vjp``, results
    as NumPy arrays keyed as the reference's (output, h_n, c_n, torch names, input, h0, c0)."""
    import jax
    import jax.numpy as jnp

    _decline(target, config)
    x = np.asarray(x)
    dtype = x.dtype
    T, B, D = x.shape
    H, lstm = config["hidden_size"], cell_spec(target.cell).has_cell_state  # lstm: the state is (h, c)
    Bp = -(-B // BATCH_BUCKET) * BATCH_BUCKET
    rows = np.r_[np.arange(B), np.zeros(Bp - B, dtype=int)]
    pad = lambda a: np.asarray(a, dtype=dtype)[..., rows, :]  # noqa: E731  (batch is the second-last axis)
    mask = (np.arange(Bp) < B).astype(dtype)[:, None]
    zeros = np.zeros((1, Bp, H), dtype)
    h0p = pad(h0) if h0 is not None else zeros
    c0p = (pad(c0) if c0 is not None else zeros) if lstm else None
    dY = pad(d_output) * mask
    dh = (pad(d_h_n) * mask)[0] if d_h_n is not None else zeros[0]
    dc = ((pad(d_c_n) * mask)[0] if d_c_n is not None else zeros[0]) if lstm else None
    with x64(dtype == np.float64):
        eng = _engine(target, D, H)
        tp = {name[: -len("_l0")]: jnp.asarray(v) for name, v in params.items()}
        xs = jnp.asarray(pad(x))
        state = (jnp.asarray(h0p[0]), jnp.asarray(c0p[0])) if lstm else jnp.asarray(h0p[0])
        zero_y = jnp.zeros((Bp, H), dtype)
        zero_s = (zero_y, zero_y) if lstm else zero_y
        states, ys = [state], []
        for t in range(T):
            y, state, _ = eng.both(tp, xs[t], state, zero_y, zero_s)  # the vjp part is wasted, not recompiled
            _check_step(y, state, (Bp, H), lstm, dtype, t)
            ys.append(y)
            states.append(state)
        g_state = (jnp.asarray(dh), jnp.asarray(dc)) if lstm else jnp.asarray(dh)
        g_params = jax.tree.map(jnp.zeros_like, tp)
        g_x = [None] * T
        for t in reversed(range(T)):
            _, _, (d_tp, g_x[t], g_state) = eng.both(tp, xs[t], states[t], jnp.asarray(dY[t]), g_state)
            g_params = jax.tree.map(jnp.add, g_params, d_tp)
        host = lambda a: np.asarray(a)[None, :B]  # noqa: E731  (1, B, ·) like torch's h_n
        out = {"output": np.stack([np.asarray(y)[:B] for y in ys]),
               "input": np.stack([np.asarray(g)[:B] for g in g_x])}
        if lstm:
            out.update(h_n=host(state[0]), c_n=host(state[1]), h0=host(g_state[0]), c0=host(g_state[1]))
        else:
            out.update(h_n=host(state), h0=host(g_state))
        out.update({f"{name}_l0": np.asarray(g) for name, g in g_params.items()})
    return out


def _check_step(y, state, shape, lstm, dtype, t):
    parts = [("output_t", y)] + ([("state[0]", state[0]), ("state[1]", state[1])] if lstm else [("state", state)])
    if lstm and not (isinstance(state, tuple) and len(state) == 2):
        raise TargetFailure(f"WrongType: step returned state {type(state).__name__}; a step of a cell with a "
                            "cell state (the LSTM) returns (h, c)")
    for name, a in parts:
        if tuple(a.shape) != shape:
            raise TargetFailure(f"WrongShape: step's {name} at t={t} has shape {tuple(a.shape)}, expected {shape} "
                                "(the batch is padded to a multiple of 4 rows)")
        if a.dtype != dtype:
            raise TargetFailure(f"WrongDtype: step's {name} at t={t} has dtype {a.dtype} where {dtype} was expected")


def _snippet(spec, case):
    return case.reproducer(f"""from bpttcheck.properties.oracle import load_target
from bpttcheck.properties.oracle.jax_checks import jax_target, run_jax_cell
from bpttcheck.properties.oracle.numpy_checks import config_dict
target = jax_target(load_target({spec!r}))
got = run_jax_cell(target, config_dict(config), params, x, h0, c0, d_output, d_h_n, d_c_n)
for name, want in [("output", result.output), ("h_n", result.h_n), ("c_n", result.c_n)] + list(grads.items()):
    if want is not None:
        print(name, abs(got[name] - want).max())""")


def _body(target, spec, dtype, drawn_case):
    case = with_initial_states(drawn_case).astype(np.dtype(dtype))
    case = replace(case, d_c_n=case.d_c_n if cell_spec(case.config.cell).has_cell_state else None)
    ctx = f"{spec} (jax), {dtype}; {case.describe()}"
    rep = lambda: _snippet(spec, case)  # noqa: E731
    got = call_target(f"{spec}: its step under jax.vjp", run_jax_cell, target, config_dict(case.config),
                      dict(case.params), case.x, case.h0, case.c0, case.d_output, case.d_h_n, case.d_c_n,
                      option=case.config.describe(), context=ctx, reproducer=rep)
    return compare_results(case, got, precision=dtype, context=ctx, reproducer=rep)


def _strategy(target, dtype):
    conf = configs(cells=(target.cell,), activations=(target.nonlinearity,), max_layers=1, bidirectional=False,
                   proj=False, bias=target.bias)
    if dtype != "float64":  # float32: contractive weights (SPEC §8), as in the other kinds
        return cases(conf, regime="contractive", max_T=8, lengths=False, batch_first=False)
    return cases(conf, lengths=False, batch_first=False)


def jax_checks(target, options) -> list[PropertyCheck]:
    """The kind registry's factory: one check per precision, ``jax/<cell>/gradients[<jax backend>,<dtype>]``
    (the precisions other than float64 and float32 are the torch/CUDA ones: none here)."""
    import jax

    spec, dtypes = target.spec, tuple(options.dtypes)
    target = jax_target(target.obj)
    device = jax.default_backend()
    return [PropertyCheck(name=f"{spec} (jax, {target.cell}) gradients on {device}, {dtype}",
                          strategy=_strategy(target, dtype),
                          body=Guarded(partial(_body, target, spec, dtype)),
                          id=check_id("jax", target.cell, "gradients", device, dtype))
            for dtype in dtypes if dtype in ("float64", "float32")]
