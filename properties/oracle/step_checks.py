"""Checks of ``step`` targets: a differentiable step function of the user's own design.

Protocol (the target is such an object, its class, or a zero-argument factory returning one)::

    init(input_size, hidden_size, rng) -> dict[str, Tensor]      # parameters (float64 is used)
    step(params, x_t, state) -> (output_t, state)                 # x_t (B, D); state a Tensor or tuple
    init_state(batch_size, hidden_size, rng) -> state             # optional: default 0.5·N(0, 1), (B, H)

The oracle unrolls ``step`` over T steps with the loss ``L = Σ_t ⟨G_t, output_t⟩ + ⟨G_T, state_T⟩``
and knows nothing of its equations, so it checks the target against itself:

- gradients: torch autograd's BPTT gradient (every parameter, the input, the initial state)
  against directional derivatives of the target's own forward along a random direction per
  quantity — the complex step where the forward runs in complex128 and agrees with central
  differences (it is analytic), central differences with their error estimate otherwise.
  Before that, the forward's precision: a forward that computes in float32 inside (its loss
  hardly moves when its float64 inputs are rounded to float32) is reported as such
  (``ForwardPrecision``) instead of its gradient being blamed.
- truncated: the detach-loop gradient of subsequence truncation and the recomputed sliding
  window, against the O(T²) pair-sum Σ_t Σ_{s ≥ f(t)} C[t, s] assembled from the step's own
  Jacobians — computed without the target's autograd (the complex step of its step function,
  or central differences), so a wrong custom backward inside the step fails it too (SPEC §1).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from bpttcheck.reference.finite_diff import directional_derivative
from bpttcheck.reference.truncation import SlidingWindow, Subsequence

from ..compare import assert_close
from ..runner import PropertyCheck
from ..tolerance import finite_difference_tolerance, implementation_tolerance
from .common import Guarded, TargetFailure, call_target, check_id, devices_for

__all__ = ["StepProblem", "forward_precision", "jacobian_pair_sum", "step_checks", "step_comparisons", "step_jacobians",
           "step_object", "truncated_comparisons"]


def step_object(obj):
    """The object with ``init`` and ``step``: ``obj`` itself, or what its factory returns."""
    if callable(getattr(obj, "step", None)) and callable(getattr(obj, "init", None)) and not isinstance(obj, type):
        return obj
    return obj()


def _flat_state(state):
    return list(state) if isinstance(state, (tuple, list)) else [state]


class StepProblem:
    """One drawn problem for a step target: parameters, inputs, initial state, cotangents, as
    named float64 blocks ("params.<name>", "input", "state0[i]")."""

    def __init__(self, target, spec, device, D, H, B, T, seed):
        import torch

        self.torch, self.target, self.spec, self.device, self.T = torch, target, spec, device, T
        self.D, self.H, self.B, self.seed = D, H, B, seed
        rng = np.random.default_rng(seed)
        self.ctx = f"{spec} on {device}; input_size={D}, hidden_size={H}, B={B}, T={T}, seed={seed}"
        params = call_target(f"{spec}.init({D}, {H}, rng)", target.init, D, H, rng, context=self.ctx)
        if not isinstance(params, dict) or not all(hasattr(v, "detach") for v in params.values()):
            raise TargetFailure(f"WrongType: init returned {type(params).__name__}; expected a dict of name -> Tensor ({self.ctx})")
        self.names = list(params)
        if hasattr(target, "init_state"):
            s0 = call_target(f"{spec}.init_state({B}, {H}, rng)", target.init_state, B, H, rng, context=self.ctx)
        else:
            s0 = torch.tensor(0.5 * rng.standard_normal((B, H)))
        self.tuple_state = isinstance(s0, (tuple, list))
        blocks = {f"params.{n}": params[n].detach().double().cpu().numpy() for n in self.names}
        blocks["input"] = rng.standard_normal((T, B, D))
        for i, s in enumerate(_flat_state(s0)):
            blocks[f"state0[{i}]"] = s.detach().double().cpu().numpy()
        self.blocks = blocks
        y0, sT = self.run(self.tensors(blocks))  # shapes of the outputs fix the cotangents
        self.G = [rng.standard_normal(tuple(y.shape)) for y in y0]
        self.GS = [rng.standard_normal(tuple(s.shape)) for s in sT]

    def tensors(self, blocks, grad=False, dtype=None):
        torch = self.torch
        return {k: torch.tensor(v, dtype=dtype or (torch.complex128 if np.iscomplexobj(v) else torch.float64),
                                device=self.device, requires_grad=grad) for k, v in blocks.items()}

    def state0(self, t):
        s = [t[k] for k in sorted(k for k in t if k.startswith("state0"))]
        return tuple(s) if self.tuple_state else s[0]

    def call_step(self, params, x_t, state, t):
        out = call_target(f"{self.spec}.step(params, x_t, state) at t={t}", self.target.step, params, x_t, state,
                          context=self.ctx)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TargetFailure(f"WrongType: step returned {type(out).__name__}; expected (output_t, state) ({self.ctx})")
        return out

    def run(self, t, cut=None):
        """Outputs per step and the final state; ``cut(t)`` True detaches the state entering t."""
        params = {n: t[f"params.{n}"] for n in self.names}
        state = self.state0(t)
        ys = []
        for i in range(self.T):
            if cut is not None and cut(i):
                state = tuple(s.detach() for s in state) if self.tuple_state else state.detach()
            y, state = self.call_step(params, t["input"][i], state, i)
            ys.append(y)
        return ys, _flat_state(state)

    def loss(self, t, cut=None, final=True):
        torch = self.torch
        ys, sT = self.run(t, cut)
        total = 0
        for y, g in zip(ys, self.G):
            total = total + (y * torch.as_tensor(g, device=self.device)).sum()
        if final:
            for s, g in zip(sT, self.GS):
                total = total + (s * torch.as_tensor(g, device=self.device)).sum()
        return total

    def loss_scale(self) -> float:
        """Σ|G|·|y| + Σ|G_T|·|s_T| at the drawn point: the size of the loss's terms."""
        torch = self.torch
        with torch.no_grad():
            ys, sT = self.run(self.tensors(self.blocks))
        total = sum(float((y.abs() * torch.as_tensor(np.abs(g), device=self.device)).sum()) for y, g in zip(ys, self.G))
        total += sum(float((s.abs() * torch.as_tensor(np.abs(g), device=self.device)).sum()) for s, g in zip(sT, self.GS))
        return total

    def gradient(self, cut=None, final=True) -> dict:
        t = self.tensors(self.blocks, grad=True)
        keys = list(t)
        grads = self.torch.autograd.grad(self.loss(t, cut, final), [t[k] for k in keys], allow_unused=True)
        return {k: (np.zeros(self.blocks[k].shape) if g is None else g.detach().double().cpu().numpy())
                for k, g in zip(keys, grads)}


