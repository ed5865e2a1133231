"""Randomized truncation (SPEC §4): the estimator, and its exact moments.

    ĝ(ξ) = Σ_{t ≥ s} (Π_{j=s+1..t} ξ_j) · C[t, s],   ξ_j ∈ {0, 1/π_j},  P(ξ_j = 1/π_j) = π_j

(s = -1 stands for the initial states, reached through the link into step 0). The engine
runs it as one sweep multiplying the carried adjoint by ξ_t on crossing into step t; N
samples run at once, stacked along the batch axis. Randomness only through an explicit
``numpy.random.Generator``: the same seed gives the same gradient.

Exact moments: for T ≤ 12 all 2^T keep/cut patterns are enumerated with their probabilities
and the pair weights ``W[n, t, s+1] = Π ξ`` are applied to the pair contributions in one
matrix product, giving the exact mean and covariance. For independent draws the per-coordinate
second moments also have a closed form in O(T²·n) (:func:`independent_moments`), so long
sequences get exact variances without enumeration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .pairsum import PairContributions, pair_contributions
from .schemes import Randomized, is_randomized
from .truncation import TruncationResult, check_problem, truncated_backward
from .validation import InvalidArgument, check_instance, check_int, fail

__all__ = [
    "ExactMoments",
    "MAX_ENUMERATION_T",
    "enumerate_patterns",
    "exact_moments",
    "independent_moments",
    "pattern_weights",
    "randomized_backward",
    "sample_xi",
]

MAX_ENUMERATION_T = 12


def _check_scheme(scheme, T):
    if not is_randomized(scheme):
        fail("scheme", scheme, "a randomized scheme (keep_probability(t, kept_before) and describe(), e.g. "
             "Randomized(pis) or RandomizedHistory(run_probs))")
    check_length = getattr(scheme, "check_length", None)
    if callable(check_length):
        check_length(T)


def _keep_probabilities(scheme, kept: np.ndarray) -> np.ndarray:
    """kept (N, T) bool -> (N, T) probability with which each link's draw was made."""
    N, T = kept.shape
    if isinstance(scheme, Randomized):  # independent draws: no history to walk (a fast path)
        return np.broadcast_to(np.asarray(scheme.pis), (N, T))
    return np.stack([scheme.keep_probability(t, kept[:, :t]) for t in range(T)], axis=1)


def sample_xi(scheme, rng: np.random.Generator, T: int, n: int = 1) -> np.ndarray:
    """(n, T) multipliers ξ drawn with ``rng`` (forward in time, so history rules see the past)."""
    if not isinstance(rng, np.random.Generator):
        fail("rng", rng, "a numpy.random.Generator, e.g. numpy.random.default_rng(0)")
    T = check_int("T", T, minimum=1)
    n = check_int("n", n, minimum=1)
    _check_scheme(scheme, T)
    u = rng.random((n, T))
    if isinstance(scheme, Randomized):  # independent draws, all at once (a fast path)
        pis = np.asarray(scheme.pis)
        return np.where(u < pis, 1.0 / pis, 0.0)
    kept = np.zeros((n, T), dtype=bool)
    xi = np.zeros((n, T))
    for t in range(T):
        p = scheme.keep_probability(t, kept[:, :t])
        kept[:, t] = u[:, t] < p
        xi[:, t] = np.where(kept[:, t], 1.0 / p, 0.0)
    return xi


def enumerate_patterns(scheme, T: int) -> tuple[np.ndarray, np.ndarray]:
    """All 2^T patterns: ``(xi (2^T, T), probability (2^T,))``; T ≤ 12."""
    T = check_int("T", T, minimum=1, maximum=MAX_ENUMERATION_T)
    _check_scheme(scheme, T)
    kept = ((np.arange(2**T)[:, None] >> np.arange(T)[None, :]) & 1).astype(bool)
    p = _keep_probabilities(scheme, kept)
    prob = np.prod(np.where(kept, p, 1.0 - p), axis=1)
    return np.where(kept, 1.0 / p, 0.0), prob


def pattern_weights(xi: np.ndarray) -> np.ndarray:
    """xi (N, T) -> W (N, T, T+1), ``W[n, t, s+1] = Π_{j=s+1..t} ξ_j`` (1 for s = t)."""
    N, T = xi.shape
    W = np.zeros((N, T, T + 1))
    for t in range(T):
        if t > 0:
            W[:, t, :t] = W[:, t - 1, :t] * xi[:, t, None]
        W[:, t, t] = xi[:, t]  # s = t-1: the one link into step t
        W[:, t, t + 1] = 1.0  # s = t: no link crossed
    return W


