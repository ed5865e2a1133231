"""The arbitrary-precision oracle: gradients free of rounding error, and their condition scale.

Two independent symbolic routes, both evaluated in exact rationals (identity/relu Elman) or
mpmath at ≥ 50 digits:

- :func:`unrolled_gradients` — the symbolic derivative of the whole unrolled loss (full BPTT;
  reverse mode over the expression DAG, :mod:`.reverse`, equal to SymPy's ``diff``);
- :func:`pair_sum` — ``Σ_t Σ_s w[t,s]·C[t,s]`` with ``C[t,s] = G_tᵀ·J(t←s)·∂F_s/∂θ`` built
  from SymPy's Jacobians of one step; any truncation window or randomized weight table w.
  It also returns, per gradient entry, the condition-aware scale: the sum of the absolute
  values of the terms the gradient adds, taken down to single products — every pair C[t,s],
  every product inside the vector–Jacobian chain, every product inside a Jacobian entry — so
  cancellation anywhere counts. A float64 result's error is measured against it in units of
  float64 epsilon (:func:`error_in_eps`).

Stacks of L layers (:mod:`.layers`) chain each layer's step Jacobians. Arrays follow the reference: x (T, B, D), h0 (L, B, P), c0 (L, B, H),
cotangent (T, B, P) of the top layer's output.
"""

from __future__ import annotations

from dataclasses import dataclass, field as dataclass_field
import functools

import numpy as np

from bpttcheck.reference.config import RecurrentConfig
from bpttcheck.reference.validation import InvalidArgument, check_array, check_int, describe

from .precision import EPS64, Field, field_for, to_float
from .running import Accumulator, dot_bound, pair_bound, scaled_bound

__all__ = [
    "OracleResult",
    "check_data",
    "clear_caches",
    "error_in_eps",
    "flatten_params",
    "pair_sum",
    "rounded_gradients",
    "step_model",
    "unrolled_gradients",
]


@dataclass(frozen=True)
class OracleResult:
    """Gradients (object arrays of exact or mpmath numbers, keyed like the reference's
    backward), their condition scales (float64 arrays, Σ|terms|; empty for the unrolled
    route), the high-precision forward outputs (T, B, P), the number system used, and each
    gradient's first-order rounding bound (float64 arrays in units of float64's u,
    :mod:`.running`: what a float64 evaluation of the cells and the chain may be off by,
    cancellation inside the atoms' arguments and in the states included; empty for the
    unrolled route)."""

    grads: dict
    scale: dict
    output: np.ndarray
    field: Field
    rounding: dict = dataclass_field(default_factory=dict)

    def as_float(self) -> dict[str, np.ndarray]:
        return {k: to_float(v) for k, v in self.grads.items()}


def flatten_params(config, params: dict) -> np.ndarray:
    """Parameters in ``named_parameters()`` order, each row-major, as one float64 vector."""
    if not isinstance(config, RecurrentConfig):
        raise InvalidArgument(f"config={describe(config)}: expected a RecurrentConfig")
    shapes = config.param_shapes()
    if not isinstance(params, dict) or set(params) != set(shapes):
        raise InvalidArgument(f"params={describe(params)}: expected exactly the keys {list(shapes)}")
    return np.concatenate([check_array(n, params[n], s).astype(np.float64).ravel() for n, s in shapes.items()])


def check_data(config, x, h0, c0, cotangent):
    """Validated ``(x, h0, c0, cotangent)`` of one case (zeros for missing states; h0 and c0
    have one row per layer)."""
    from .layers import check_unidirectional, state_layout

    check_unidirectional(config)
    P, H, _ = state_layout(config)
    L = config.num_layers
    x = check_array("x", x, (None, None, config.input_size), dims=("T", "B", "input_size"))
    T, B = x.shape[:2]
    h0 = np.zeros((L, B, P)) if h0 is None else check_array("h0", h0, (L, B, P), dims=("num_layers", "B", "P"))
    if H:
        c0 = np.zeros((L, B, H)) if c0 is None else check_array("c0", c0, (L, B, H), dims=("num_layers", "B", "H"))
    elif c0 is not None:
        raise InvalidArgument(f"c0={describe(c0)}: expected None, only the LSTM has a cell state")
    G = check_array("cotangent", cotangent, (T, B, P), dims=("T", "B", "P"))
    return x, h0, c0, G


