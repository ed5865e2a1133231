"""GRU layer, one direction, time-major, PyTorch's equations and gate order (r, z, n).

    r = σ(W_ir x + b_ir + W_hr h + b_hr),  z = σ(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r⊙(W_hn h + b_hn)),   h_t = (1 − z)⊙n + z⊙h_{t-1}

b_hn sits inside the reset product (torch/cuDNN; the 2014 paper puts r on h instead).
Shapes: x (T,B,D), h (B,H), weight_ih (3H, D), weight_hh (3H, H).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..activations import LOW_SIGMOID, refine_low_sigmoid, round_atoms, sigmoid, tanh_into
from ..cellops import diag, input_and_weight_grads, input_projection
from ..cellspec import CellSpec

__all__ = ["GRUCache", "SPEC", "backward", "forward", "magnitude_cache", "step_jacobian"]


class GRUCache(NamedTuple):
    """What the backward needs: x (T,B,D), the layer weights, states (T+1,B,H) with
    states[0] = h0, gates (T,B,3H) = [r z n], hidden_n (T,B,H) = W_hn h + b_hn, mask;
    coeffs_in (T,B,3H) / coeffs_hn (T,B,H): the backward's coefficients (see
    :func:`_coefficients`) when precomputed — a magnitude cache holds them, the forward's cache
    leaves them None and the backward computes them a few steps at a time."""

    x: np.ndarray
    w: dict
    states: np.ndarray
    gates: np.ndarray
    hidden_n: np.ndarray
    mask: np.ndarray | None
    coeffs_in: np.ndarray | None = None
    coeffs_hn: np.ndarray | None = None


#: Elements of gate-sized work per block of steps in the backward (kept in cache while used).
BLOCK_ELEMENTS = 2**16


def forward(x, w, h0, c0, mask, nonlinearity=None, keep=True):
    """Returns ``(y (T,B,H), h_T, None, cache)``; ``keep=False`` skips the cache (None).
    Saturated r, z gates are refined as in the LSTM's forward."""
    return _forward(x, w, h0, mask, keep, refine=False) or _forward(x, w, h0, mask, keep, refine=True)


def _forward(x, w, h0, mask, keep, refine):
    T = x.shape[0]
    H = w["weight_hh"].shape[-2] // 3
    # σ(a) = ½ + ½·tanh(a/2) for r and z: the inner ½ is folded into their rows once per call
    # (exact, a power of two), so each step needs one tanh and one affine map.
    half = np.ones(3 * H, dtype=x.real.dtype)
    half[: 2 * H] = 0.5
    W_hh_T = w["weight_hh"].swapaxes(-1, -2) * half
    b_hh = None if w["bias_hh"] is None else (w["bias_hh"] * half)[..., None, :]
    A = input_projection(x, w, bias_hh_too=False)  # becomes the gates [r z n] in place
    A[..., : 2 * H] *= 0.5
    Hs = np.empty((T + 1,) + h0.shape, dtype=A.dtype)
    GHn = np.empty(A.shape[:-1] + (H,), dtype=A.dtype)  # W_hn h + b_hn, kept for the backward
    gh = np.empty(A.shape[1:], dtype=A.dtype)  # W_hh h + b_hh of one step
    Hs[0] = h0
    for t in range(T):
        np.matmul(Hs[t], W_hh_T, out=gh)
        if b_hh is not None:
            gh += b_hh
        rz = A[t, ..., : 2 * H]
        rz += gh[..., : 2 * H]
        if refine:
            pre = 2.0 * rz
        tanh_into(rz, rz)
        rz *= 0.5
        rz += 0.5
        if refine:
            refine_low_sigmoid(rz, pre)
        round_atoms(rz)
        GHn[t] = gh[..., 2 * H :]
        np.multiply(rz[..., :H], GHn[t], out=gh[..., 2 * H :])
        n = A[t, ..., 2 * H :]
        n += gh[..., 2 * H :]
        round_atoms(tanh_into(n, n))
        h = Hs[t + 1]
        np.subtract(Hs[t], n, out=h)
        h *= rz[..., H:]
        h += n
        if mask is not None:
            np.copyto(h, Hs[t], where=~mask[t])
    if not refine and T and A[..., : 2 * H].real.min() < LOW_SIGMOID:
        return None  # a saturated gate: run again, refining it
    y = Hs[1:] if mask is None else np.where(mask, Hs[1:], 0)
    if not keep:  # a forward-only call (finite differences): no backward arrays
        return y, Hs[T], None, None
    return y, Hs[T], None, GRUCache(x, w, Hs, A, GHn, mask)


def _coefficients(A, h_prev, GHn, K, Khn, s):
    """Coefficients of steps with gates A (k,B,3H), written into K (k,B,3H) and Khn (k,B,H)
    with scratch s (k,B,H): d pre_in = dh ⊙ K, d pre_hh = dh ⊙ [K_r, K_z, Khn],
    dh_{t-1} = dh ⊙ z + d pre_hh · W_hh, where dn = (1 − z)(1 − n²) and

        K = [dn·(W_hn h + b_hn)·σ′(r), (h_{t-1} − n)·σ′(z), dn],  Khn = dn·r,  σ′ = a − a².
    """
    H = GHn.shape[-1]
    r, z, n = A[..., :H], A[..., H : 2 * H], A[..., 2 * H :]
    k_r, k_z, dn = K[..., :H], K[..., H : 2 * H], K[..., 2 * H :]
    np.multiply(n, n, out=s)
    np.subtract(1, s, out=s)
    np.subtract(1, z, out=dn)
    dn *= s
    np.multiply(r, r, out=s)
    np.subtract(r, s, out=s)
    np.multiply(dn, GHn, out=k_r)
    k_r *= s
    np.multiply(z, z, out=s)
    np.subtract(z, s, out=s)
    np.subtract(h_prev, n, out=k_z)
    k_z *= s
    np.multiply(dn, r, out=Khn)


