"""Properties of vanishing/exploding gradients (SPEC §6) and of the gradient profiles.

Each ``check_*`` takes the implementation under test as keyword arguments (defaulting to the
reference) so that planted bugs can be passed in; it returns None or raises :class:`Mismatch`
(an equality fails) or :class:`BoundViolation` (an inequality fails), naming the quantity.

Oracles: Jacobians against the complex step of the reference forward from a perturbed state
(exact to rounding); bounds against their own statement with a rounding slack from the
tolerance policy; the lag profile against the backward engine (its sum is full BPTT, lag 0 is
the engine with every link cut, its per-step adjoints are what the engine carries).
"""

from __future__ import annotations

import numpy as np

from bpttcheck.reference.validation import InvalidArgument, check_array, describe
from bpttcheck.reference.activations import GAMMA
from bpttcheck.reference.cells import cell_spec
from bpttcheck.reference.config import RecurrentConfig
from bpttcheck.reference.jacobians import (
    chain_jacobians,
    elman_bound,
    recurrent_sigma_max,
    singular_values,
    spectral_norm,
    step_jacobians,
    step_norm_bound,
)
from bpttcheck.reference.network import backward, forward
from bpttcheck.reference.profiles import gradient_profile, gradient_statistics

from .compare import Mismatch, assert_close
from .tolerance import implementation_tolerance, precision_of

__all__ = [
    "BoundViolation",
    "check_geometric_decay",
    "check_gradient_statistics",
    "check_jacobian_bounds",
    "check_lag_profile",
    "check_lstm_carousel",
    "check_orthogonal_isometry",
    "check_step_jacobians",
    "complex_step_state_jacobian",
]

_EPS = 1e-30  # complex step: exact to rounding for any tiny step (SPEC §7)


class BoundViolation(AssertionError):
    """A quantity exceeds the bound a theorem gives for it."""


def _tol(dtype, T, amplification, scale):
    return implementation_tolerance(precision_of(dtype), T=max(1, int(T)), amplification=float(amplification), scale=float(scale))


def _ctx(config: RecurrentConfig, T: int, B: int, extra: str = "") -> str:
    return f"{config.describe()}, T={T}, B={B}" + (f", {extra}" if extra else "")


def _state(config, h, c):
    return h if c is None else np.concatenate([h, c], axis=-1)


def complex_step_state_jacobian(config: RecurrentConfig, params: dict, x, h0=None, c0=None, start: int = -1) -> np.ndarray:
    """∂S[T-1]/∂S[start] (B, N, N) by the complex step of the reference forward.

    The trajectory up to ``start`` is run first; then every state direction is perturbed by
    i·1e-30 in its own copy of the batch, and the rest of the sequence is run once.
    """
    x = np.asarray(x)
    T, B = x.shape[:2]
    P, H = config.output_size, config.hidden_size
    if start >= 0:
        r = forward(config, params, x[: start + 1], h0, c0)
        h0, c0 = r.h_n, r.c_n
    h = np.zeros((1, B, P)) if h0 is None else np.asarray(h0)
    c = None if not cell_spec(config.cell).has_cell_state else (np.zeros((1, B, H)) if c0 is None else np.asarray(c0))
    s0 = _state(config, h[0], None if c is None else c[0])  # (B, N)
    N = s0.shape[-1]
    pert = np.repeat(s0[None].astype(complex), N, axis=0)  # (N, B, N): copy j perturbs entry j
    pert[np.arange(N), :, np.arange(N)] += 1j * _EPS
    pert = pert.reshape(N * B, N)
    cparams = {k: v.astype(complex) for k, v in params.items()}
    xs = np.tile(x[start + 1 :].astype(complex), (1, N, 1))
    r = forward(config, cparams, xs, pert[None, :, :P], None if c is None else pert[None, :, P:])
    end = _state(config, r.h_n[0], None if r.c_n is None else r.c_n[0]).reshape(N, B, N)
    return (end.imag / _EPS).transpose(1, 2, 0)  # (B, N_out, N_in)