@dataclass(frozen=True)
class StepModel:
    """One step ``s' = F(x, s; θ)`` (s = h, or h|c for the LSTM) of one layer, its
    Jacobians, their *term-wise absolute* versions (each entry expanded into its products,
    Σ|product|), and first-order rounding bounds (:mod:`.running`) on ``s'`` and the Jacobians,
    given bounds on x and s. Calling it returns ``(s', Js, Jθ, Jx, |Js|, |Jθ|, |Jx|)``;
    :meth:`bounded` returns those and the bounds of ``(s', Js, Jθ, Jx)``."""

    n_state: int
    n_params: int
    D: int
    fn: object  # (values, bounds) -> ([s', ∂s'/∂s, ∂s'/∂θ, ∂s'/∂x, the three absolute versions], bounds of the first four)

    def __call__(self, x, s, theta):
        return self.bounded(x, s, theta)[0]

    def bounded(self, x, s, theta, ex=None, es=None):
        """``((s', Js, Jθ, Jx, |Js|, |Jθ|, |Jx|), (bounds of s', Js, Jθ, Jx))`` given bounds
        ``ex``, ``es`` (in u; None: exact) on the input and the state."""
        n, p, D = self.n_state, self.n_params, self.D
        zero = 0 * s[0] if len(s) else 0
        ex = [zero] * D if ex is None else list(ex)
        es = [zero] * n if es is None else list(es)
        values, bounds = self.fn([*x, *s, *theta], [*ex, *es, *([zero] * p)])
        flat = np.empty(n * (1 + 2 * (n + p + D)), dtype=object)
        flat[:] = values
        sizes = [n, n * n, n * p, n * D, n * n, n * p]
        shapes = [(n,), (n, n), (n, p), (n, D), (n, n), (n, p), (n, D)]
        parts = tuple(a.reshape(shape) for a, shape in zip(np.split(flat, np.cumsum(sizes)), shapes))
        err = np.empty(n * (1 + n + p + D), dtype=object)
        err[:] = bounds
        err_parts = tuple(a.reshape(shape) for a, shape in zip(np.split(err, np.cumsum(sizes[:3])), shapes))
        return parts, err_parts


def _absolute_terms(e):
    """Σ |product| over the products e expands into (function atoms kept whole, nested sums
    such as σ(1 − σ) multiplied out): the size of the terms whose sum the entry is, so that
    cancellation anywhere inside a Jacobian entry counts (:func:`.polynomial.absolute_terms`)."""
    from .polynomial import absolute_terms

    return absolute_terms(e)


@functools.lru_cache(maxsize=64)
def step_model(config, field: Field) -> StepModel:
    """SymPy's Jacobians of one step of a one-layer ``config``, compiled into ``field`` with
    their rounding bounds."""
    import sympy as sp

    from .cells import check_single_layer, param_symbols, state_sizes, step, vector_symbols
    from .running import RunningProgram

    check_single_layer(config)
    if not isinstance(field, Field):
        raise InvalidArgument(f"field={describe(field)}: expected a Field, e.g. field_for(60) or Field(exact=True)")
    P, H = state_sizes(config)
    params = param_symbols(config)
    theta = [s for m in params.values() for s in m]
    x = vector_symbols("x", config.input_size)
    h = vector_symbols("h", P)
    c = vector_symbols("c", H) if H else None
    h_new, c_new = step(config, params, x, h, c)
    s = h if c is None else h.col_join(c)
    s_new = h_new if c_new is None else h_new.col_join(c_new)
    jacobians = [list(s_new.jacobian(s)), list(s_new.jacobian(sp.Matrix(theta))), list(s_new.jacobian(x))]
    values = list(s_new) + [e for j in jacobians for e in j]
    exprs = values + [_absolute_terms(e) for j in jacobians for e in j]
    fn = RunningProgram(list(x) + list(s) + theta, exprs, field.backend, bounded=len(values), exact=theta)
    return StepModel(n_state=P + H, n_params=len(theta), D=config.input_size, fn=fn)


