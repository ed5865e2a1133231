"""Pieces shared by the cells' layer functions (:mod:`bpttcheck.reference.cells`)."""

from __future__ import annotations

import numpy as np

__all__ = ["diag", "input_and_weight_grads", "input_projection"]


def input_and_weight_grads(x, w, h_prev, dA_in, dA_hh):
    """``dx`` and the weight/bias gradients as single matrix products over all (t, b).

    x (T,B,D), h_prev (T,B,P) = states entering each step, dA_in/dA_hh (T,B,G) = adjoints of
    the input-side and hidden-side pre-activations (equal except for the GRU's n block);
    dA_hh may be a tuple of (T,B,G_k) blocks that stack to it along the last axis.
    """
    T, B, D = x.shape
    G = dA_in.shape[-1]
    flat_in = dA_in.reshape(T * B, G)
    h_flat = h_prev.reshape(T * B, h_prev.shape[-1])
    blocks = dA_hh if isinstance(dA_hh, tuple) else (dA_hh,)
    flat_hh = [flat_in if b is dA_in else b.reshape(T * B, b.shape[-1]) for b in blocks]
    grads = {
        "weight_ih": flat_in.T @ x.reshape(T * B, D),
        "weight_hh": _stack([b.T @ h_flat for b in flat_hh]),
    }
    if w["bias_ih"] is not None:
        grads["bias_ih"] = flat_in.sum(axis=0)
        grads["bias_hh"] = _stack([b.sum(axis=0) for b in flat_hh])
    return dA_in @ w["weight_ih"], grads


def _stack(parts):
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)


def input_projection(x, w, bias_hh_too: bool):
    """W_ih x_t (+ b_ih, + b_hh where it can be folded in) for all t in one product.

    x (T, *S, B, D) with weights (*S, G, D): S is an optional stack of parameter sets (the
    finite-difference perturbations), broadcast by matmul.
    """
    A = x @ w["weight_ih"].swapaxes(-1, -2)
    if w["bias_ih"] is not None:
        b = w["bias_ih"] + w["bias_hh"] if bias_hh_too else w["bias_ih"]
        A += b[..., None, :]
    return A


def diag(v: np.ndarray) -> np.ndarray:
    """(…, n) → (…, n, n) diagonal matrices (for the step Jacobians)."""
    out = np.zeros(v.shape + v.shape[-1:], dtype=v.dtype)
    idx = np.arange(v.shape[-1])
    out[..., idx, idx] = v
    return out
