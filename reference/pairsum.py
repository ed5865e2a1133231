"""The O(T²) pair-sum (SPEC §1): slow, obviously right, the oracle of every fast sweep.

For a stacked unidirectional network and the loss ``Σ_t ⟨G_t, y_t⟩``,

    C[t, s] = the part of ∂ℓ_t/∂θ that flows through the uses at step s,   s ≤ t,

and every truncation is ``Σ_t Σ_{s ≥ f(t)} C[t, s]``. Here the windows are evaluated from the
definition: the surrogate loss of loss t runs the network over steps f(t)..t from the frozen
state H[f(t)-1] (itself obtained by a plain forward over x[:f(t)]), one loss at a time, with
no batching and no crossing rule — nothing shared with :mod:`.truncation` but the engine.

:func:`pair_contributions` returns every C[t, s] as flat gradient vectors (parameters in
torch order, then the input, then h0 and c0). Column ``u = s + 1`` of ``C[t, u]``: u = 0
holds the initial states (they are reached through the link into step 0, "s = -1"), u ≥ 1
the uses at step s = u - 1. The randomized moments and the diagnostics read these.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cells import cell_spec
from .network import backward, forward
from .schemes import Window, window_starts
from .truncation import check_problem

__all__ = ["PairContributions", "pair_contributions", "pair_sum", "surrogate_gradient"]


def _state_before(config, params, x, h0, c0, a):
    """(h, c) entering step a: the frozen constants of a window that starts at a."""
    if a == 0:
        return h0, c0
    r = forward(config, params, x[:a], h0, c0)
    return r.h_n, r.c_n


def surrogate_gradient(config, params, x, d_output, t: int, a: int, h0=None, c0=None) -> dict:
    """Gradient of ⟨d_output[t], y_t⟩ with the states entering step a frozen.

    Keys as :func:`bpttcheck.reference.network.backward`; "input" is (T, B, D) with zeros
    before a; "h0"/"c0" are the initial states' gradients (zero unless a = 0).
    """
    h, c = _state_before(config, params, x, h0, c0, a)
    r = forward(config, params, x[a : t + 1], h, c)
    d = np.zeros(r.output.shape, dtype=np.result_type(r.output, d_output))
    d[-1] = d_output[t]
    g = backward(params, r, d)
    out = {k: v for k, v in g.items() if k not in ("input", "h0", "c0")}
    dx = np.zeros(x.shape, dtype=g["input"].dtype)
    dx[a : t + 1] = g["input"]
    out["input"] = dx
    for key in ("h0", "c0"):
        if key in g:
            out[key] = g[key] if a == 0 else np.zeros_like(g[key])
    return out


def pair_sum(config, params, x, d_output, scheme_or_f, h0=None, c0=None) -> dict:
    """Σ_t of the surrogate gradient of loss t over the window f(t)..t: O(T²).

    ``scheme_or_f``: a deterministic scheme of :mod:`.truncation`, or an array f of T window
    starts. Steps whose cotangent is all zero are skipped.
    """
    x, d_output = check_problem(config, params, x, d_output, h0, c0)
    T = x.shape[0]
    if isinstance(scheme_or_f, np.ndarray):  # window starts given directly: validated as a Window
        scheme_or_f = Window(scheme_or_f.tolist() if scheme_or_f.ndim == 1 else scheme_or_f, "f (array)")
    f = window_starts(scheme_or_f, T)
    total = None
    for t in range(T):
        if not np.any(d_output[t]):
            continue
        g = surrogate_gradient(config, params, x, d_output, t, int(f[t]), h0, c0)
        total = g if total is None else {k: total[k] + g[k] for k in total}
    if total is None:
        total = surrogate_gradient(config, params, x, np.zeros_like(d_output), 0, 0, h0, c0)
    return total


@dataclass(frozen=True)
class PairContributions:
    """C (T, T+1, n): ``C[t, s+1]`` = contribution of loss t through step s (s = -1: h0/c0).

    ``layout`` lists (name, shape) of the flat vector's blocks in order.
    """

    C: np.ndarray
    layout: tuple

    @property
    def T(self) -> int:
        return self.C.shape[0]

    def flatten(self, grads: dict) -> np.ndarray:
        return np.concatenate([np.asarray(grads[name]).reshape(-1) for name, _ in self.layout])

    def unflatten(self, flat: np.ndarray) -> dict:
        """(…, n) -> dict of (…, *shape) arrays."""
        out, i = {}, 0
        lead = flat.shape[:-1]
        for name, shape in self.layout:
            size = int(np.prod(shape))
            out[name] = flat[..., i : i + size].reshape(lead + tuple(shape))
            i += size
        return out

    def names(self) -> list[str]:
        """The name and index of every flat coordinate, e.g. ``weight_hh_l0[1, 2]``."""
        out = []
        for name, shape in self.layout:
            for idx in np.ndindex(*shape):
                out.append(f"{name}[{', '.join(map(str, idx))}]")
        return out

    def mask(self, f: np.ndarray) -> np.ndarray:
        """(T, T+1) 0/1: which pairs a window f includes (u = s+1 ≥ f(t)+1, and u = 0 iff f(t) = 0)."""
        T = self.T
        u = np.arange(T + 1)[None, :]
        t = np.arange(T)[:, None]
        lo = np.where(f == 0, 0, f + 1)[:, None]
        return ((u >= lo) & (u <= t + 1)).astype(np.float64)

    def window_sum(self, f: np.ndarray) -> np.ndarray:
        return np.einsum("tu,tun->n", self.mask(np.asarray(f)), self.C)

    def weighted_sum(self, W: np.ndarray) -> np.ndarray:
        """W (…, T, T+1) pair weights -> (…, n)."""
        lead = W.shape[:-2]
        return (W.reshape(-1, self.C.shape[0] * self.C.shape[1]) @ self.C.reshape(-1, self.C.shape[2])).reshape(
            lead + (self.C.shape[2],)
        )

    @property
    def full(self) -> np.ndarray:
        return self.C.sum(axis=(0, 1))


def pair_contributions(config, params, x, d_output, h0=None, c0=None) -> PairContributions:
    """Every C[t, s], from window gradients G(a, t) = Σ_{s ≥ a} C[t, s] by differences.

    Cost: T forwards and T(T+1)/2 backwards over at most T steps, O(T³) steps in all — meant
    for T up to a few dozen (exact moments, diagnostics), not for speed.
    """
    x, d_output = check_problem(config, params, x, d_output, h0, c0)
    T = x.shape[0]
    layout = None
    C = None
    init_keys = ("h0", "c0") if cell_spec(config.cell).has_cell_state else ("h0",)
    for a in range(T):
        h, c = _state_before(config, params, x, h0, c0, a)
        r = forward(config, params, x[a:], h, c)
        for t in range(a, T):
            d = np.zeros(r.output.shape, dtype=np.result_type(r.output, d_output))
            d[t - a] = d_output[t]
            g = backward(params, r, d)
            dx = np.zeros(x.shape, dtype=g["input"].dtype)
            dx[a:] = g["input"]
            g["input"] = dx
            if layout is None:
                layout = tuple((k, v.shape) for k, v in g.items())
                C = np.zeros((T, T + 1, sum(int(np.prod(s)) for _, s in layout)), dtype=dx.dtype)
            flat = np.concatenate([g[k].reshape(-1) for k, _ in layout])
            if a == 0:
                n_init = sum(int(np.prod(s)) for k, s in layout if k in init_keys)
                C[t, 0, -n_init:] = flat[-n_init:]  # the initial states' share: "s = -1"
                flat[-n_init:] = 0
            else:
                flat[-sum(int(np.prod(s)) for k, s in layout if k in init_keys):] = 0
            C[t, a + 1] = flat  # G(a, t) for now; differenced below
    # C[t, a+1] holds G(a, t) = Σ_{s ≥ a} C[t, s]; C[t, s] = G(s, t) - G(s+1, t).
    G = C[:, 1:].copy()
    C[:, 1:-1] = G[:, :-1] - G[:, 1:]
    C[:, -1] = G[:, -1]
    return PairContributions(C, layout)