def _unflatten(config, vec) -> dict:
    out, k = {}, 0
    for name, shape in config.param_shapes().items():
        n = int(np.prod(shape))
        out[name] = vec[k : k + n].reshape(shape)
        k += n
    return out


def pair_sum(config, params, x, cotangent, h0=None, c0=None, *, weights=None, dps: int = 60) -> OracleResult:
    """``Σ_b Σ_t Σ_s w[t, s+1]·C[t,s]`` in high precision, with its condition scales.

    ``weights`` (T, T+1) from :mod:`.truncation` (None: full BPTT); column 0 weighs the
    path to the initial state. Gradients of parameters, "input", "h0" and "c0" (LSTM).
    In a stack, each layer's step has its own Jacobians (w.r.t. its state, its input — the
    layer below's new h — and its parameters); the chain from loss t goes down the layers
    at each step and back in time in every layer, and w[t, s+1] weighs every use at step s.
    """
    from .layers import layer_config, state_layout

    x, h0, c0, G = check_data(config, x, h0, c0, cotangent)
    T, B = x.shape[:2]
    P, H, _ = state_layout(config)
    L, n = config.num_layers, P + H
    field = field_for(config, dps)
    W = np.ones((T, T + 1), dtype=object) if weights is None else np.asarray(weights, dtype=object)
    if W.shape != (T, T + 1):
        raise InvalidArgument(f"weights={describe(weights)}: expected shape (T+1={T + 1} columns, T={T} rows)")
    models = [step_model(layer_config(config, layer), field) for layer in range(L)]
    cuts = np.cumsum([m.n_params for m in models])[:-1]  # named_parameters() order is layer-major
    with field.context():
        theta = np.split(field.convert(flatten_params(config, params)), cuts)
        Wf = np.empty(W.shape, dtype=object)
        for idx in np.ndindex(*W.shape):  # weights given as floats are taken at their exact value
            v = W[idx]
            Wf[idx] = field.convert(np.array(v))[()] if isinstance(v, float) else v
        zero = field.convert(np.zeros(()))[()]
        full = lambda shape: np.full(shape, zero, dtype=object)  # noqa: E731
        # g: the gradients and their rounding bounds; a: the same chain over |every product|
        g_theta, g_x, g_s0 = [Accumulator(m.n_params, zero) for m in models], Accumulator(x.shape, zero), \
            Accumulator((L, B, n), zero)
        a_theta, a_x, a_s0 = [full(m.n_params) for m in models], full(x.shape), full((L, B, n))
        out = np.empty((T, B, P), dtype=object)
        for b in range(B):
            steps = _forward(models, field, theta, xs=field.convert(x[:, b]), h0=h0[:, b], c0=c0[:, b] if H else None,
                             full=full, out=out[:, b])
            Gs = field.convert(G[:, b])
            for t in range(T):
                v, va, ve = [full(n) for _ in range(L)], [full(n) for _ in range(L)], [full(n) for _ in range(L)]
                v[-1][:P], va[-1][:P] = Gs[t], np.abs(Gs[t])
                for s_ in range(t, -1, -1):
                    w = Wf[t, s_ + 1]
                    for k in range(L - 1, -1, -1):
                        (Js, Jt, Jx, Ac, At, Ax), (eJs, eJt, eJx) = steps[s_][k]
                        if w != 0:
                            g_theta[k].add(slice(None), *scaled_bound(w, *dot_bound(v[k], ve[k], Jt, eJt)))
                            a_theta[k] += abs(w) * va[k].dot(At)
                        if k:  # down to the layer below's h at the same step, unweighted
                            d, ed = dot_bound(v[k], ve[k], Jx, eJx)
                            v[k - 1][:P], ve[k - 1][:P] = pair_bound(v[k - 1][:P], ve[k - 1][:P], d, ed)
                            va[k - 1][:P] += va[k].dot(Ax)
                        elif w != 0:
                            g_x.add((s_, b), *scaled_bound(w, *dot_bound(v[k], ve[k], Jx, eJx)))
                            a_x[s_, b] += abs(w) * va[k].dot(Ax)
                        v[k], ve[k] = dot_bound(v[k], ve[k], Js, eJs)
                        va[k] = va[k].dot(Ac)
                if Wf[t, 0] != 0:
                    for k in range(L):
                        g_s0.add((k, b), *scaled_bound(Wf[t, 0], v[k], ve[k]))
                        a_s0[k, b] += abs(Wf[t, 0]) * va[k]
        grads = _unflatten(config, np.concatenate([g.value for g in g_theta]))
        scale = {k: to_float(v) for k, v in _unflatten(config, np.concatenate(a_theta)).items()}
        rounding = {k: to_float(v) for k, v in _unflatten(config, np.concatenate([g.bound() for g in g_theta])).items()}
        grads["input"], scale["input"], rounding["input"] = g_x.value, to_float(a_x), to_float(g_x.bound())
        s0, s0_bound = g_s0.value, to_float(g_s0.bound())
        grads["h0"], scale["h0"], rounding["h0"] = s0[:, :, :P], to_float(a_s0[:, :, :P]), s0_bound[:, :, :P]
        if H:
            grads["c0"], scale["c0"], rounding["c0"] = s0[:, :, P:], to_float(a_s0[:, :, P:]), s0_bound[:, :, P:]
    return OracleResult(grads=grads, scale=scale, output=out, field=field, rounding=rounding)