def _flat_f(problem):
    keys = list(problem.blocks)
    sizes = [problem.blocks[k].size for k in keys]
    theta = np.concatenate([problem.blocks[k].ravel() for k in keys])

    def f(rows):
        out = []
        for row in rows:
            blocks, i = {}, 0
            for k, n in zip(keys, sizes):
                blocks[k] = row[i:i + n].reshape(problem.blocks[k].shape)
                i += n
            with problem.torch.no_grad():
                out.append(problem.loss(problem.tensors(blocks)).cpu().numpy()[()])
        return np.asarray(out)
    return keys, sizes, theta, f


def forward_precision(problem, f=None, theta=None) -> dict:
    """Whether the target's forward resolves its float64 inputs: the loss at θ against the loss
    at θ rounded to float32 (its own float32 rounding). A float64 forward changes by what its
    derivative along that move predicts (the move is ~6e-8 relative, far above float64's
    rounding); a forward that computes in float32 inside (a float32 matmul in a float64 layer)
    hardly changes at all, or by float32 noise. Returns ``observed``, ``predicted`` (a central
    difference along the move, with a step far above float32's resolution), ``relative``
    (|observed − predicted| / |predicted|) and ``below`` (True when the forward computes below
    float64: relative > 1/4)."""
    if f is None:
        _, _, theta, f = _flat_f(problem)
    theta32 = theta.astype(np.float32).astype(np.float64)
    move = theta - theta32
    size = float(np.sqrt(np.sum(move * move)))
    if size == 0.0:
        return dict(observed=0.0, predicted=0.0, relative=0.0, below=False)
    unit = move / size
    h = 2.0**-12 * max(1.0, float(np.max(np.abs(theta))))
    f0, f32, fp, fm = f(np.stack([theta, theta32, theta + h * unit, theta - h * unit]))
    observed = float(f0 - f32)
    predicted = float((fp - fm) / (2 * h) * size)
    relative = abs(observed - predicted) / abs(predicted) if predicted != 0 else 0.0
    return dict(observed=observed, predicted=predicted, relative=relative, below=bool(relative > 0.25))


