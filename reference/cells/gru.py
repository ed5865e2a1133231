"""GRU layer, one direction, time-major, PyTorch's equations and gate order (r, z, n).

    r = σ(W_ir x + b_ir + W_hr h + b_hr),  z = σ(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r⊙(W_hn h + b_hn)),   h_t = (1 − z)⊙n + z⊙h_{t-1}

b_hn sits inside the reset product (torch/cuDNN; the 2014 paper puts r on h instead).
Shapes: x (T,B,D), h (B,H), weight_ih (3H, D), weight_hh (3H, H).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..activations import sigmoid, tanh_into
from ..cellops import diag, input_and_weight_grads, input_projection
from ..cellspec import CellSpec

__all__ = ["GRUCache", "SPEC", "backward", "forward", "magnitude_cache", "step_jacobian"]


class GRUCache(NamedTuple):
    """What the backward needs: x (T,B,D), the layer weights, states (T+1,B,H) with
    states[0] = h0, update (T,B,H) = z_t, coeffs_in / coeffs_hh (T,B,3H) = ∂(h_t)/∂(input-side
    / hidden-side pre-activations) elementwise, mask; and what only the magnitudes read:
    reset (T,B,H) = r_t, candidate (T,B,H) = n_t, hidden_n (T,B,H) = W_hn h + b_hn
    (None in a magnitude cache)."""

    x: np.ndarray
    w: dict
    states: np.ndarray
    update: np.ndarray
    coeffs_in: np.ndarray
    coeffs_hh: np.ndarray
    mask: np.ndarray | None
    reset: np.ndarray | None
    candidate: np.ndarray | None
    hidden_n: np.ndarray | None


def forward(x, w, h0, c0, mask, nonlinearity=None, keep=True):
    """Returns ``(y (T,B,H), h_T, None, cache)``; ``keep=False`` skips the cache (None)."""
    T = x.shape[0]
    H = w["weight_hh"].shape[-2] // 3
    # σ(a) = ½ + ½·tanh(a/2) for r and z: the inner ½ is folded into their rows once per call
    # (exact, a power of two), so each step needs one tanh and one affine map.
    half = np.ones(3 * H, dtype=x.real.dtype)
    half[: 2 * H] = 0.5
    W_hh_T = w["weight_hh"].swapaxes(-1, -2) * half
    b_hh = None if w["bias_hh"] is None else (w["bias_hh"] * half)[..., None, :]
    Ai = input_projection(x, w, bias_hh_too=False)  # its r, z blocks become the gates in place
    Ai[..., : 2 * H] *= 0.5
    Hs = np.empty((T + 1,) + h0.shape, dtype=Ai.dtype)
    GH = np.empty(Ai.shape, dtype=Ai.dtype)  # W_hh h + b_hh; its n block is kept for the backward
    N = np.empty(Ai.shape[:-1] + (H,), dtype=Ai.dtype)
    Hs[0] = h0
    for t in range(T):
        gh = GH[t]
        np.matmul(Hs[t], W_hh_T, out=gh)
        if b_hh is not None:
            gh += b_hh
        rz = Ai[t, ..., : 2 * H]
        rz += gh[..., : 2 * H]
        tanh_into(rz, rz)
        rz *= 0.5
        rz += 0.5
        n = N[t]
        np.multiply(rz[..., :H], gh[..., 2 * H :], out=n)
        n += Ai[t, ..., 2 * H :]
        tanh_into(n, n)
        h = Hs[t + 1]
        np.subtract(Hs[t], n, out=h)
        h *= rz[..., H:]
        h += n
        if mask is not None:
            np.copyto(h, Hs[t], where=~mask[t])
    if not keep:  # a forward-only call (finite differences): no backward arrays
        return (Hs[1:] if mask is None else np.where(mask, Hs[1:], 0)), Hs[T], None, None
    r, z = Ai[..., :H], Ai[..., H : 2 * H]
    GHn = GH[..., 2 * H :]
    # d pre_in = dh ⊙ K,  d pre_hh = dh ⊙ Kh,  dh_{t-1} = dh ⊙ z + d pre_hh · W_hh
    dn = (1 - z) * (1 - N * N)
    K = np.concatenate([dn * GHn * (r - r * r), (Hs[:-1] - N) * (z - z * z), dn], axis=-1)
    Kh = np.concatenate([K[..., : 2 * H], dn * r], axis=-1)
    y = Hs[1:] if mask is None else np.where(mask, Hs[1:], 0)
    return y, Hs[T], None, GRUCache(x, w, Hs, z.copy(), K, Kh, mask, r, N, GHn)


def backward(cache, dy, dh, dc, crossing):
    """Adjoints of ``forward``: ``(dx, dh0, None, grads)``; see :func:`bpttcheck.reference.cells.elman.backward`."""
    x, w, Hs, Z, K, Kh, mask = cache.x, cache.w, cache.states, cache.update, cache.coeffs_in, cache.coeffs_hh, cache.mask
    T, B, _ = x.shape
    H = Z.shape[-1]
    W_hh = w["weight_hh"]
    dtype = np.result_type(K, dy)
    dAi = np.empty((T, B, 3, H), dtype=dtype)
    dAh = np.empty((T, B, 3, H), dtype=dtype)
    K3, Kh3 = K.reshape(T, B, 3, H), Kh.reshape(T, B, 3, H)
    dh = np.zeros((B, H), dtype=dtype) if dh is None else dh
    for t in range(T - 1, -1, -1):
        g = dy[t] + dh
        if mask is not None:
            keep = np.where(mask[t], 0, dh)
            g = g * mask[t]
        g3 = g[:, None, :]
        np.multiply(g3, K3[t], out=dAi[t])
        np.multiply(g3, Kh3[t], out=dAh[t])
        dh = g * Z[t] + dAh[t].reshape(B, 3 * H) @ W_hh
        if mask is not None:
            dh += keep
        if crossing is not None:
            dh, _ = crossing(t, dh, None)
    dx, grads = input_and_weight_grads(x, w, Hs[:-1], dAi.reshape(T, B, 3 * H), dAh.reshape(T, B, 3 * H))
    return dx, dh, None, grads


def magnitude_cache(cache):
    """The cache with every factor replaced by the sum of the absolute values of its terms
    (1 − z, 1 − n², r − r², z − z², h − n all cancel somewhere: each is taken as |a| + |b|)."""
    x, w, Hs, Z, K, Kh, mask, r, N, GHn = cache
    H = Z.shape[-1]
    z, r, n, ghn, hp = np.abs(Z), np.abs(r), np.abs(N), np.abs(GHn), np.abs(Hs[:-1])
    dn = (1 + z) * (1 + n * n)
    K = np.concatenate([dn * ghn * (r + r * r), (hp + n) * (z + z * z), dn], axis=-1)
    Kh = np.concatenate([K[..., : 2 * H], dn * r], axis=-1)
    w = {k: None if v is None else np.abs(v) for k, v in w.items()}
    return GRUCache(np.abs(x), w, np.abs(Hs), z, K, Kh, mask, None, None, None)


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
