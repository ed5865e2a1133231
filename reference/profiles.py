"""Where a BPTT gradient comes from: per-step and per-lag profiles, and gradient statistics.

Per-lag profile (SPEC §1): with C[t,s] the contribution of the loss at t through the use of θ at
step s, the lag-k share of ∂L/∂W_hh is ``Σ_t C[t, t−k]``. It is computed with lag-indexed
adjoints ``A_k(s) = ∂ℓ_{s+k}/∂S[s]`` (A_0(s) = the output cotangent at s,
A_k(s−1) = J_sᵀ A_{k−1}(s)); the lag-k share is ``Σ_s (D_sᵀ A_k(s)) ⊗ h_{s−1}``. Summed over k
it is the full BPTT gradient, and Σ_k A_k(s) is the total ∂L/∂S[s] — both are checked against
the backward engine in the properties.

Gradient statistics follow the histograms of seed 002: per parameter the norm, percentiles,
the fraction of entries exactly zero (dead units), and their spread over training steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import RecurrentConfig
from .jacobians import StepJacobians, step_jacobians
from .losses import LossSpec, loss_and_grad
from .network import backward, check_params, forward
from .validation import InvalidArgument, check_array, check_instance, check_int, check_positive_float, describe, fail

__all__ = [
    "GradientProfile",
    "GradientStats",
    "TrainingHistory",
    "gradient_profile",
    "gradient_statistics",
    "history_statistics",
    "profile_from_steps",
    "train_sgd",
]

PERCENTILES = (1, 5, 25, 50, 75, 95, 99)


@dataclass(frozen=True)
class GradientProfile:
    """hidden_grad (T, B, N): total ∂L/∂S[t]; h0_grad (B, N): ∂L/∂S[-1];
    lag_weight_hh (T, G, P): the lag-k share of ∂L/∂W_hh for k = 0 … T−1 (summed over batch)."""

    hidden_grad: np.ndarray = field(repr=False)
    h0_grad: np.ndarray = field(repr=False)
    lag_weight_hh: np.ndarray = field(repr=False)

    @property
    def hidden_grad_norms(self) -> np.ndarray:
        """‖∂L/∂S[t]‖₂ per step, over the whole batch: (T,)."""
        g = self.hidden_grad
        return np.sqrt((g * g).sum(axis=(1, 2)).real)

    @property
    def lag_norms(self) -> np.ndarray:
        """Frobenius norm of each lag's share of ∂L/∂W_hh: (T,)."""
        c = self.lag_weight_hh
        return np.sqrt((c * c).sum(axis=(1, 2)).real)


def gradient_profile(config: RecurrentConfig, params: dict, x, d_output, h0=None, c0=None) -> GradientProfile:
    """Per-step and per-lag profile of ``L = Σ_t ⟨d_output[t], y_t⟩`` for a single layer.

    x (T, B, D); d_output (T, B, P) — e.g. ``loss_and_grad(...).d_output``; h0 (1, B, P), c0.
    """
    step = step_jacobians(config, params, x, h0, c0)
    T, B = step.h_prev.shape[:2]
    dy = check_array("d_output", d_output, (T, B, config.output_size), dims=("T", "B", "P"))
    return profile_from_steps(step, dy)


def profile_from_steps(step: StepJacobians, d_output: np.ndarray) -> GradientProfile:
    """:func:`gradient_profile` from step Jacobians already computed.

    One sweep from the last step back, carrying every lag at once: at state s the rows
    k = 0 … T−1−s of ``M`` (B, K, N) are A_k(s), and one product with J_s moves them all to
    s−1 (as lags k+1). O(T²·B·N·(N+G)) work in T matrix products; memory T²·B·G for the
    lag shares of the pre-activation adjoints.
    """
    J, D, h_prev = step.jacobian, step.d_pre, step.h_prev
    T, B, N = J.shape[0], J.shape[1], J.shape[-1]
    P, G = h_prev.shape[-1], D.shape[-1]
    dtype = np.result_type(J, d_output)
    M = np.zeros((B, T + 1, N), dtype=dtype)  # one extra row: lag T reaches the initial state
    dpre = np.zeros((T, T, B, G), dtype=dtype)  # [k, s]: pre-activation adjoint of lag k at s
    total = np.zeros((T, B, N), dtype=dtype)
    for s in range(T - 1, -1, -1):
        K = T - s  # lags 0 … T−1−s reach state s
        M[:, 0, :P] = d_output[s]
        total[s] = M[:, :K].sum(axis=1)
        # einsum, not matmul: these products are small and many, and a threaded BLAS spends
        # more time synchronising its threads on them than computing (10× slower under load)
        dpre[:K, s] = np.einsum("bkn,bng->kbg", M[:, :K], D[s])
        back = np.einsum("bkn,bnm->bkm", M[:, :K], J[s])  # J_sᵀ A_k(s) = A_{k+1}(s−1)
        M[:, 1 : K + 1] = back
        M[:, 0] = 0
    h0_grad = M.sum(axis=1)
    # one large product (T·G, T·B) @ (T·B, P) instead of T small ones
    lag = (dpre.transpose(0, 3, 1, 2).reshape(T * G, T * B) @ h_prev.reshape(T * B, P)).reshape(T, G, P)
    return GradientProfile(total, h0_grad, lag)


