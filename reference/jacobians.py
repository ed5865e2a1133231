"""Jacobians of one recurrent layer's state map in closed form, and the σ_max bound (SPEC §6).

The state S[t] is h_t (size P) for the Elman RNN and the GRU, and ``[h_t; c_t]`` (P + H) for
the LSTM; S[-1] is the initial state. Every cell's step Jacobian has the same shape:

    J_t = ∂S[t]/∂S[t-1] = D_t · W_hh (on the h part of S[t-1]) + E_t

with ``D_t = ∂S[t]/∂a_t`` the derivative with respect to the hidden-side pre-activation
``a_t = W_hh h_{t-1} + b_hh`` (N × G) and E_t the direct paths that bypass W_hh:

- Elman: ``D_t = diag(φ′(a_t))``, E_t = 0, so ``‖J_t‖₂ ≤ γ·σ_max(W_hh)`` and
  ``‖∂h_t/∂h_s‖₂ ≤ (γ·σ_max)^(t-s)`` (Pascanu, Mikolov & Bengio 2013).
- LSTM: ``∂c_t/∂c_{t-1} = diag(f_t)`` (the constant error carousel) and
  ``∂h_t/∂c_{t-1} = W_hr·diag(o(1 − tanh²c_t)·f_t)``; the gates add D_t·W_hh.
- GRU (torch's reset placement): ``diag(z) + diag(1−z)·∂n/∂h + diag(h_{t-1} − n)·∂z/∂h``.

Each cell's D_t and E_t come from its ``CellSpec.step_jacobian`` (in its module of
:mod:`bpttcheck.reference.cells`); this module composes them.

``D_t`` is kept because it also maps a state adjoint to the pre-activation adjoint whose outer
product with h_{t-1} is that step's share of ∂L/∂W_hh (used by the per-lag profile). Singular
values and norms are diagnostics, outside the holomorphic value paths of the reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .activations import GAMMA
from .cells import cell_spec, cell_state_note
from .config import RecurrentConfig
from .network import forward
from .validation import InvalidArgument, check_array, check_instance, check_int, describe, fail

__all__ = [
    "StepJacobians",
    "chain_jacobians",
    "elman_bound",
    "recurrent_sigma_max",
    "singular_values",
    "spectral_norm",
    "step_jacobians",
    "step_norm_bound",
]


@dataclass(frozen=True)
class StepJacobians:
    """Closed-form step Jacobians of one layer along a trajectory.

    jacobian (T, B, N, N): ∂S[t]/∂S[t-1]; d_pre (T, B, N, G): ∂S[t]/∂a_t; h_prev (T, B, P):
    the h entering each step; states (T+1, B, N): S[-1] … S[T-1]. N = P (+ H for a cell
    with a cell state, the LSTM).
    """

    config: RecurrentConfig
    jacobian: np.ndarray = field(repr=False)
    d_pre: np.ndarray = field(repr=False)
    h_prev: np.ndarray = field(repr=False)
    states: np.ndarray = field(repr=False)

    @property
    def h_size(self) -> int:
        """P: the leading block of the state is h, the rest (LSTM) is c."""
        return self.config.output_size

    def hidden_block(self, m: np.ndarray) -> np.ndarray:
        """The ∂h/∂h block (…, P, P) of state-sized matrices ``m`` (…, N, N)."""
        P = self.h_size
        return m[..., :P, :P]

    def cell_block(self, m: np.ndarray) -> np.ndarray:
        """The ∂c/∂c block (…, H, H) of state-sized matrices (cells with a cell state only)."""
        if not cell_spec(self.config.cell).has_cell_state:
            raise InvalidArgument(f"cell={self.config.cell!r} (type=str): expected a cell with a cell state; {cell_state_note()}")
        P = self.h_size
        return m[..., P:, P:]


def _check_single_layer(config) -> None:
    if not isinstance(config, RecurrentConfig):
        raise InvalidArgument(f"config={describe(config)}: expected a RecurrentConfig")
    if config.num_layers != 1 or config.bidirectional:
        raise InvalidArgument(
            f"config=RecurrentConfig({config.describe()}, L={config.num_layers}, "
            f"bidirectional={config.bidirectional}): expected a single unidirectional layer "
            "(num_layers=1, bidirectional=False); pass each layer (or direction) on its own"
        )


def step_jacobians(config: RecurrentConfig, params: dict, x, h0=None, c0=None) -> StepJacobians:
    """Closed-form ∂S[t]/∂S[t-1] for every step of a single-layer network's trajectory.

    x (T, B, D); h0 (1, B, P) and c0 (1, B, H) as for :func:`bpttcheck.reference.forward`.
    The trajectory (h, and c) comes from the reference forward's cache; the gates are
    recomputed from it by the cell's ``step_jacobian``.
    """
    _check_single_layer(config)
    result = forward(config, params, x, h0, c0)
    cache = result.layer_cache(0)
    x, h_prev = cache.x, cache.states[:-1]
    W_ih, W_hh = params["weight_ih_l0"], params["weight_hh_l0"]
    a_in = x @ W_ih.T
    a_hh = h_prev @ W_hh.T
    if config.bias:
        a_in = a_in + params["bias_ih_l0"]
        a_hh = a_hh + params["bias_hh_l0"]
    d_pre, direct, states = cell_spec(config.cell).step_jacobian(config, params, a_in, a_hh, cache)
    jac = d_pre @ _extend(W_hh, d_pre.shape[-2])
    if direct is not None:
        jac = jac + direct
    return StepJacobians(config, jac, d_pre, h_prev, states)


def _extend(W_hh: np.ndarray, N: int) -> np.ndarray:
    """W_hh (G, P) as a map from the whole state (G, N): columns for c are zero."""
    G, P = W_hh.shape
    if N == P:
        return W_hh
    out = np.zeros((G, N), dtype=W_hh.dtype)
    out[:, :P] = W_hh
    return out


def _check_step(step) -> StepJacobians:
    return check_instance("step", step, StepJacobians, "the StepJacobians of step_jacobians()")


def chain_jacobians(step: StepJacobians, end: int | None = None) -> np.ndarray:
    """∂S[end]/∂S[end-k] for k = 0 … end+1, shape (end+2, B, N, N); k = end+1 is the initial state.

    Accumulated from the end backwards: ∂S[e]/∂S[e-k] = ∂S[e]/∂S[e-k+1] · J[e-k+1].
    """
    _check_step(step)
    T = step.jacobian.shape[0]
    end = T - 1 if end is None else check_int("end", end, minimum=0, maximum=T - 1)
    J = step.jacobian
    out = np.empty((end + 2,) + J.shape[1:], dtype=J.dtype)
    out[0] = np.eye(J.shape[-1], dtype=J.dtype)
    for k in range(1, end + 2):
        np.matmul(out[k - 1], J[end - k + 1], out=out[k])
    return out


def singular_values(m: np.ndarray) -> np.ndarray:
    """Singular values of a stack of matrices (…, n, n) → (…, n), largest first."""
    m = check_array("m", m, None)
    if m.ndim < 2:
        fail("m", m, "a stack of matrices (…, n, m) with at least 2 dimensions")
    return np.linalg.svd(m, compute_uv=False)


def spectral_norm(m: np.ndarray) -> np.ndarray:
    """‖M‖₂ = σ_max(M) of a stack of matrices (…, n, m) → (…)."""
    return singular_values(m)[..., 0]


def recurrent_sigma_max(params: dict, name: str = "weight_hh_l0") -> float:
    """σ_max of a recurrent weight matrix (the whole stacked (G, P) matrix for gated cells)."""
    if not isinstance(params, dict):
        fail("params", params, "a dict of parameter name -> array")
    if not isinstance(name, str) or name not in params:
        fail("name", name, f"a key of params ({sorted(map(str, params))})")
    W = check_array(f"params[{name!r}]", params[name], (None, None), dims=("G", "P"))
    return float(spectral_norm(W.real))


def elman_bound(config: RecurrentConfig, params: dict, lags) -> np.ndarray:
    """``(γ·σ_max(W_hh))^k`` for each lag k: bounds ‖∂h_t/∂h_{t-k}‖₂ of an Elman layer.

    γ bounds |φ′| (:data:`bpttcheck.reference.activations.GAMMA`). Gated cells have direct
    paths (diag(f), diag(z)) that no power of σ_max(W_hh) bounds: use :func:`step_norm_bound`.
    """
    _check_single_layer(config)
    if config.cell != "rnn":
        raise InvalidArgument(
            f"cell={config.cell!r} (type=str): expected 'rnn'; the σ_max bound holds for the "
            "Elman RNN only, use step_norm_bound for gated cells"
        )
    try:
        lags = np.asarray(lags)
    except (TypeError, ValueError):  # ragged
        fail("lags", lags, "integers >= 0")
    if lags.dtype.kind not in "iu" or (lags.size and lags.min() < 0):
        raise InvalidArgument(f"lags={describe(lags)}: expected integers >= 0")
    rho = GAMMA[config.nonlinearity] * recurrent_sigma_max(params)
    return rho ** lags.astype(np.float64)


def step_norm_bound(step: StepJacobians, end: int | None = None) -> np.ndarray:
    """Π ‖J_j‖₂ over the steps of each lag, (end+2, B): bounds ‖∂S[end]/∂S[end-k]‖₂ for any cell.

    Submultiplicativity ‖AB‖ ≤ ‖A‖‖B‖ makes it a bound along the trajectory it was built on.
    """
    _check_step(step)
    T = step.jacobian.shape[0]
    end = T - 1 if end is None else check_int("end", end, minimum=0, maximum=T - 1)
    norms = spectral_norm(step.jacobian[: end + 1][::-1])  # J[end], J[end-1], …, J[0]
    ones = np.ones((1,) + norms.shape[1:], dtype=norms.dtype)
    return np.concatenate([ones, np.cumprod(norms, axis=0)], axis=0)