def _gradients_body(target_obj, spec, device, drawn):
    D, H, B, T, seed = drawn
    p = StepProblem(step_object(target_obj), spec, device, D, H, B, T, seed)
    g = p.gradient()
    keys, sizes, theta, f = _flat_f(p)
    rng = np.random.default_rng(seed + 1)
    V = np.zeros((len(keys), theta.size))
    i = 0
    for r, n in enumerate(sizes):
        V[r, i:i + n] = rng.standard_normal(n) + 0.0
        i += n
    V = V[[r for r, n in enumerate(sizes) if n]]
    keys = [k for k, n in zip(keys, sizes) if n]
    rep = (f"import numpy as np\nfrom bpttcheck.properties.oracle import load_target\n"
           f"from bpttcheck.properties.oracle.step_checks import StepProblem, step_comparisons, step_object\n"
           f"p = StepProblem(step_object(load_target({spec!r})), {spec!r}, {device!r}, {D}, {H}, {B}, {T}, {seed})\n"
           "step_comparisons(p, seed=" + str(seed) + ")  # raises when the bug is there")
    precision = forward_precision(p, f, theta)
    if precision["below"]:
        raise TargetFailure(
            f"ForwardPrecision: the target's forward does not compute in float64: the loss moves by "
            f"{precision['observed']:.3e} when its inputs are rounded to float32, where its own derivative along "
            f"that move predicts {precision['predicted']:.3e} (off by {precision['relative']:.0%}); it computes "
            f"at about float32 precision inside (a float32 matmul in a float64 layer?), so finite differences "
            f"cannot judge its float64 gradient — the gradient is not blamed ({p.ctx})\n  reproduce:\n"
            + "\n".join("    " + line for line in rep.splitlines()))
    return step_comparisons(p, seed=seed, _prepared=(g, keys, theta, f, V))


def step_comparisons(p, *, seed: int, _prepared=None) -> list:
    """The gradients check of a prepared :class:`StepProblem`: autograd's vᵀ∇L along one random
    direction per quantity against the complex step (or central differences) of the target's
    own forward; raises :class:`~bpttcheck.properties.compare.Mismatch` on a disagreement."""
    if _prepared is None:
        g = p.gradient()
        keys, sizes, theta, f = _flat_f(p)
        rng = np.random.default_rng(seed + 1)
        V = np.zeros((len(keys), theta.size))
        i = 0
        for r, n in enumerate(sizes):
            V[r, i:i + n] = rng.standard_normal(n) + 0.0
            i += n
        V = V[[r for r, n in enumerate(sizes) if n]]
        keys = [k for k, n in zip(keys, sizes) if n]
    else:
        g, keys, theta, f, V = _prepared
    analytic = V @ np.concatenate([g[k].ravel() for k in p.blocks])
    # The loss's rounding is relative to Σ|G|·|y| (its terms), not to |L| (which may cancel).
    central = directional_derivative(f, theta, V, method="central", f_scale=p.loss_scale())
    method, fd = "central differences", central
    try:
        cs = directional_derivative(f, theta, V, method="complex")
    except Exception:  # the forward is not complex-capable (relu, layer norm, …): central it is
        cs = None
    # A non-analytic forward (abs, conj, .real) makes the complex step wrong by O(1), not by
    # the central differences' 1e-10: agreement to 1e-6 of the values tells the two apart.
    if cs is not None and np.all(np.abs(cs.value - central.value)
                                 <= 10 * central.error + 1e-6 * (np.abs(central.value) + np.max(np.abs(central.value)))):
        method, fd = "complex step", cs
    terms = np.abs(V) @ np.concatenate([np.abs(g[k]).ravel() for k in p.blocks])
    comps = []
    rep = (f"import numpy as np\nfrom bpttcheck.properties.oracle import load_target\n"
           f"from bpttcheck.properties.oracle.step_checks import StepProblem, step_comparisons, step_object\n"
           f"p = StepProblem(step_object(load_target({p.spec!r})), {p.spec!r}, {p.device!r}, "
           f"{p.D}, {p.H}, {p.B}, {p.T}, {p.seed})\n"
           f"step_comparisons(p, seed={seed})  # raises when the bug is there")
    for r, k in enumerate(keys):
        # vᵀ∇L sums |v|·|∇L| terms: that is its Σ|terms| (the scale it is rounded on)
        base = implementation_tolerance("float64", T=p.T, scale=float(terms[r]) or 1.0)
        # both methods' own error estimates: the complex step's is a few u of the largest
        # directional derivative (the linearised forward rounds on that scale, and a small
        # component cancels down from it: found at dev seed 54)
        tol = finite_difference_tolerance(fd.error[r:r + 1], base)
        comps.append(assert_close(f"{k} (vᵀ∇L along a random v, vs the {method} of the target's own forward)",
                                  analytic[r], fd.value[r], tol, context=p.ctx, reproducer=rep))
    return comps