def check_step_jacobians(
    config, params, x, h0=None, c0=None, *, jacobians=step_jacobians, chain=chain_jacobians, reproducer=None
) -> None:
    """∂S[T-1]/∂S[s] from the closed-form step Jacobians equals the complex step of the
    reference forward, for every s = −1 … T−2 (s = −1: the initial state)."""
    x = np.asarray(x)
    T, B = x.shape[:2]
    got = chain(jacobians(config, params, x, h0, c0))
    for s in range(-1, T - 1):
        expected = complex_step_state_jacobian(config, params, x, h0, c0, start=s)
        amp = float(np.abs(expected).max())
        assert_close(
            f"∂S[{T - 1}]/∂S[{s}]", got[T - 1 - s], expected, _tol(x.dtype, T, amp, max(amp, 1.0)),
            context=_ctx(config, T, B, "S = [h; c]" if cell_spec(config.cell).has_cell_state else "S = h"), reproducer=reproducer,
        )


def _all_chains(config, params, x, h0, c0, jacobians, chain):
    step = jacobians(config, params, x, h0, c0)
    T = np.asarray(x).shape[0]
    return step, [chain(step, end) for end in range(T)]


def _violation(quantity, got, bound, slack, where, context, reproducer):
    lines = [
        f"BoundViolation: {quantity} exceeds its bound ({context})",
        f"  at {where}: got {got:.17g}, bound {bound:.17g} (+ rounding slack {slack:.1e})",
    ]
    if reproducer:
        lines += ["  reproduce:"] + ["    " + ln for ln in reproducer.rstrip().splitlines()]
    raise BoundViolation("\n".join(lines))


def check_jacobian_bounds(
    config, params, x, h0=None, c0=None, *, jacobians=step_jacobians, chain=chain_jacobians,
    bound=elman_bound, reproducer=None,
) -> None:
    """For every pair s < t: ‖∂S[t]/∂S[s]‖₂ ≤ Π_{j=s+1..t} ‖J_j‖₂ (any cell), and for the
    Elman RNN ‖∂h_t/∂h_s‖₂ ≤ (γ·σ_max(W_hh))^(t−s) (SPEC §6, Pascanu et al. 2013)."""
    x = np.asarray(x)
    T, B = x.shape[:2]
    step, chains = _all_chains(config, params, x, h0, c0, jacobians, chain)
    ctx = _ctx(config, T, B, f"σ_max(W_hh)={recurrent_sigma_max(params):.4g}")
    for end, ch in enumerate(chains):
        norms = spectral_norm(ch)  # (end+2, B)
        lags = np.arange(end + 2)
        limits = [("Π‖J_j‖₂", step_norm_bound(step, end))]
        if config.cell == "rnn":
            limits.append((f"(γσ_max)^k, γ={GAMMA[config.nonlinearity]:g}", bound(config, params, lags)[:, None]))
        for name, lim in limits:
            lim = np.broadcast_to(lim, norms.shape)
            slack = _tol(x.dtype, end + 2, 1.0, 1.0).rtol * (lim + 1e-300)
            bad = norms > lim + slack
            if bad.any():
                k, b = (int(i) for i in np.argwhere(bad)[0])
                _violation(f"‖∂h_t/∂h_s‖₂ vs {name}", float(norms[k, b]), float(lim[k, b]), float(slack[k, b]),
                           f"t={end}, s={end - k} (lag k={k}), batch {b}", ctx, reproducer)


def check_geometric_decay(config, params, x, h0=None, *, jacobians=step_jacobians, chain=chain_jacobians, reproducer=None) -> None:
    """Contractive Elman weights (ρ = γ·σ_max < 1): each extra lag shrinks the Jacobian norm by
    at least ρ, ``‖∂h_t/∂h_{s-1}‖₂ ≤ ρ·‖∂h_t/∂h_s‖₂`` — so it falls at least geometrically."""
    if config.cell != "rnn":
        raise InvalidArgument(f"config.cell={config.cell!r} (type=str): expected 'rnn' (the decay rate is γ·σ_max(W_hh))")
    rho = GAMMA[config.nonlinearity] * recurrent_sigma_max(params)
    if not rho < 1:
        raise InvalidArgument(f"γ·σ_max(W_hh)={rho:.6g}: expected contractive weights (< 1); rescale weight_hh_l0")
    x = np.asarray(x)
    T, B = x.shape[:2]
    _, chains = _all_chains(config, params, x, h0, None, jacobians, chain)
    ctx = _ctx(config, T, B, f"ρ=γσ_max={rho:.4g}")
    for end, ch in enumerate(chains):
        norms = spectral_norm(ch)
        ratio_ok = norms[1:] <= rho * norms[:-1] * (1 + _tol(x.dtype, end + 2, 1.0, 1.0).rtol) + 1e-300
        if not ratio_ok.all():
            k, b = (int(i) for i in np.argwhere(~ratio_ok)[0])
            _violation("‖∂h_t/∂h_{s-1}‖₂ / ‖∂h_t/∂h_s‖₂ vs ρ", float(norms[k + 1, b] / norms[k, b]), rho, 0.0,
                       f"t={end}, lag {k} → {k + 1}, batch {b}", ctx, reproducer)


