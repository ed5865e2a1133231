"""LSTM layer, one direction, time-major, PyTorch's equations and gate order (i, f, g, o).

    [i f g o] = [σ σ tanh σ](W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
    c_t = f⊙c_{t-1} + i⊙g,   m_t = o⊙tanh(c_t),   h_t = m_t  (or W_hr m_t with proj_size)

Shapes: x (T,B,D), h (B,P), c (B,H), with P = proj_size or H; weight_hh (4H, P),
weight_hr (P, H). The forward keeps, per step, the few products the backward needs, computed
for all steps at once after the loop, so the backward loop is a handful of array operations.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np

from ..activations import LOW_SIGMOID, refine_low_sigmoid, round_atoms, sigmoid, tanh_into
from ..cellops import diag, input_and_weight_grads, input_projection
from ..cellspec import CellSpec

__all__ = ["LSTMCache", "SPEC", "backward", "forward", "magnitude_cache", "step_jacobian"]


class LSTMCache(NamedTuple):
    """What the backward needs: x (T,B,D), the layer weights, states (T+1,B,P) = h entering
    each step, gates (T,B,4H) = [i f g o], cell_states (T+1,B,H) with cell_states[0] = c0,
    tanh_c (T,B,H) = tanh c_t, proj_input (T,B,H) = o⊙tanh c_t (with proj_size, else None),
    mask; coeffs (T,B,4H) / out_coeff (T,B,H): the backward's per-step coefficients (see
    :func:`_coefficients`) when precomputed — a magnitude cache holds them, the forward's
    cache leaves them None and the backward computes them a few steps at a time."""

    x: np.ndarray
    w: dict
    states: np.ndarray
    gates: np.ndarray
    cell_states: np.ndarray
    tanh_c: np.ndarray
    proj_input: np.ndarray | None
    mask: np.ndarray | None
    coeffs: np.ndarray | None = None
    out_coeff: np.ndarray | None = None


#: Elements of gate-sized work per block of steps in the backward: one block of coefficients
#: (and the forward's per-step arrays) stays in the CPU's cache while it is used.
BLOCK_ELEMENTS = 2**16


@lru_cache(maxsize=64)
def _gate_scales(H, dtype):
    # σ(a) = ½ + ½·tanh(a/2): one tanh over all four blocks. The ½ inside is folded into the
    # weights once per call (exact: a power of two), the ½ outside is applied per step.
    # Kept per (H, dtype), read-only: making them cost a tiny layer 5 µs a call.
    scale = np.full(4 * H, 0.5, dtype=dtype)
    scale[2 * H : 3 * H] = 1.0
    shift = np.full(4 * H, 0.5, dtype=dtype)
    shift[2 * H : 3 * H] = 0.0
    scale.flags.writeable = shift.flags.writeable = False
    return scale, shift


def forward(x, w, h0, c0, mask, nonlinearity=None, keep=True):
    """Returns ``(y (T,B,P), h_T, c_T, cache)``; ``keep=False`` skips the cache (None).

    Each step works in place on its own rows of the gate array and preallocated buffers, so
    its arrays stay in cache; nothing is computed for the backward here (see :func:`backward`).

    σ as ½ + ½·tanh(a/2) is accurate to ±u absolute only: a saturated gate (σ ≪ 1) loses its
    relative digits, and a tiny output o⊙tanh(c) with it. A layer whose gates all stayed
    above σ(−4) (one vectorised test after the pass) is exact enough; one that did not runs
    again with those gates recomputed relative-accurately at every step.
    """
    return _forward(x, w, h0, c0, mask, keep, refine=False) or _forward(x, w, h0, c0, mask, keep, refine=True)


def _forward(x, w, h0, c0, mask, keep, refine):
    T = x.shape[0]
    H = w["weight_hh"].shape[-2] // 4
    W_hr_T = None if w.get("weight_hr") is None else w["weight_hr"].swapaxes(-1, -2)
    A = input_projection(x, w, bias_hh_too=True)  # becomes the gate activations in place
    scale, shift = _gate_scales(H, np.dtype(A.real.dtype))
    A *= scale
    W_hh_T = w["weight_hh"].swapaxes(-1, -2) * scale
    Hs = np.empty((T + 1,) + h0.shape, dtype=A.dtype)
    Cs = np.empty((T + 1,) + c0.shape, dtype=A.dtype)
    TC = np.empty(A.shape[:-1] + (H,), dtype=A.dtype)
    M = np.empty_like(TC) if W_hr_T is not None else None
    gh = np.empty(A.shape[1:], dtype=A.dtype)  # W_hh h of one step
    ig = np.empty(TC.shape[1:], dtype=A.dtype)  # i⊙g of one step
    Hs[0], Cs[0] = h0, c0
    for t in range(T):
        a = A[t]
        np.matmul(Hs[t], W_hh_T, out=gh)
        a += gh
        if refine:
            pre = 2.0 * a
            pre[..., 2 * H : 3 * H] = 0.0  # the g block is a tanh: accurate as it is
        tanh_into(a, a)
        a *= scale
        a += shift
        if refine:
            refine_low_sigmoid(a, pre)
        round_atoms(a)
        c = Cs[t + 1]
        np.multiply(a[..., H : 2 * H], Cs[t], out=c)
        np.multiply(a[..., :H], a[..., 2 * H : 3 * H], out=ig)
        c += ig
        round_atoms(tanh_into(c, TC[t]))
        if W_hr_T is None:
            np.multiply(a[..., 3 * H :], TC[t], out=Hs[t + 1])
        else:
            np.multiply(a[..., 3 * H :], TC[t], out=M[t])
            np.matmul(M[t], W_hr_T, out=Hs[t + 1])
        if mask is not None:
            np.copyto(Hs[t + 1], Hs[t], where=~mask[t])
            np.copyto(c, Cs[t], where=~mask[t])
    if not refine and T and min(A[..., : 2 * H].real.min(), A[..., 3 * H :].real.min()) < LOW_SIGMOID:
        return None  # a saturated gate: run again, refining it
    y = Hs[1:] if mask is None else np.where(mask, Hs[1:], 0)
    if not keep:  # a forward-only call (finite differences): no backward arrays
        return y, Hs[T], Cs[T], None
    return y, Hs[T], Cs[T], LSTMCache(x, w, Hs, A, Cs, TC, M, mask)


def _coefficients(A, c_prev, TC, QD, OT, s):
    """The backward's coefficients of steps whose gates are A (k,B,4H), written into QD
    (k,B,4H) and OT (k,B,H) with scratch s (k,B,H):

        d pre = [dc·g·σ′(i), dc·c_{t-1}·σ′(f), dc·i·tanh′(g), dm·tanh c·σ′(o)],
        dc_t += dm·o·tanh′(c_t),  σ′ = a − a², tanh′ = 1 − a².
    """
    H = TC.shape[-1]
    i, f, g, o = A[..., :H], A[..., H : 2 * H], A[..., 2 * H : 3 * H], A[..., 3 * H :]
    q = [QD[..., k * H : (k + 1) * H] for k in range(4)]
    for gate, factor, out in ((i, g, q[0]), (f, c_prev, q[1]), (o, TC, q[3])):
        np.multiply(gate, gate, out=s)
        np.subtract(gate, s, out=s)
        np.multiply(factor, s, out=out)
    np.multiply(g, g, out=s)
    np.subtract(1, s, out=s)
    np.multiply(i, s, out=q[2])
    np.multiply(TC, TC, out=s)
    np.subtract(1, s, out=s)
    np.multiply(o, s, out=OT)


def backward(cache, dy, dh, dc, crossing):
    """Adjoints of ``forward``: ``(dx, dh0, dc0, grads)``; see :func:`bpttcheck.reference.cells.elman.backward`.

    Runs back in blocks of steps: each block's coefficients are computed (unless the cache
    holds them) just before its steps are swept, while they are in cache.
    """
    x, w, Hs, A, Cs, TC, M, mask = (cache.x, cache.w, cache.states, cache.gates, cache.cell_states,
                                    cache.tanh_c, cache.proj_input, cache.mask)
    T, B, _ = x.shape
    H = TC.shape[-1]
    W_hh, W_hr = w["weight_hh"], w.get("weight_hr")
    dtype = np.result_type(A, dy)
    dA = np.empty((T, B, 4 * H), dtype=dtype)
    dA4 = dA.reshape(T, B, 4, H)
    dH = np.empty((T,) + Hs.shape[1:], dtype=dtype) if W_hr is not None else None
    dh = np.zeros(Hs.shape[1:], dtype=dtype) if dh is None else dh
    dc = np.zeros((B, H), dtype=dtype) if dc is None else dc
    k = max(1, min(T, BLOCK_ELEMENTS // max(1, B * 4 * H)))
    own = cache.coeffs is None
    if own:
        QD_b = np.empty((k, B, 4 * H), dtype=A.dtype)
        OT_b = np.empty((k, B, H), dtype=A.dtype)
        scratch = np.empty((k, B, H), dtype=A.dtype)
    dct = np.empty((B, H), dtype=dtype)
    dct_3 = dct[:, None, :]  # made once: a view's cost is a tenth of a tiny step's
    for t1 in range(T, 0, -k):
        t0 = max(0, t1 - k)
        n = t1 - t0
        if own:
            QD, OT = QD_b[:n], OT_b[:n]
            _coefficients(A[t0:t1], Cs[t0:t1], TC[t0:t1], QD, OT, scratch[:n])
        else:
            QD, OT = cache.coeffs[t0:t1], cache.out_coeff[t0:t1]
        QD4 = QD.reshape(n, B, 4, H)
        F = A[t0:t1, :, H : 2 * H]
        for t in range(t1 - 1, t0 - 1, -1):
            j = t - t0
            g = dy[t] + dh
            if W_hr is None:
                dm = g
            else:
                dH[t] = g
                dm = g @ W_hr
            np.multiply(dm, OT[j], out=dct)
            dct += dc
            np.multiply(dct_3, QD4[j, :, :3], out=dA4[t, :, :3])
            np.multiply(dm, QD4[j, :, 3], out=dA4[t, :, 3])
            if mask is None:
                dh = dA[t] @ W_hh
                dc = dct * F[j]
            else:
                dA[t] *= mask[t]
                dh = dA[t] @ W_hh + np.where(mask[t], 0, dh)
                dc = np.where(mask[t], dct * F[j], dc)
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
    (σ′ = a − a², tanh′ = 1 − a² cancel near saturation: their magnitudes are a + a², 1 + a²);
    its coefficients are precomputed for every step."""
    x, w, Hs, A, Cs, TC, M, mask = cache[:8]
    H = TC.shape[-1]
    a = np.abs(A)
    i, f, g, o = a[..., :H], a[..., H : 2 * H], a[..., 2 * H : 3 * H], a[..., 3 * H :]
    tc, c_prev = np.abs(TC), np.abs(Cs[:-1])
    QD = np.concatenate([g * (i + i * i), c_prev * (f + f * f), i * (1 + g * g), tc * (o + o * o)], axis=-1)
    OT = o * (1 + tc * tc)
    w = {k: None if v is None else np.abs(v) for k, v in w.items()}
    return LSTMCache(np.abs(x), w, np.abs(Hs), a, np.abs(Cs), tc, None if M is None else np.abs(M), mask, QD, OT)


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