def _step_inputs(p):
    """The states entering each step (plain forward) and the shapes of the flat blocks."""
    torch = p.torch
    t = p.tensors(p.blocks)
    params = {n: t[f"params.{n}"] for n in p.names}
    shapes = [tuple(params[n].shape) for n in p.names]
    states, state = [], p.state0(t)
    for i in range(p.T):
        states.append(state)
        with torch.no_grad():
            _, state = p.call_step(params, t["input"][i], state, i)
    sshapes = [tuple(s.shape) for s in _flat_state(states[0])]
    return t, params, shapes, states, sshapes


def _split(flat, shapes):
    out, i = [], 0
    for s in shapes:
        n = int(np.prod(s))
        out.append(flat[i:i + n].reshape(s))
        i += n
    return out


def step_jacobians(p) -> tuple[list, str, list]:
    """Each step's Jacobians ((∂y/∂θ, ∂y/∂x_t, ∂y/∂s), (∂s′/∂θ, ∂s′/∂x_t, ∂s′/∂s)) computed
    *without* the target's autograd: by the complex step of its step function, one column at a
    time (exact to rounding), where the step runs in complex128 and agrees with central
    differences along a random direction; by central differences otherwise (with their error
    estimates). Returns (jacobians, method, errors: same layout, the per-entry error estimate,
    zeros for the complex step)."""
    torch = p.torch
    t, params, shapes, states, sshapes = _step_inputs(p)
    theta = np.concatenate([params[n].detach().cpu().numpy().ravel() for n in p.names])
    n_theta = theta.size

    def step_fn(z, i, x_shape, dtype):
        th, x, s = z[:n_theta], z[n_theta:n_theta + int(np.prod(x_shape))], z[n_theta + int(np.prod(x_shape)):]
        ps = {n: torch.as_tensor(a, dtype=dtype, device=p.device) for n, a in zip(p.names, _split(th, shapes))}
        st = [torch.as_tensor(a, dtype=dtype, device=p.device) for a in _split(s, sshapes)]
        with torch.no_grad():
            y, new = p.call_step(ps, torch.as_tensor(x.reshape(x_shape), dtype=dtype, device=p.device),
                                 tuple(st) if p.tuple_state else st[0], i)
        flat_new = torch.cat([a.reshape(-1) for a in _flat_state(new)])
        return y.reshape(-1).cpu().numpy(), flat_new.cpu().numpy()

    points = []
    for i in range(p.T):
        x = t["input"][i].detach().cpu().numpy()
        s = np.concatenate([a.detach().cpu().numpy().ravel() for a in _flat_state(states[i])])
        points.append((np.concatenate([theta, x.ravel(), s]), x.shape, (theta.size, x.size, s.size)))

    def complex_columns(z, i, x_shape):
        h = 1e-30
        cols_y, cols_s = [], []
        for k in range(z.size):
            zc = z.astype(np.complex128)
            zc[k] += 1j * h
            y, new = step_fn(zc, i, x_shape, torch.complex128)
            cols_y.append(y.imag / h)
            cols_s.append(new.imag / h)
        return np.stack(cols_y, axis=1), np.stack(cols_s, axis=1)

    def central_columns(z, i, x_shape):
        cols_y, cols_s, err_y, err_s = [], [], [], []
        for k in range(z.size):
            h = 2.0**-18 * max(1.0, abs(z[k]))
            vals = []
            for off in (1.0, -1.0, 2.0, -2.0):
                zz = z.copy()
                zz[k] += off * h
                vals.append(step_fn(zz, i, x_shape, torch.float64))
            (y1, s1), (y_1, s_1), (y2, s2), (y_2, s_2) = vals
            d1y, d1s = (y1 - y_1) / (2 * h), (s1 - s_1) / (2 * h)
            d2y, d2s = (y2 - y_2) / (4 * h), (s2 - s_2) / (4 * h)
            u = 2.0**-53
            cols_y.append(d1y)
            cols_s.append(d1s)
            # truncation from the two steps' disagreement, rounding from the values' size
            err_y.append(np.abs(d2y - d1y) / 3 + 4 * u * np.maximum(np.abs(y1), np.abs(y_1)) / h)
            err_s.append(np.abs(d2s - d1s) / 3 + 4 * u * np.maximum(np.abs(s1), np.abs(s_1)) / h)
        return (np.stack(cols_y, 1), np.stack(cols_s, 1)), (np.stack(err_y, 1), np.stack(err_s, 1))

    method = "central differences"
    try:
        z, i, x_shape = points[0][0], 0, points[0][1]
        v = np.random.default_rng(p.seed + 7).standard_normal(z.size)
        yc, sc = step_fn(z.astype(np.complex128) + 1j * 1e-30 * v, i, x_shape, torch.complex128)
        hv = 2.0**-18 * max(1.0, float(np.max(np.abs(z))))
        yp, sp = step_fn(z + hv * v, i, x_shape, torch.float64)
        ym, sm = step_fn(z - hv * v, i, x_shape, torch.float64)
        dc = np.concatenate([yc.imag, sc.imag]) / 1e-30
        dd = np.concatenate([yp - ym, sp - sm]) / (2 * hv)
        if np.all(np.abs(dc - dd) <= 1e-6 * (np.abs(dd) + np.max(np.abs(dd)) + 1e-300)):
            method = "complex step"
    except Exception:  # not complex-capable (relu, clamp, …): central differences it is
        method = "central differences"
    jac, errors = [], []
    for z, x_shape, (nt, nx, ns) in points:
        i = len(jac)
        if method == "complex step":
            (Jy, Js), (Ey, Es) = complex_columns(z, i, x_shape), (None, None)
        else:
            (Jy, Js), (Ey, Es) = central_columns(z, i, x_shape)
        cut = (lambda M: [M[:, :nt], M[:, nt:nt + nx], M[:, nt + nx:]])
        jac.append([cut(Jy), cut(Js)])
        errors.append(None if Ey is None else [cut(Ey), cut(Es)])
    return jac, method, errors