@dataclass(frozen=True)
class ExactMoments:
    """Exact mean and covariance of ĝ over every pattern (flat vectors, ``pairs.layout``)."""

    mean: np.ndarray  # (n,)
    covariance: np.ndarray  # (n, n)
    full: np.ndarray  # (n,) full BPTT
    pairs: PairContributions
    n_patterns: int

    def mean_grads(self) -> dict:
        return self.pairs.unflatten(self.mean)


def exact_moments(config, params, x, d_output, scheme, h0=None, c0=None, *, pairs=None) -> ExactMoments:
    """Enumerate all 2^T patterns (T ≤ 12), vectorised over patterns."""
    x, d_output = check_problem(config, params, x, d_output, h0, c0)
    T = x.shape[0]
    if T > MAX_ENUMERATION_T:
        raise InvalidArgument(
            f"x has T={T} steps: expected T <= {MAX_ENUMERATION_T} for exact enumeration of 2^T "
            "patterns; use independent_moments (independent draws) or the statistical test"
        )
    if pairs is None:
        pairs = pair_contributions(config, params, x, d_output, h0, c0)
    check_instance("pairs", pairs, PairContributions, "None or the PairContributions of pair_contributions()")
    xi, prob = enumerate_patterns(scheme, pairs.T)
    G = pairs.weighted_sum(pattern_weights(xi))  # (2^T, n)
    mean = prob @ G
    dev = G - mean
    cov = (dev * prob[:, None]).T @ dev
    return ExactMoments(mean, cov, pairs.full, pairs, len(prob))


def independent_moments(pairs: PairContributions, pis) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact per-coordinate mean, variance and almost-sure bound of |ĝ - E ĝ|, independent ξ.

    Two pairs (t, s), (t', s') share the links m+1..n, m = max(s, s'), n = min(t, t'); for
    independent ξ, E[Π ξ · Π ξ'] = Π_{shared} 1/π_j (E ξ² = 1/π, E ξ = 1). With
    A(m, n) = Σ_{s ≤ m, t ≥ n} C[t, s], the pairs with max = m and min = n sum to the second
    difference of A², so E[ĝ_i²] = Σ_{m,n} r(m, n)·Δ²A_i²(m, n) in O(T²·n).
    The bound: |ĝ_i| ≤ Σ |C_i[t, s]|·Π_{j=s+1..t} 1/π_j, plus |E ĝ_i|.
    """
    check_instance("pairs", pairs, PairContributions, "the PairContributions of pair_contributions()")
    C = pairs.C
    T = C.shape[0]
    pis = np.asarray(Randomized(pis).check_length(T))
    logq = np.concatenate([[0.0], np.cumsum(-np.log(pis))])  # logq[k] = Σ_{j<k} log(1/π_j)
    u = np.arange(T + 1)
    n = np.arange(T)
    # r[u, n] = Π_{j=u..n} 1/π_j for u ≤ n (u = s+1 = first shared link), else 1.
    r = np.where(u[:, None] <= n[None, :], np.exp(logq[np.minimum(n + 1, T)][None, :] - logq[u][:, None]), 1.0)
    A = np.cumsum(np.cumsum(C[::-1], axis=0)[::-1], axis=1).transpose(1, 0, 2)  # A[u_m, n]
    A2 = A * A
    A2p = np.zeros((T + 2, T + 1, A.shape[-1]))
    A2p[1:, :-1] = A2  # A2p[u+1, n] = A²(u, n); zeros at u = -1 and n = T
    S = A2p[1:, :-1] - A2p[:-1, :-1] - A2p[1:, 1:] + A2p[:-1, 1:]
    second = np.einsum("un,uni->i", r, S)
    mean = C.sum(axis=(0, 1))
    var = np.maximum(second - mean * mean, 0.0)
    t_idx = np.arange(T)[:, None]
    reach = np.where(u[None, :] <= t_idx, np.exp(logq[t_idx + 1] - logq[u][None, :]), 0.0)  # (T, T+1)
    bound = np.einsum("tu,tui->i", reach, np.abs(C)) + np.abs(mean)
    return mean, var, bound


def randomized_backward(
    config,
    params,
    x,
    d_output,
    scheme,
    h0=None,
    c0=None,
    *,
    rng: np.random.Generator | None = None,
    xi=None,
    n_samples: int = 1,
) -> tuple[TruncationResult, np.ndarray]:
    """The randomized estimator: ``(result, xi)``; grads are the mean over ``n_samples``
    patterns drawn with ``rng`` (or the given ``xi`` (T,) / (N, T))."""
    x, d_output = check_problem(config, params, x, d_output, h0, c0)  # before drawing: x fixes T
    T = x.shape[0]
    if xi is None:
        if rng is None:
            fail("rng", rng, "a numpy.random.Generator (or pass xi)")
        xi = sample_xi(scheme, rng, T, n_samples)
    res = truncated_backward(config, params, x, d_output, scheme, h0, c0, xi=xi)
    return res, np.atleast_2d(np.asarray(xi, dtype=np.float64))