def _forward(models, field, theta, *, xs, h0, c0, full, out):
    """One batch row's forward through every layer: per step and layer, the Jacobians and their
    rounding bounds (the states' bounds carried from step to step, and up the layers)."""
    L, P = len(models), h0.shape[-1]
    s = [np.concatenate([field.convert(h0[k]), field.convert(c0[k]) if c0 is not None else np.empty(0, object)])
         for k in range(L)]
    es = [full(len(s[k])) for k in range(L)]  # the data are floats: exact
    steps = []
    for t in range(len(xs)):
        inp, e_inp, row = xs[t], None, []
        for k in range(L):
            (s[k], *jac), (es[k], *e_jac) = models[k].bounded(inp, s[k], theta[k], ex=e_inp, es=es[k])
            row.append((jac, e_jac))
            inp, e_inp = s[k][:P], es[k][:P]
        steps.append(row)
        out[t] = inp
    return steps


@functools.lru_cache(maxsize=16)
def _unrolled_fn(config, T: int, B: int, field: Field):
    from .program import Program
    from .unroll import gradient, unroll

    u = unroll(config, T, B)
    grads = gradient(u)
    shapes = {k: v.shape for k, v in grads.items()}
    exprs = [e for v in grads.values() for e in v.ravel()] + list(u.outputs().ravel())
    fn = Program(u.arguments(), exprs, field.backend)
    return fn, shapes, u.outputs().shape