def jacobian_pair_sum(p, f_start, jac=None, *, absolute: bool = False) -> dict:
    """Σ_t Σ_{s ≥ f(t)} C[t, s] (output losses only, SPEC §1) assembled from the step's
    Jacobians (default: :func:`step_jacobians`, independent of the target's autograd).
    ``absolute``: the same sums over |G| and |J| — Σ|terms| of each element."""
    if jac is None:
        jac = step_jacobians(p)[0]
    a_ = np.abs if absolute else (lambda m: m)
    _, params, shapes, states, sshapes = _step_inputs(p)
    n_theta = sum(int(np.prod(s)) for s in shapes)
    g_theta, g_x = np.zeros(n_theta), np.zeros(p.blocks["input"].shape)
    g_s0 = np.zeros(sum(int(np.prod(s)) for s in sshapes))
    for tt in range(p.T):
        (y_th, y_x, y_s), _ = jac[tt]
        a = a_(p.G[tt].reshape(-1))
        g_theta += a @ a_(y_th)
        g_x[tt] += (a @ a_(y_x).reshape(a.size, -1)).reshape(g_x[tt].shape)
        adj = a @ a_(y_s)
        for s in range(tt - 1, f_start[tt] - 1, -1):
            _, (s_th, s_x, s_s) = jac[s]
            g_theta += adj @ a_(s_th)
            g_x[s] += (adj @ a_(s_x).reshape(adj.size, -1)).reshape(g_x[s].shape)
            adj = adj @ a_(s_s)
        if f_start[tt] == 0:
            g_s0 += adj
    out = {f"params.{n}": v for n, v in zip(p.names, _split(g_theta, shapes))}
    out["input"] = g_x
    for i, v in enumerate(_split(g_s0, sshapes)):
        out[f"state0[{i}]"] = v
    return out


