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
- truncated: the detach-loop gradient of subsequence truncation and the recomputed sliding
  window, against the O(T²) pair-sum Σ_t Σ_{s ≥ f(t)} C[t, s] assembled from the step's own
  Jacobians (``torch.autograd.functional.jacobian`` at each step, SPEC §1).
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

__all__ = ["StepProblem", "jacobian_pairsum", "step_checks", "step_object"]


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
    analytic = V @ np.concatenate([g[k].ravel() for k in p.blocks])
    central = directional_derivative(f, theta, V, method="central")
    method, fd = "central differences", central
    try:
        cs = directional_derivative(f, theta, V, method="complex")
    except Exception:  # the forward is not complex-capable (relu, layer norm, …): central it is
        cs = None
    if cs is not None and np.all(np.abs(cs.value - central.value) <= 10 * central.error + 1e-12 * np.abs(central.value)):
        method, fd = "complex step", cs
    terms = np.abs(V) @ np.concatenate([np.abs(g[k]).ravel() for k in p.blocks])
    comps = []
    for r, k in enumerate(keys):
        base = implementation_tolerance("float64", T=T, scale=float(terms[r]) or 1.0)
        tol = base if method == "complex step" else finite_difference_tolerance(fd.error[r:r + 1], base)
        rep = (f"import numpy as np\nfrom bpttcheck.properties.oracle import load_target\n"
               f"from bpttcheck.properties.oracle.step_checks import StepProblem, step_object\n"
               f"p = StepProblem(step_object(load_target({spec!r})), {spec!r}, {device!r}, {D}, {H}, {B}, {T}, {seed})\n"
               f"g = p.gradient()  # autograd BPTT of the unrolled step; compare with finite differences of p.loss")
        comps.append(assert_close(f"{k} (vᵀ∇L along a random v, vs the {method} of the target's own forward)",
                                  analytic[r], fd.value[r], tol, context=p.ctx, reproducer=rep))
    return comps


def jacobian_pairsum(p, f_start) -> dict:
    """Σ_t Σ_{s ≥ f(t)} C[t, s] from the step's own Jacobians (output losses only)."""
    torch = p.torch
    t = p.tensors(p.blocks)
    params = {n: t[f"params.{n}"] for n in p.names}
    pkeys = [f"params.{n}" for n in p.names]
    shapes = [tuple(params[n].shape) for n in p.names]
    states, state = [], p.state0(t)
    for i in range(p.T):  # the states entering each step, from the plain forward
        states.append(state)
        with torch.no_grad():
            _, state = p.call_step(params, t["input"][i], state, i)
    sshapes = [tuple(s.shape) for s in _flat_state(states[0])]

    def split(flat, shp):
        out, i = [], 0
        for s in shp:
            n = int(np.prod(s))
            out.append(flat[i:i + n].reshape(s))
            i += n
        return out

    jac = []
    for i in range(p.T):
        def fn(theta, x, s, i=i):
            ps = dict(zip(p.names, split(theta, shapes)))
            st = split(s, sshapes)
            y, new = p.call_step(ps, x, tuple(st) if p.tuple_state else st[0], i)
            return y.reshape(-1), torch.cat([a.reshape(-1) for a in _flat_state(new)])
        theta = torch.cat([params[n].reshape(-1) for n in p.names])
        s = torch.cat([a.reshape(-1) for a in _flat_state(states[i])])
        jac.append([[j.detach().cpu().numpy() for j in row]
                    for row in torch.autograd.functional.jacobian(fn, (theta, t["input"][i], s))])
    n_theta = sum(int(np.prod(s)) for s in shapes)
    g_theta, g_x = np.zeros(n_theta), np.zeros(p.blocks["input"].shape)
    g_s0 = np.zeros(sum(int(np.prod(s)) for s in sshapes))
    for tt in range(p.T):
        (y_th, y_x, y_s), _ = jac[tt]
        a = p.G[tt].reshape(-1)
        g_theta += a @ y_th
        g_x[tt] += (a @ y_x.reshape(a.size, -1)).reshape(g_x[tt].shape)
        adj = a @ y_s
        for s in range(tt - 1, f_start[tt] - 1, -1):
            _, (s_th, s_x, s_s) = jac[s]
            g_theta += adj @ s_th
            g_x[s] += (adj @ s_x.reshape(adj.size, -1)).reshape(g_x[s].shape)
            adj = adj @ s_s
        if f_start[tt] == 0:
            g_s0 += adj
    out = {k: v for k, v in zip(pkeys, split(g_theta, shapes))}
    out["input"] = g_x
    for i, v in enumerate(split(g_s0, sshapes)):
        out[f"state0[{i}]"] = v
    return out


def _truncated_body(target_obj, spec, device, drawn):
    D, H, B, T, seed, k = drawn
    p = StepProblem(step_object(target_obj), spec, device, D, H, B, T, seed)
    comps = []
    for scheme in (Subsequence(k), SlidingWindow(k)):
        f = scheme.window(T)
        if isinstance(scheme, Subsequence):
            got = p.gradient(cut=lambda i: i > 0 and i % k == 0, final=False)
        else:
            got = _window_gradient(p, f)
        want = jacobian_pairsum(p, f)
        for key, e in want.items():
            tol = implementation_tolerance("float64", T=T, scale=float(np.max(np.abs(e))) if e.size else 1.0)
            rep = (f"import numpy as np\nfrom bpttcheck.properties.oracle import load_target\n"
                   f"from bpttcheck.properties.oracle.step_checks import StepProblem, step_object, jacobian_pairsum\n"
                   f"p = StepProblem(step_object(load_target({spec!r})), {spec!r}, {device!r}, {D}, {H}, {B}, {T}, {seed})\n"
                   f"want = jacobian_pairsum(p, np.array({f.tolist()}))")
            comps.append(assert_close(f"{key} ({scheme.describe()}: autograd through the step vs the pair-sum of "
                                      "its Jacobians)", got[key], e, tol, context=p.ctx, reproducer=rep))
    return comps


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