def backward(cache, dy, dh, dc, crossing):
    """Adjoints of ``forward``: ``(dx, dh0, None, grads)``; see :func:`bpttcheck.reference.cells.elman.backward`.

    Runs back in blocks of steps, each block's coefficients computed (unless the cache holds
    them) just before its steps are swept.
    """
    x, w, Hs, A, GHn, mask = cache.x, cache.w, cache.states, cache.gates, cache.hidden_n, cache.mask
    T, B, _ = x.shape
    H = GHn.shape[-1]
    W_hh = w["weight_hh"]
    dtype = np.result_type(A, dy)
    dAi = np.empty((T, B, 3 * H), dtype=dtype)
    dAhn = np.empty((T, B, H), dtype=dtype)  # the n block of d pre_hh (its r, z blocks are dAi's)
    dah = np.empty((B, 3 * H), dtype=dtype)  # one step's d pre_hh
    dh = np.zeros((B, H), dtype=dtype) if dh is None else dh
    k = max(1, min(T, BLOCK_ELEMENTS // max(1, B * 3 * H)))
    own = cache.coeffs_in is None
    if own:
        K_b = np.empty((k, B, 3 * H), dtype=A.dtype)
        Khn_b = np.empty((k, B, H), dtype=A.dtype)
        scratch = np.empty((k, B, H), dtype=A.dtype)
    for t1 in range(T, 0, -k):
        t0 = max(0, t1 - k)
        n = t1 - t0
        if own:
            K, Khn = K_b[:n], Khn_b[:n]
            _coefficients(A[t0:t1], Hs[t0:t1], GHn[t0:t1], K, Khn, scratch[:n])
        else:
            K, Khn = cache.coeffs_in[t0:t1], cache.coeffs_hn[t0:t1]
        K3 = K.reshape(n, B, 3, H)
        Z = A[t0:t1, :, H : 2 * H]
        for t in range(t1 - 1, t0 - 1, -1):
            j = t - t0
            g = dy[t] + dh
            if mask is not None:
                keep = np.where(mask[t], 0, dh)
                g = g * mask[t]
            np.multiply(g[:, None, :], K3[j], out=dAi[t].reshape(B, 3, H))
            np.multiply(g, Khn[j], out=dAhn[t])
            dah[:, : 2 * H] = dAi[t, :, : 2 * H]
            dah[:, 2 * H :] = dAhn[t]
            dh = g * Z[j] + dah @ W_hh
            if mask is not None:
                dh += keep
            if crossing is not None:
                dh, _ = crossing(t, dh, None)
    dx, grads = input_and_weight_grads(x, w, Hs[:-1], dAi, (dAi[..., : 2 * H], dAhn))
    return dx, dh, None, grads


def magnitude_cache(cache):
    """The cache with every factor replaced by the sum of the absolute values of its terms
    (1 − z, 1 − n², r − r², z − z², h − n all cancel somewhere: each is taken as |a| + |b|);
    its coefficients are precomputed for every step."""
    x, w, Hs, A, GHn, mask = cache[:6]
    H = GHn.shape[-1]
    a = np.abs(A)
    r, z, n = a[..., :H], a[..., H : 2 * H], a[..., 2 * H :]
    ghn, hp = np.abs(GHn), np.abs(Hs[:-1])
    dn = (1 + z) * (1 + n * n)
    K = np.concatenate([dn * ghn * (r + r * r), (hp + n) * (z + z * z), dn], axis=-1)
    w = {k: None if v is None else np.abs(v) for k, v in w.items()}
    return GRUCache(np.abs(x), w, np.abs(Hs), a, ghn, mask, K, dn * r)


def step_jacobian(config, params, a_in, a_hh, cache):
    """torch's reset placement: ∂h_t/∂h_{t-1} = diag(z) + diag(1−z)·∂n/∂h + diag(h_{t-1} − n)·∂z/∂h;
    the direct path is diag(z)."""
    H = config.hidden_size
    Hs = cache.states
    r = sigmoid(a_in[..., :H] + a_hh[..., :H])
    z = sigmoid(a_in[..., H : 2 * H] + a_hh[..., H : 2 * H])
    hn = a_hh[..., 2 * H :]  # W_hn h + b_hn: b_hn sits inside the reset product
    n = np.tanh(a_in[..., 2 * H :] + r * hn)
    dn = (1 - z) * (1 - n * n)
    d_pre = np.concatenate(
        [diag(dn * hn * (r - r * r)), diag((Hs[:-1] - n) * (z - z * z)), diag(dn * r)], axis=-1
    )
    return d_pre, diag(z), Hs


SPEC = CellSpec(
    name="gru",
    gates=("r", "z", "n"),
    has_cell_state=False,
    nonlinearities=("tanh",),
    forward=forward,
    backward=backward,
    magnitude_cache=magnitude_cache,
    step_jacobian=step_jacobian,
    cache_type=GRUCache,
    symbolic="bpttcheck.symbolic.cells.gru_step",
    torch_module="GRU",
    torch_cell="GRUCell",
    title="GRU",
    rank=2,
)