def check_orthogonal_isometry(config, params, x, h0=None, *, jacobians=step_jacobians, chain=chain_jacobians, reproducer=None) -> None:
    """Linear RNN (identity activation) with orthogonal W_hh: ∂h_t/∂h_s = W^(t−s) keeps every
    singular value exactly 1, to rounding growing like √lag."""
    W = np.asarray(params.get("weight_hh_l0"))
    if config.cell != "rnn" or config.nonlinearity != "identity":
        raise InvalidArgument(f"config=RecurrentConfig({config.describe()}): expected cell='rnn' with nonlinearity='identity'")
    if np.abs(W.T @ W - np.eye(W.shape[0])).max() > 1e3 * np.finfo(W.dtype).eps:
        raise InvalidArgument(f"params['weight_hh_l0']={describe(W)}: expected an orthogonal matrix (WᵀW = I)")
    x = np.asarray(x)
    T, B = x.shape[:2]
    ch = chain(jacobians(config, params, x, h0, None))
    sv = singular_values(ch[1:])  # lags 1 … T
    for k in range(sv.shape[0]):
        assert_close(f"singular values of ∂h_{T - 1}/∂h_{T - 2 - k}", sv[k], np.ones_like(sv[k]),
                     _tol(x.dtype, k + 1, 1.0, 1.0), context=_ctx(config, T, B, "orthogonal W_hh"), reproducer=reproducer)


def _forget_gates(config, params, x, h0, c0):
    """f_t (T, B, H) recomputed from the reference trajectory: σ(W_if x + W_hf h + b)."""
    H = config.hidden_size
    r = forward(config, params, x, h0, c0)
    T, B = np.asarray(x).shape[:2]
    h_init = np.zeros((B, config.output_size)) if h0 is None else np.asarray(h0)[0]
    h_prev = np.concatenate([h_init[None], r.output[:-1]])
    a = x @ params["weight_ih_l0"][H : 2 * H].T + h_prev @ params["weight_hh_l0"][H : 2 * H].T
    if config.bias:
        a = a + params["bias_ih_l0"][H : 2 * H] + params["bias_hh_l0"][H : 2 * H]
    return 1.0 / (1.0 + np.exp(-a))


def check_lstm_carousel(config, params, x, h0=None, c0=None, *, jacobians=step_jacobians, chain=chain_jacobians, reproducer=None) -> None:
    """The LSTM's constant error carousel (SPEC §6): ∂c_t/∂c_{t-1} restricted to the direct
    path is diag(f_t); with W_hh = 0 the whole ∂c_t/∂c_s is Π diag(f_j); and with f = 1, i = 0
    (saturated gate biases, exact in floating point) c_T = c_0 and ∂c_T/∂c_0 = I."""
    if config.cell != "lstm" or config.num_layers != 1 or config.bidirectional or not config.bias:
        raise InvalidArgument(f"config=RecurrentConfig({config.describe()}): expected a single-layer unidirectional LSTM with biases")
    x = np.asarray(x)
    T, B = x.shape[:2]
    H, ctx = config.hidden_size, _ctx(config, T, B)
    tol = _tol(x.dtype, T, 1.0, 1.0)
    step = jacobians(config, params, x, h0, c0)
    f = _forget_gates(config, params, x, h0, c0)
    cc = step.cell_block(step.jacobian)
    assert_close("∂c_t/∂c_{t-1} (the direct path)", cc, f[..., None] * np.eye(H), tol, context=ctx, reproducer=reproducer)
    p0 = dict(params, weight_hh_l0=np.zeros_like(params["weight_hh_l0"]))
    ch = chain(jacobians(config, p0, x, h0, c0))
    fprod = np.cumprod(_forget_gates(config, p0, x, h0, c0)[::-1], axis=0)  # Π f over the last k steps
    for k in range(1, T + 1):
        assert_close(f"∂c_{T - 1}/∂c_{T - 1 - k} with W_hh = 0", step.cell_block(ch[k]), fprod[k - 1][..., None] * np.eye(H),
                     _tol(x.dtype, k, 1.0, 1.0), context=ctx, reproducer=reproducer)
    sat = dict(params)
    for name in ("bias_ih_l0", "bias_hh_l0"):
        b = np.array(params[name], copy=True)
        b[:H], b[H : 2 * H] = -40.0, 40.0  # σ(−80) = 0 and σ(80) = 1 exactly in float64
        sat[name] = b
    c_init = np.zeros((1, B, H)) if c0 is None else c0
    r = forward(config, sat, x, h0, c_init)
    assert_close("c_T with f = 1, i = 0", r.c_n, c_init, tol, context=ctx, reproducer=reproducer)
    ch = chain(jacobians(config, sat, x, h0, c_init))
    assert_close(f"∂c_{T - 1}/∂c_0 with f = 1, i = 0", step.cell_block(ch[-1]), np.broadcast_to(np.eye(H), (B, H, H)),
                 tol, context=ctx, reproducer=reproducer)