def _propagated_error(p, f_start, jac, errors) -> dict:
    """First-order bound on how far the central differences' errors move the pair-sum: the
    |·| pair-sum with |J| + E minus the one with |J|."""
    bigger = [[[np.abs(j) + e for j, e in zip(jr, er)] for jr, er in zip(js, es)] for js, es in zip(jac, errors)]
    hi = jacobian_pair_sum(p, f_start, bigger, absolute=True)
    lo = jacobian_pair_sum(p, f_start, jac, absolute=True)
    return {k: np.maximum(hi[k] - lo[k], 0.0) for k in hi}


def truncated_comparisons(p, k: int) -> list:
    """The truncated check of a prepared :class:`StepProblem` with window k: the detach-loop
    gradient of subsequence truncation and the recomputed sliding window (the target's
    autograd) against the pair-sum of its step's Jacobians computed without autograd;
    raises :class:`~bpttcheck.properties.compare.Mismatch` on a disagreement."""
    jac, method, errors = step_jacobians(p)
    comps = []
    for scheme in (Subsequence(k), SlidingWindow(k)):
        f = scheme.window(p.T)
        if isinstance(scheme, Subsequence):
            got = p.gradient(cut=lambda i: i > 0 and i % k == 0, final=False)
        else:
            got = _window_gradient(p, f)
        want = jacobian_pair_sum(p, f, jac)
        mags = jacobian_pair_sum(p, f, jac, absolute=True)
        spread = None if method == "complex step" else _propagated_error(p, f, jac, errors)
        rep = (f"import numpy as np\nfrom bpttcheck.properties.oracle import load_target\n"
               f"from bpttcheck.properties.oracle.step_checks import StepProblem, step_object, truncated_comparisons\n"
               f"p = StepProblem(step_object(load_target({p.spec!r})), {p.spec!r}, {p.device!r}, "
               f"{p.D}, {p.H}, {p.B}, {p.T}, {p.seed})\n"
               f"truncated_comparisons(p, {k})  # raises when the bug is there")
        for key, e in want.items():
            # condition-aware: Σ|terms| of the pair-sum (the same sums over |G| and |J|)
            tol = implementation_tolerance("float64", T=p.T, scale=float(np.max(np.abs(e))) if e.size else 1.0,
                                           magnitude=mags[key])
            if spread is not None:
                tol = finite_difference_tolerance(spread[key], tol)
            comps.append(assert_close(f"{key} ({scheme.describe()}: autograd through the step vs the pair-sum of "
                                      f"its Jacobians by the {method})", got[key], e, tol, context=p.ctx, reproducer=rep))
    return comps


def _truncated_body(target_obj, spec, device, drawn):
    D, H, B, T, seed, k = drawn
    p = StepProblem(step_object(target_obj), spec, device, D, H, B, T, seed)
    return truncated_comparisons(p, k)


def _window_gradient(p, f):
    """Sliding window by recomputation: loss t from the state entering f(t), held constant."""
    torch = p.torch
    t = p.tensors(p.blocks, grad=True)
    params = {n: t[f"params.{n}"] for n in p.names}
    keys = list(t)
    total = {k: np.zeros(p.blocks[k].shape) for k in keys}
    for tt in range(p.T):
        state = p.state0(t)
        for i in range(tt + 1):
            if i == f[tt] and i > 0:
                state = tuple(s.detach() for s in state) if p.tuple_state else state.detach()
            y, state = p.call_step(params, t["input"][i], state, i)
        loss = (y * torch.as_tensor(p.G[tt], device=p.device)).sum()
        for k, g in zip(keys, torch.autograd.grad(loss, [t[k] for k in keys], allow_unused=True)):
            if g is not None:
                total[k] += g.detach().double().cpu().numpy()
    return total


def _strategy(truncated: bool):
    from hypothesis import strategies as st

    base = st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 2), st.integers(1, 5),
                     st.integers(0, 2**31 - 1))
    if not truncated:
        return base
    return base.flatmap(lambda b: st.integers(1, b[3] + 1).map(lambda k: b + (k,)))


def step_checks(target, options) -> list[PropertyCheck]:
    spec, obj, device = target.spec, target.obj, options.device
    out = []
    for dev, skip in devices_for(device):
        for part, body in (("gradients", _gradients_body), ("truncated", _truncated_body)):
            out.append(PropertyCheck(
                name=f"{spec} (step) {part} on {dev}",
                strategy=_strategy(part == "truncated"),
                body=Guarded(partial(body, obj, spec, dev)),
                skip=skip,
                id=check_id("step", "custom", part, dev, "float64"),
            ))
    return out
