"""Elman RNN layer, one direction, time-major: forward and hand-written backward.

    a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh,   h_t = φ(a_t)

Shapes: x (T, B, D), h (B, H), weights in torch's layout (H, D), (H, H), (H,).
With a mask (T, B, 1) a padded step keeps the state (h_t = h_{t-1}) and outputs zeros.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..activations import ACTIVATIONS, activate, derivative, round_atoms
from ..cellops import diag, input_and_weight_grads, input_projection
from ..cellspec import CellSpec

__all__ = ["ElmanCache", "SPEC", "backward", "forward", "magnitude_cache", "step_jacobian"]


class ElmanCache(NamedTuple):
    """What the backward needs: x (T,B,D), the layer weights, states (T+1,B,H) with
    states[0] = h0, derivative (T,B,H) = φ′(a_t), mask (T,B,1) or None, the nonlinearity."""

    x: np.ndarray
    w: dict
    states: np.ndarray
    derivative: np.ndarray
    mask: np.ndarray | None
    nonlinearity: str


def forward(x, w, h0, c0, mask, nonlinearity, keep=True):
    """Returns ``(y (T,B,H), h_T, None, cache)``; ``keep=False`` skips the cache (None)."""
    T = x.shape[0]
    W_hh_T = w["weight_hh"].swapaxes(-1, -2)
    A = input_projection(x, w, bias_hh_too=True)
    Hs = np.empty((T + 1,) + h0.shape, dtype=A.dtype)
    Hs[0] = h0
    for t in range(T):
        a = A[t]
        a += Hs[t] @ W_hh_T
        round_atoms(activate(nonlinearity, a, out=Hs[t + 1]))
        if mask is not None:
            np.copyto(Hs[t + 1], Hs[t], where=~mask[t])
    y = Hs[1:] if mask is None else np.where(mask, Hs[1:], 0)
    if not keep:  # a forward-only call (finite differences): no backward arrays
        return y, Hs[T], None, None
    D = derivative(nonlinearity, A, Hs[1:])
    return y, Hs[T], None, ElmanCache(x, w, Hs, D, mask, nonlinearity)


def backward(cache, dy, dh, dc, crossing):
    """Adjoints of ``forward``: ``(dx, dh0, None, grads)``.

    ``dh`` is the cotangent of h_T (or None); ``crossing(t, dh, dc)`` transforms the carried
    adjoint as it crosses the link into step t (truncation and randomized schemes).
    """
    x, w, Hs, D, mask = cache.x, cache.w, cache.states, cache.derivative, cache.mask
    T = x.shape[0]
    W_hh = w["weight_hh"]
    dA = np.empty_like(D, dtype=np.result_type(D, dy))
    dh = np.zeros_like(dA[0]) if dh is None else dh
    for t in range(T - 1, -1, -1):
        g = dy[t] + dh
        np.multiply(g, D[t], out=dA[t])
        if mask is None:
            dh = dA[t] @ W_hh
        else:
            dA[t] *= mask[t]
            dh = dA[t] @ W_hh + np.where(mask[t], 0, dh)
        if crossing is not None:
            dh, _ = crossing(t, dh, None)
    dx, grads = input_and_weight_grads(x, w, Hs[:-1], dA, dA)
    return dx, dh, None, grads


def magnitude_cache(cache):
    """The cache with every factor replaced by the sum of the absolute values of its terms.

    φ′ is computed as 1 − h² (tanh) or h − h² (sigmoid): near saturation that difference
    cancels, and its rounding error is u·(1 + h²), not u·|φ′| — so its magnitude is 1 + h².
    """
    x, w, Hs, D, mask, nonlinearity = cache
    h = np.abs(Hs[1:])
    if nonlinearity == "tanh":
        D = 1 + h * h
    elif nonlinearity == "sigmoid":
        D = h + h * h
    else:
        D = np.abs(D)
    w = {k: None if v is None else np.abs(v) for k, v in w.items()}
    return ElmanCache(np.abs(x), w, np.abs(Hs), D, mask, nonlinearity)


def step_jacobian(config, params, a_in, a_hh, cache):
    """∂h_t/∂a_t = diag(φ′(a_t)) (no path bypasses W_hh); see :mod:`bpttcheck.reference.jacobians`."""
    Hs = cache.states
    return diag(derivative(config.nonlinearity, a_in + a_hh, Hs[1:])), None, Hs


SPEC = CellSpec(
    name="rnn",
    gates=("h",),
    has_cell_state=False,
    nonlinearities=ACTIVATIONS,
    forward=forward,
    backward=backward,
    magnitude_cache=magnitude_cache,
    step_jacobian=step_jacobian,
    cache_type=ElmanCache,
    symbolic="bpttcheck.symbolic.cells.elman_step",
    torch_module="RNN",
    torch_cell="RNNCell",
    title="Elman RNN",
    rank=0,
)
