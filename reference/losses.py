"""Heads and losses over a recurrent network's output, with their gradients by hand.

Three losses, each a sum of per-step terms so that truncation schemes can tell which loss
reaches which step:

- ``"cotangent"``: ``L = Σ_t ⟨G_t, y_t⟩`` — the target *is* the cotangent G; the form every
  gradient check uses, since any loss's gradient is a cotangent.
- ``"mse"``: ``e[t,b] = mean_k (z[t,b,k] − target[t,b,k])²``.
- ``"cross_entropy"``: softmax cross-entropy, ``e[t,b] = logsumexp(z[t,b]) − z[t,b,label]``.

``z = y W_hyᵀ + b_y`` when a linear readout (``weight_hy`` (K, F), ``bias_y`` (K,)) is given,
else ``z = y``. ``steps="all"`` (many-to-many) counts every valid step, ``"last"``
(many-to-one) only each sequence's last valid step. The value is ``Σ w·e / B`` with
``reduction="sum"`` (summed over time, averaged over the batch) or ``Σ w·e / Σ w`` with
``"mean"``. Everything stays holomorphic, so the complex step applies. Arrays time-major.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .validation import InvalidArgument, check_array, check_choice, check_lengths, describe

__all__ = ["LossSpec", "LossResult", "loss_and_grad", "step_weights"]


@dataclass(frozen=True)
class LossSpec:
    kind: str = "cotangent"
    steps: str = "all"
    reduction: str = "sum"

    def __post_init__(self):
        check_choice("kind", self.kind, ("cotangent", "mse", "cross_entropy"))
        check_choice("steps", self.steps, ("all", "last"))
        check_choice("reduction", self.reduction, ("sum", "mean"))


@dataclass(frozen=True)
class LossResult:
    value: float | np.ndarray
    d_output: np.ndarray  # ∂L/∂y, (T, B, F)
    grads: dict  # readout gradients: weight_hy, bias_y (empty without a readout)
    per_step: np.ndarray  # w·e / norm for each (t, b): the terms the loss adds


def step_weights(steps: str, T: int, B: int, lengths=None) -> np.ndarray:
    """(T, B) 0/1 weights: which steps' losses count (padding never does)."""
    lengths = np.full(B, T) if lengths is None else np.asarray(lengths)
    t = np.arange(T)[:, None]
    if steps == "last":
        return (t == lengths[None, :] - 1).astype(np.float64)
    return (t < lengths[None, :]).astype(np.float64)


def loss_and_grad(spec: LossSpec, output, target, *, readout=None, lengths=None) -> LossResult:
    """Value of the loss and its gradients with respect to the output and the readout.

    output: (T, B, F); target: (T, B, F) cotangent, (T, B, K) regression target, or (T, B)
    integer labels for cross-entropy; readout: ``{"weight_hy": (K, F), "bias_y": (K,)}``.
    """
    if not isinstance(spec, LossSpec):
        raise InvalidArgument(f"spec={describe(spec)}: expected a LossSpec")
    y = check_array("output", output, (None, None, None), dims=("T", "B", "F"))
    T, B, F = y.shape
    if lengths is not None:
        lengths = check_lengths(lengths, T, B)  # the one lengths rule, shared with forward
    if spec.kind == "cotangent":
        if readout is not None:
            raise InvalidArgument(f"readout={describe(readout)}: expected None with kind='cotangent'")
        G = check_array("target", target, (T, B, F), dims=("T", "B", "F"))
        w = step_weights(spec.steps, T, B, lengths)
        norm = 1.0 if spec.reduction == "sum" else w.sum()
        d = G * (w / norm)[..., None]
        per = (d * y).sum(axis=-1)
        return LossResult(per.sum(), d, {}, per)
    if readout is None:
        W, b = None, None
        z = y
    else:
        W = check_array("readout['weight_hy']", readout.get("weight_hy"), (None, F), dims=("K", "F"))
        b = readout.get("bias_y")
        if b is not None:
            b = check_array("readout['bias_y']", b, (W.shape[0],), dims=("K",))
        z = y @ W.T + (0 if b is None else b)
    K = z.shape[-1]
    w = step_weights(spec.steps, T, B, lengths)
    norm = B if spec.reduction == "sum" else w.sum()
    scale = (w / norm)[..., None]
    if spec.kind == "mse":
        target = check_array("target", target, (T, B, K), dims=("T", "B", "K"))
        r = z - target
        e = (r * r).mean(axis=-1)
        dz = (2.0 / K) * r * scale
    else:
        labels = np.asarray(target)
        if labels.shape != (T, B) or labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= K:
            raise InvalidArgument(
                f"target={describe(target)}: expected integer class labels of shape (T={T}, B={B}) in [0, {K})"
            )
        m = z.real.max(axis=-1, keepdims=True)
        ez = np.exp(z - m)
        se = ez.sum(axis=-1, keepdims=True)
        picked = np.take_along_axis(z, labels[..., None], axis=-1)[..., 0]
        e = (np.log(se) + m)[..., 0] - picked
        dz = ez / se
        np.put_along_axis(dz, labels[..., None], np.take_along_axis(dz, labels[..., None], -1) - 1, axis=-1)
        dz = dz * scale
    per = e * (w / norm)
    grads = {}
    if W is not None:
        grads["weight_hy"] = dz.reshape(-1, K).T @ y.reshape(-1, F)
        if b is not None:
            grads["bias_y"] = dz.sum(axis=(0, 1))
        d_output = dz @ W
    else:
        d_output = dz
    return LossResult(per.sum(), d_output, grads, per)
