"""LSTM layer, one direction, time-major, PyTorch's equations and gate order (i, f, g, o).

    [i f g o] = [σ σ tanh σ](W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
    c_t = f⊙c_{t-1} + i⊙g,   m_t = o⊙tanh(c_t),   h_t = m_t  (or W_hr m_t with proj_size)

Shapes: x (T,B,D), h (B,P), c (B,H), with P = proj_size or H; weight_hh (4H, P),
weight_hr (P, H). The forward keeps, per step, the few products the backward needs, computed
for all steps at once after the loop, so the backward loop is a handful of array operations.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..activations import sigmoid, tanh_into
from ..cellops import diag, input_and_weight_grads, input_projection
from ..cellspec import CellSpec

__all__ = ["LSTMCache", "SPEC", "backward", "forward", "magnitude_cache", "step_jacobian"]


class LSTMCache(NamedTuple):
    """What the backward needs, per step (T leading): x (T,B,D), the layer weights, states
    (T+1,B,P) = h entering each step, forget (T,B,H) = f_t, coeffs (T,B,4H) = the gate
    pre-activation coefficients [g·σ′(i), c_{t-1}·σ′(f), i·tanh′(g), tanh c_t·σ′(o)],
    out_coeff (T,B,H) = o·(1 − tanh² c_t), proj_input (T,B,H) = o⊙tanh c_t (with proj_size,
    else None), mask; and what only the magnitudes and diagnostics read: gates (T,B,4H) =
    [i f g o], cell_states (T+1,B,H) with cell_states[0] = c0, tanh_c (T,B,H). A magnitude
    cache has None for gates and tanh_c."""

    x: np.ndarray
    w: dict
    states: np.ndarray
    forget: np.ndarray
    coeffs: np.ndarray
    out_coeff: np.ndarray
    proj_input: np.ndarray | None
    mask: np.ndarray | None
    gates: np.ndarray | None
    cell_states: np.ndarray
    tanh_c: np.ndarray | None


def _gate_scales(H, dtype):
    # σ(a) = ½ + ½·tanh(a/2): one tanh over all four blocks. The ½ inside is folded into the
    # weights once per call (exact: a power of two), the ½ outside is applied per step.
    scale = np.full(4 * H, 0.5, dtype=dtype)
    scale[2 * H : 3 * H] = 1.0
    shift = np.full(4 * H, 0.5, dtype=dtype)
    shift[2 * H : 3 * H] = 0.0
    return scale, shift


def forward(x, w, h0, c0, mask, nonlinearity=None, keep=True):
    """Returns ``(y (T,B,P), h_T, c_T, cache)``; ``keep=False`` skips the cache (None)."""
    T = x.shape[0]
    H = w["weight_hh"].shape[-2] // 4
    W_hh_T = w["weight_hh"].swapaxes(-1, -2)
    W_hr_T = None if w.get("weight_hr") is None else w["weight_hr"].swapaxes(-1, -2)
    A = input_projection(x, w, bias_hh_too=True)  # becomes the gate activations in place
    scale, shift = _gate_scales(H, A.real.dtype)
    A *= scale
    W_hh_T = W_hh_T * scale
    Hs = np.empty((T + 1,) + h0.shape, dtype=A.dtype)
    Cs = np.empty((T + 1,) + c0.shape, dtype=A.dtype)
    TC = np.empty(A.shape[:-1] + (H,), dtype=A.dtype)
    M = np.empty_like(TC) if W_hr_T is not None else None
    Hs[0], Cs[0] = h0, c0
    for t in range(T):
        a = A[t]
        a += Hs[t] @ W_hh_T
        tanh_into(a, a)
        a *= scale
        a += shift
        c = Cs[t + 1]
        np.multiply(a[..., H : 2 * H], Cs[t], out=c)
        c += a[..., :H] * a[..., 2 * H : 3 * H]
        tanh_into(c, TC[t])
        if W_hr_T is None:
            np.multiply(a[..., 3 * H :], TC[t], out=Hs[t + 1])
        else:
            np.multiply(a[..., 3 * H :], TC[t], out=M[t])
            np.matmul(M[t], W_hr_T, out=Hs[t + 1])
        if mask is not None:
            np.copyto(Hs[t + 1], Hs[t], where=~mask[t])
            np.copyto(c, Cs[t], where=~mask[t])
    if not keep:  # a forward-only call (finite differences): no backward arrays
        return (Hs[1:] if mask is None else np.where(mask, Hs[1:], 0)), Hs[T], Cs[T], None
    # The backward's per-step coefficients, for all t at once:
    #   d pre = [dc·g, dc·c_{t-1}, dc·i, dm·tanh c] ⊙ φ′,  dc += dm·o·(1 − tanh² c)
    i, f, g, o = A[..., :H], A[..., H : 2 * H], A[..., 2 * H : 3 * H], A[..., 3 * H :]
    QD = np.concatenate([g * (i - i * i), Cs[:-1] * (f - f * f), i * (1 - g * g), TC * (o - o * o)], axis=-1)
    OT = o * (1 - TC * TC)
    y = Hs[1:] if mask is None else np.where(mask, Hs[1:], 0)
    cache = LSTMCache(x, w, Hs, f.copy(), QD, OT, M, mask, A, Cs, TC)
    return y, Hs[T], Cs[T], cache


def backward(cache, dy, dh, dc, crossing):
    """Adjoints of ``forward``: ``(dx, dh0, dc0, grads)``; see :func:`bpttcheck.reference.cells.elman.backward`."""
    x, w, Hs, F, QD, OT, M, mask = (cache.x, cache.w, cache.states, cache.forget, cache.coeffs,
                                    cache.out_coeff, cache.proj_input, cache.mask)
    T, B, _ = x.shape
    H = F.shape[-1]
    W_hh, W_hr = w["weight_hh"], w.get("weight_hr")
    dtype = np.result_type(QD, dy)
    dA = np.empty((T, B, 4 * H), dtype=dtype)
    dA4 = dA.reshape(T, B, 4, H)
    QD4 = QD.reshape(T, B, 4, H)
    dH = np.empty((T,) + Hs.shape[1:], dtype=dtype) if W_hr is not None else None
    dh = np.zeros(Hs.shape[1:], dtype=dtype) if dh is None else dh
    dc = np.zeros((B, H), dtype=dtype) if dc is None else dc
    for t in range(T - 1, -1, -1):
        g = dy[t] + dh
        if W_hr is None:
            dm = g
        else:
            dH[t] = g
            dm = g @ W_hr
        dct = dc + dm * OT[t]
        np.multiply(dct[:, None, :], QD4[t, :, :3], out=dA4[t, :, :3])
        np.multiply(dm, QD4[t, :, 3], out=dA4[t, :, 3])
        if mask is None:
            dh = dA[t] @ W_hh
            dc = dct * F[t]
        else:
            dA[t] *= mask[t]
            dh = dA[t] @ W_hh + np.where(mask[t], 0, dh)
            dc = np.where(mask[t], dct * F[t], dc)
        if crossing is not None:
            dh, dc = crossing(t, dh, dc)
    dx, grads = input_and_weight_grads(x, w, Hs[:-1], dA, dA)
    if W_hr is not None:
        if mask is not None:
            dH *= mask
        grads["weight_hr"] = dH.reshape(T * B, -1).T @ M.reshape(T * B, H)
    return dx, dh, dc, grads


def magnitude_cache(cache):
    """The cache with every factor replaced by the sum of the absolute values of its terms
    (σ′ = a − a², tanh′ = 1 − a² cancel near saturation: their magnitudes are a + a², 1 + a²)."""
    x, w, Hs, F, QD, OT, M, mask, A, Cs, TC = cache
    H = F.shape[-1]
    a = np.abs(A)
    i, f, g, o = a[..., :H], a[..., H : 2 * H], a[..., 2 * H : 3 * H], a[..., 3 * H :]
    tc, c_prev = np.abs(TC), np.abs(Cs[:-1])
    QD = np.concatenate([g * (i + i * i), c_prev * (f + f * f), i * (1 + g * g), tc * (o + o * o)], axis=-1)
    OT = o * (1 + tc * tc)
    w = {k: None if v is None else np.abs(v) for k, v in w.items()}
    return LSTMCache(np.abs(x), w, np.abs(Hs), f, QD, OT, None if M is None else np.abs(M), mask, None, np.abs(Cs), None)


def step_jacobian(config, params, a_in, a_hh, cache):
    """State [h; c]: the gates' D_t·W_hh plus the direct paths ∂c_t/∂c_{t-1} = diag(f) and
    ∂h_t/∂c_{t-1} = W_hr·diag(o(1 − tanh²c_t)·f); c comes from the forward's cache."""
    H, P = config.hidden_size, config.output_size
    a = a_in + a_hh
    i, f = sigmoid(a[..., :H]), sigmoid(a[..., H : 2 * H])
    g, o = np.tanh(a[..., 2 * H : 3 * H]), sigmoid(a[..., 3 * H :])
    T, B = a.shape[:2]
    Cs = cache.cell_states
    tc = np.tanh(Cs[1:])
    zero = np.zeros_like(i)
    dc = np.concatenate([diag(g * (i - i * i)), diag(Cs[:-1] * (f - f * f)), diag(i * (1 - g * g)), diag(zero)], axis=-1)
    do = o * (1 - tc * tc)
    dm = do[..., None] * dc
    dm[..., 3 * H :] += diag(tc * (o - o * o))
    m_c = diag(do * f)  # ∂m_t/∂c_{t-1} through c_t
    W_hr = params.get("weight_hr_l0")
    if W_hr is not None:
        dm, m_c = W_hr @ dm, W_hr @ m_c
    d_pre = np.concatenate([dm, dc], axis=-2)  # (T, B, P+H, 4H)
    direct = np.zeros((T, B, P + H, P + H), dtype=a.dtype)
    direct[..., :P, P:] = m_c
    direct[..., P:, P:] = diag(f)
    return d_pre, direct, np.concatenate([cache.states, Cs], axis=-1)


SPEC = CellSpec(
    name="lstm",
    gates=("i", "f", "g", "o"),
    has_cell_state=True,
    nonlinearities=("tanh",),
    projection=True,
    forward=forward,
    backward=backward,
    magnitude_cache=magnitude_cache,
    step_jacobian=step_jacobian,
    cache_type=LSTMCache,
    symbolic="bpttcheck.symbolic.cells.lstm_step",
    torch_module="LSTM",
    torch_cell="LSTMCell",
    title="LSTM",
    rank=1,
)