# ---------------------------------------------------------------- gradient statistics


@dataclass(frozen=True)
class GradientStats:
    """Summary of one parameter's gradient: as read off a histogram (seed 002)."""

    name: str
    size: int
    norm: float
    mean: float
    std: float
    max_abs: float
    fraction_zero: float  # entries exactly 0: dead units (a spike at zero)
    percentiles: dict  # {q: value} for q in PERCENTILES


def gradient_statistics(grads: dict, percentiles=PERCENTILES) -> dict[str, GradientStats]:
    """Per-array statistics of a gradient dict (e.g. :func:`bpttcheck.reference.backward`'s)."""
    if not isinstance(grads, dict):
        raise InvalidArgument(f"grads={describe(grads)}: expected a dict of name -> gradient array")
    percentiles = _check_percentiles(percentiles)
    out = {}
    for name, g in grads.items():
        g = check_array(f"grads[{name!r}]", g, None, finite=False).real.ravel()
        if g.size == 0:
            continue
        qs = np.percentile(g, percentiles)
        out[name] = GradientStats(
            name=name,
            size=int(g.size),
            norm=float(np.sqrt(np.dot(g, g))),
            mean=float(g.mean()),
            std=float(g.std()),
            max_abs=float(np.abs(g).max()),
            fraction_zero=float(np.count_nonzero(g == 0) / g.size),
            percentiles={q: float(v) for q, v in zip(percentiles, qs)},
        )
    return out


def _check_percentiles(percentiles) -> tuple:
    try:
        one_dim = not isinstance(percentiles, (str, bytes, dict)) and np.ndim(percentiles) == 1
    except (TypeError, ValueError):  # a ragged nested list
        one_dim = False
    if not one_dim:
        fail("percentiles", percentiles, "a sequence of percentiles in [0, 100], e.g. (5, 50, 95)")
    for q in percentiles:
        if isinstance(q, (bool, np.bool_)) or not isinstance(q, (int, float, np.integer, np.floating)) or not 0 <= q <= 100:
            fail("percentiles", percentiles, f"percentiles in [0, 100] (found {q!r})")
    return tuple(percentiles)


@dataclass(frozen=True)
class TrainingHistory:
    """losses (steps,); grads: one dict per SGD step (parameters and readout), taken before
    that step's update; params: the parameters after the last step."""

    losses: np.ndarray
    grads: list = field(repr=False)
    params: dict = field(repr=False)
    readout: dict | None = field(repr=False, default=None)


def train_sgd(
    config: RecurrentConfig,
    params: dict,
    x,
    target,
    *,
    loss: LossSpec = LossSpec("mse"),
    readout: dict | None = None,
    lr: float = 0.1,
    steps: int = 20,
    h0=None,
    c0=None,
) -> TrainingHistory:
    """Plain SGD with the reference's forward and hand-written BPTT; records every gradient."""
    check_instance("config", config, RecurrentConfig, "a RecurrentConfig")
    check_instance("loss", loss, LossSpec, "a LossSpec")
    lr = check_positive_float("lr", lr)
    steps = check_int("steps", steps, minimum=1)
    params = {k: np.array(v, copy=True) for k, v in check_params(config, params).items()}
    if readout is not None and not isinstance(readout, dict):
        fail("readout", readout, "None or a dict with 'weight_hy' (K, P) and optionally 'bias_y' (K,)")
    readout = None if readout is None else {k: np.array(check_array(f"readout[{k!r}]", v, None), copy=True)
                                            for k, v in readout.items()}
    losses, history = [], []
    for _ in range(steps):
        result = forward(config, params, x, h0, c0)
        lr_ = loss_and_grad(loss, result.output, target, readout=readout)
        g = backward(params, result, d_output=lr_.d_output)
        grads = {name: g[name] for name in params}
        grads.update(lr_.grads)
        losses.append(float(np.real(lr_.value)))
        history.append(grads)
        for name in params:
            params[name] -= lr * grads[name]
        if readout is not None:
            for name in readout:
                readout[name] -= lr * grads[name]
    return TrainingHistory(np.array(losses), history, params, readout)


def history_statistics(history: TrainingHistory, percentiles=PERCENTILES) -> dict[str, dict]:
    """Per parameter, arrays over training steps: ``norm`` (steps,), ``percentiles``
    (steps, len(q)), ``fraction_zero`` (steps,), and ``spread``: max/min of the norm over steps
    (≫ 1 flags an exploding step, a norm collapsing to 0 a vanishing one)."""
    if not isinstance(history, TrainingHistory):
        raise InvalidArgument(f"history={describe(history)}: expected a TrainingHistory (from train_sgd)")
    percentiles = _check_percentiles(percentiles)
    per_step = [gradient_statistics(g, percentiles) for g in history.grads]
    out = {}
    for name in per_step[0]:
        norms = np.array([s[name].norm for s in per_step])
        lo = norms.min()
        out[name] = {
            "norm": norms,
            "percentiles": np.array([[s[name].percentiles[q] for q in percentiles] for s in per_step]),
            "fraction_zero": np.array([s[name].fraction_zero for s in per_step]),
            "spread": float(norms.max() / lo) if lo > 0 else float("inf"),
        }
    return out