def unrolled_gradients(config, params, x, cotangent, h0=None, c0=None, *, dps: int = 60) -> OracleResult:
    """Full-BPTT gradients from the symbolic derivative of the unrolled loss (reverse mode
    over its DAG, :func:`.unroll.gradient`), in high precision."""
    x, h0, c0, G = check_data(config, x, h0, c0, cotangent)
    T, B = x.shape[:2]
    field = field_for(config, dps)
    fn, shapes, out_shape = _unrolled_fn(config, T, B, field)
    with field.context():
        values = [flatten_params(config, params), x.ravel(), h0.ravel()]
        if c0 is not None:
            values.append(c0.ravel())
        values.append(G.ravel())
        args = field.convert(np.concatenate(values))
        flat = fn(*args)
    grads, k = {}, 0
    for name, shape in shapes.items():
        m = int(np.prod(shape))
        arr = np.empty(m, dtype=object)
        arr[:] = flat[k : k + m]
        grads[name] = arr.reshape(shape)
        k += m
    out = np.empty(int(np.prod(out_shape)), dtype=object)
    out[:] = flat[k:]
    return OracleResult(grads=grads, scale={}, output=out.reshape(out_shape), field=field)


def rounded_gradients(config, params, x, cotangent, h0=None, c0=None, *, bits: int) -> dict[str, np.ndarray]:
    """Full-BPTT gradients of a *simulated implementation* whose every operation rounds to
    ``bits`` significant bits (unit roundoff 2^−bits): the unrolled reverse-mode program
    (:func:`unrolled_gradients`'s) evaluated by mpmath at that working precision, the data
    kept exact. At 53 bits it rounds like float64 (with correctly rounded tanh and exp); at
    fewer, its errors grow as 2^(53 − bits) — a yardstick for how sharp an allowance is.
    Returns float64 arrays."""
    import mpmath

    bits = check_int("bits", bits, minimum=8)
    x, h0, c0, G = check_data(config, x, h0, c0, cotangent)
    T, B = x.shape[:2]
    high = Field(exact=False, dps=60)
    fn, shapes, _ = _unrolled_fn(config, T, B, high)
    with high.context():
        values = [flatten_params(config, params), x.ravel(), h0.ravel()] + ([c0.ravel()] if c0 is not None else [])
        args = high.convert(np.concatenate(values + [G.ravel()]))
    with mpmath.workprec(bits):
        flat = fn(*args)
    grads, k = {}, 0
    for name, shape in shapes.items():
        m = int(np.prod(shape))
        grads[name] = np.array([float(v) for v in flat[k : k + m]]).reshape(shape)
        k += m
    return grads


def error_in_eps(actual, expected, scale) -> np.ndarray:
    """``|actual − expected| / (scale · eps64)`` elementwise, the difference taken exactly
    (rationals) or at 60 digits (mpmath).

    ``expected`` holds exact/mpmath numbers; an entry with scale 0 (the gradient adds no
    terms) reports 0 if ``actual`` is exactly 0 too, else inf.
    """
    import mpmath
    import sympy as sp

    try:
        a = np.asarray(actual, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgument(f"actual={describe(actual)}: expected an array of float64 gradients") from None
    e = np.asarray(expected, dtype=object)
    try:
        s = np.asarray(scale, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgument(f"scale={describe(scale)}: expected an array of scales >= 0") from None
    if a.shape != e.shape or s.shape != e.shape:
        raise InvalidArgument(f"actual {a.shape}, expected {e.shape}, scale {s.shape}: expected one shape")
    out = np.empty(a.shape, dtype=np.float64)
    with mpmath.workdps(60):
        for idx in np.ndindex(*a.shape):
            ei = e[idx]
            if isinstance(ei, sp.Basic):
                diff = abs(sp.Rational(float(a[idx])) - ei)
                diff = int(diff.p) / int(diff.q)
            else:
                diff = float(abs(mpmath.mpf(float(a[idx])) - ei))
            if s[idx] > 0:
                out[idx] = diff / s[idx] / EPS64
            else:
                out[idx] = 0.0 if diff == 0 else np.inf
    return out


def clear_caches() -> None:
    """Forget the compiled step models and unrolled gradients: the next call starts cold, as the
    symbolic benchmarks measure it (with :func:`~.codegen.clear_caches` and SymPy's own)."""
    for cached in (_unrolled_fn, step_model):
        cached.cache_clear()
