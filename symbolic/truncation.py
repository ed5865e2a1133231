"""Truncation schemes as data: window functions f(t) (SPEC §1, §3) and pair weights.

Every scheme is ``Σ_t Σ_{s=f(t)..t} C[t,s]``: loss t reaches the use of θ (and x) at step s
iff ``s ≥ f(t)``, and the initial state iff ``f(t) = 0``. The randomized estimator weighs the
pair (t, s) by ``Π_{j=s+1..t} ξ_j`` instead (the initial state: ``Π_{j=0..t} ξ_j``). Both are
expressed as a (T, T+1) weight table ``w[t, s+1]`` with column 0 for the initial state, which
the pair-sum oracle consumes.
"""

from __future__ import annotations

import numbers
from typing import Callable

import numpy as np

from bpttcheck.reference.validation import InvalidArgument, check_int, describe

__all__ = [
    "SCHEMES",
    "full",
    "pair_weights",
    "randomized_weights",
    "sliding_window",
    "subsequence",
    "williams_peng",
    "window_function",
]


def full(t: int, T: int) -> int:
    """Full BPTT: f(t) = 0."""
    T = check_int("T", T, minimum=1)
    check_int("t", t, minimum=0, maximum=T - 1)
    return 0


def sliding_window(k: int) -> Callable[[int, int], int]:
    """A window of k steps (parameter uses) per loss: f(t) = max(0, t − k + 1) = BPTT(k; 1).

    The seeds' "k-truncated BPTT" (k Jacobian factors) is ``sliding_window(k + 1)``.
    """
    k = check_int("k", k, minimum=1)
    return lambda t, T: max(0, t - k + 1)


def subsequence(k: int) -> Callable[[int, int], int]:
    """Detach at every chunk start: f(t) = k·⌊t/k⌋ = BPTT(k; k)."""
    k = check_int("k", k, minimum=1)
    return lambda t, T: k * (t // k)


def williams_peng(h: int, h_prime: int) -> Callable[[int, int], int]:
    """BPTT(h; h′): f(τ) = max(0, e(τ) − h + 1), e(τ) = min(h′·⌊τ/h′⌋ + h′ − 1, T − 1)."""
    h = check_int("h", h, minimum=1)
    h_prime = check_int("h_prime", h_prime, minimum=1)
    if h < h_prime:
        raise InvalidArgument(f"h={h} (type=int): expected h >= h_prime={h_prime} (as WilliamsPeng requires)")
    return lambda t, T: max(0, min(h_prime * (t // h_prime) + h_prime - 1, T - 1) - h + 1)


#: name -> constructor, for generated configurations (arguments: window size(s)).
SCHEMES = {
    "full": lambda: full,
    "sliding_window": sliding_window,
    "subsequence": subsequence,
    "williams_peng": williams_peng,
}


def window_function(f, T: int) -> list[int]:
    """[f(0), …, f(T−1)], checked: 0 ≤ f(t) ≤ t (an arbitrary f is any such list or callable)."""
    T = check_int("T", T, minimum=1)
    if callable(f):
        values = [f(t, T) for t in range(T)]
    elif isinstance(f, (list, tuple, np.ndarray)) and len(f) == T:
        values = [int(v) for v in f]
    else:
        raise InvalidArgument(f"window={describe(f)}: expected a callable f(t, T) or a list of T={T} integers")
    for t, v in enumerate(values):
        if not (0 <= v <= t):
            raise InvalidArgument(f"window={describe(f)}: expected 0 <= f(t) <= t for every t, got f({t})={v}")
    return values


def pair_weights(T: int, window=full) -> np.ndarray:
    """(T, T+1) 0/1 table: w[t, s+1] = [s ≥ f(t)] for s ≥ 0; w[t, 0] = [f(t) = 0] (h0)."""
    f = window_function(window, T)
    w = np.zeros((T, T + 1), dtype=object)
    for t in range(T):
        w[t, 0] = int(f[t] == 0)
        for s in range(f[t], t + 1):
            w[t, s + 1] = 1
    return w


def randomized_weights(xi) -> np.ndarray:
    """(T, T+1) table w[t, s+1] = Π_{j=s+1..t} ξ_j (ξ_j: the multiplier crossing into step j).

    ``xi`` is a length-T sequence of numbers of any kind (floats, rationals, mpf, symbols).
    """
    if isinstance(xi, (str, bytes, dict)) or not isinstance(xi, (list, tuple, np.ndarray)) or np.ndim(xi) > 1:
        raise InvalidArgument(f"xi={describe(xi)}: expected a length-T sequence of multipliers")
    xi = list(xi)
    for j, v in enumerate(xi):
        if isinstance(v, (str, bytes, list, tuple, dict, np.ndarray)) or (isinstance(v, numbers.Real) and not v >= 0):
            raise InvalidArgument(f"xi[{j}]={describe(v)}: expected a multiplier >= 0 (a number or a symbol)")
    T = len(xi)
    if T == 0:
        raise InvalidArgument(f"xi={describe(xi)}: expected one multiplier per time step")
    w = np.zeros((T, T + 1), dtype=object)
    for t in range(T):
        prod = 1
        for s in range(t, -2, -1):
            w[t, s + 1] = prod
            if s >= 0:
                prod = prod * xi[s]
    return w