def check_lag_profile(config, params, x, d_output, h0=None, c0=None, *, profile=gradient_profile, reproducer=None) -> None:
    """The per-lag profile against the backward engine: Σ_k (lag-k share of ∂L/∂W_hh) = full
    BPTT; the lag-0 share = the engine with every link cut; Σ_k A_k(t) = ∂L/∂h_t as the engine
    carries it; the lags reaching the initial state sum to ∂L/∂h0 (and ∂L/∂c0)."""
    x = np.asarray(x)
    T, B = x.shape[:2]
    P, ctx = config.output_size, _ctx(config, T, B)
    prof = profile(config, params, x, d_output, h0, c0)
    r = forward(config, params, x, h0, c0)
    carried = {}

    def record(t, dh, dc):
        carried[t] = dh.copy()
        return dh, dc

    full = backward(params, r, d_output, crossing=record)
    cut = backward(params, r, d_output, crossing=lambda t, dh, dc: (0 * dh, None if dc is None else 0 * dc))
    W = full["weight_hh_l0"]
    scale = max(float(np.abs(W).max()), 1e-300)
    tol = _tol(x.dtype, T, 1.0, scale)
    assert_close("Σ_k lag-k share of weight_hh_l0", prof.lag_weight_hh.sum(axis=0), W, tol, context=ctx, reproducer=reproducer)
    assert_close("lag-0 share of weight_hh_l0", prof.lag_weight_hh[0], cut["weight_hh_l0"],
                 _tol(x.dtype, T, 1.0, float(np.abs(cut["weight_hh_l0"]).max())), context=ctx, reproducer=reproducer)
    adj = np.asarray(d_output) + np.stack([carried[t + 1] for t in range(T - 1)] + [np.zeros_like(carried[0])])
    assert_close("∂L/∂h_t (per-step profile)", prof.hidden_grad[..., :P], adj,
                 _tol(x.dtype, T, 1.0, float(np.abs(adj).max())), context=ctx, reproducer=reproducer)
    assert_close("∂L/∂h0 (lags reaching the initial state)", prof.h0_grad[:, :P], full["h0"][0],
                 _tol(x.dtype, T, 1.0, float(np.abs(full["h0"]).max())), context=ctx, reproducer=reproducer)
    if cell_spec(config.cell).has_cell_state:
        assert_close("∂L/∂c0 (lags reaching the initial state)", prof.h0_grad[:, P:], full["c0"][0],
                     _tol(x.dtype, T, 1.0, float(np.abs(full["c0"]).max())), context=ctx, reproducer=reproducer)


def check_gradient_statistics(grads: dict, *, statistics=gradient_statistics) -> None:
    """Norm, fraction exactly zero and percentiles of each gradient against direct NumPy."""
    stats = statistics(grads)
    for name, g in grads.items():
        g = np.asarray(g).ravel()
        s = stats[name]
        tol = implementation_tolerance("float64", T=1, scale=max(float(np.abs(g).max()), 1e-300))
        assert_close(f"{name} norm", s.norm, float(np.sqrt(np.sum(g * g))), tol, context="gradient statistics")
        assert_close(f"{name} fraction_zero", s.fraction_zero, np.mean(g == 0), tol, context="gradient statistics")
        srt = np.sort(g)
        for q, v in s.percentiles.items():
            lo, hi = srt[int(np.floor(q / 100 * (g.size - 1)))], srt[int(np.ceil(q / 100 * (g.size - 1)))]
            if not (lo - tol.atol <= v <= hi + tol.atol):
                raise Mismatch(f"GradientMismatch: {name} percentile {q} = {v!r} lies outside the order statistics "
                               f"[{lo!r}, {hi!r}] (gradient statistics)", None)
