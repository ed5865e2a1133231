"""Truncation schemes as data: the scheme protocols and the schemes the project ships.

A deterministic scheme is any object with ``window(T)``, ``crossing(T)`` and ``describe()``
(:class:`TruncationScheme`); a randomized one any object with ``keep_probability(t,
kept_before)`` and ``describe()`` (:class:`RandomizedScheme`). There is no list of allowed
classes: :func:`check_scheme` validates by those attributes, :func:`window_starts` validates
what ``window`` returns, and the one backward engine (:mod:`bpttcheck.reference.truncation`)
runs any of them.

====================  =====================================  ===============================
scheme                f(t)                                   how it runs (T steps, window k)
====================  =====================================  ===============================
Full()                0                                      one sweep, O(T)
Subsequence(k)        k·⌊t/k⌋                                one sweep cutting links into
                                                             t = k, 2k, … (never t = 0), O(T)
SlidingWindow(k)      max(0, t-k+1)  ("window of k steps")   batched windows, O(T·k)
WilliamsPeng(h, h′)   max(0, e(t)-h+1),                      batched windows, O(T·h)
                      e(t) = min(h′·⌊t/h′⌋ + h′-1, T-1)
Window(f)             any user f with 0 ≤ f(t) ≤ t           batched windows, O(T·max window)
Randomized(pis)       random: link into t kept w.p. pis[t],  one sweep scaling the carried
                      then scaled by 1/pis[t]                adjoint by ξ_t, O(T)
RandomizedHistory     same, keep probability depending on    one sweep, O(T)
                      the run of kept links before t
====================  =====================================  ===============================

The seeds' "k-truncated BPTT" is ``f(t) = max(0, t-k)``: k Jacobian factors, k+1 steps; here
it is ``SlidingWindow.seeds_convention(k) == SlidingWindow(k + 1)``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from .network import Crossing
from .validation import InvalidArgument, check_int, check_probabilities, describe, fail

__all__ = [
    "Full",
    "Randomized",
    "RandomizedHistory",
    "RandomizedScheme",
    "SlidingWindow",
    "Subsequence",
    "TruncationScheme",
    "WilliamsPeng",
    "Window",
    "check_scheme",
    "is_randomized",
    "window_starts",
]


@runtime_checkable
class TruncationScheme(Protocol):
    """A deterministic truncation scheme (SPEC §1, §3).

    ``window(T)`` returns f (T,) integers with 0 ≤ f(t) ≤ t: the loss at step t reaches the
    steps f(t)..t. ``crossing(T)`` returns a crossing rule ``(t, dh, dc) -> (dh, dc)`` that
    realises the same truncation in one O(T) sweep, or None (the engine then runs batched
    windows; a window that is 0 everywhere is full BPTT, one sweep). ``describe()`` names the
    scheme in reports.
    """

    def window(self, T: int) -> np.ndarray: ...

    def crossing(self, T: int) -> Crossing | None: ...

    def describe(self) -> str: ...


@runtime_checkable
class RandomizedScheme(Protocol):
    """A randomized truncation scheme (SPEC §4): draws go forward in time, and the link into
    step t is kept with probability ``keep_probability(t, kept_before)`` — kept_before (N, t)
    bool, the draws of the N samples so far; returns (N,) probabilities in (0, 1] — then its
    adjoint is multiplied by 1 over that probability. It may define ``check_length(T)`` to
    refuse a sequence length it was not made for."""

    def keep_probability(self, t: int, kept_before: np.ndarray) -> np.ndarray: ...

    def describe(self) -> str: ...


_DETERMINISTIC = ("window", "crossing", "describe")
_RANDOMIZED = ("keep_probability", "describe")


def _lacks(scheme, names) -> list[str]:
    return [n for n in names if not callable(getattr(scheme, n, None))]


def is_randomized(scheme) -> bool:
    """Whether ``scheme`` has the randomized protocol (keep_probability and describe)."""
    return not _lacks(scheme, _RANDOMIZED)


def check_scheme(scheme, name: str = "scheme") -> str:
    """"deterministic" or "randomized" by the protocol ``scheme`` has; InvalidArgument otherwise."""
    if is_randomized(scheme):
        return "randomized"
    missing = _lacks(scheme, _DETERMINISTIC)
    if not missing:
        return "deterministic"
    fail(name, scheme, "a truncation scheme: an object with window(T), crossing(T) and describe() "
         "(deterministic, e.g. Subsequence(3)) or keep_probability(t, kept_before) and describe() "
         f"(randomized, e.g. Randomized(pis)); it has no {', '.join(missing)}")


def window_starts(scheme, T: int) -> np.ndarray:
    """f(t) for t = 0..T-1 of a deterministic scheme (validated: integers with 0 <= f(t) <= t)."""
    if check_scheme(scheme) == "randomized":
        fail("scheme", scheme, "a deterministic scheme; a randomized one has no fixed window")
    T = check_int("T", T, minimum=1)
    f = scheme.window(T)
    arr = np.asarray(f) if isinstance(f, (np.ndarray, list, tuple)) else None
    if arr is None or arr.shape != (T,) or (arr.size and arr.dtype.kind not in "iu"):
        raise InvalidArgument(f"scheme={scheme.describe()}: window({T}) returned {describe(f)}: expected {T} "
                              "integers f(t), one per step")
    t = np.arange(T)
    bad = (arr < 0) | (arr > t)
    if bad.any():
        k = int(np.argmax(bad))
        raise InvalidArgument(f"scheme={scheme.describe()}: window({T})[{k}]={int(arr[k])}: expected 0 <= f(t) <= t={k} "
                              "(a loss cannot skip its own step nor reach before the sequence start)")
    return arr.astype(np.intp, copy=False)


def _arange_window(T: int) -> np.ndarray:
    return np.arange(T, dtype=np.intp)


@dataclass(frozen=True)
class Full:
    """Full BPTT: every loss reaches every earlier step (f(t) = 0)."""

    def window(self, T: int) -> np.ndarray:
        return np.zeros(T, dtype=np.intp)

    def crossing(self, T: int):
        return None

    def describe(self) -> str:
        return "full BPTT"


@dataclass(frozen=True)
class Subsequence:
    """Detach the state every k steps: f(t) = k·⌊t/k⌋ (= Williams–Peng BPTT(k; k)).

    The first chunk reaches h0 (f(t) = 0 there): the link into t = 0 is never cut.
    """

    k: int

    def __post_init__(self):
        check_int("k", self.k, minimum=1)

    def window(self, T: int) -> np.ndarray:
        t = _arange_window(T)
        return self.k * (t // self.k)

    def crossing(self, T: int):
        k = self.k

        def cut_at_chunk_starts(t, dh, dc):
            if t > 0 and t % k == 0:
                return dh * 0, None if dc is None else dc * 0
            return dh, dc

        return cut_at_chunk_starts

    def describe(self) -> str:
        return f"subsequence k={self.k}"


@dataclass(frozen=True)
class SlidingWindow:
    """Each loss back-propagates through its last k steps: f(t) = max(0, t-k+1).

    ``k`` counts steps (parameter uses) inside the window, i.e. k-1 Jacobian factors. The
    seeds' "k-truncated BPTT", f(t) = max(0, t-k), is :meth:`seeds_convention`.
    """

    k: int

    def __post_init__(self):
        check_int("k", self.k, minimum=1)

    @classmethod
    def seeds_convention(cls, k: int) -> "SlidingWindow":
        """The seeds' k-truncated BPTT, f(t) = max(0, t-k): k Jacobian factors = k+1 steps."""
        check_int("k", k, minimum=0)
        return cls(k + 1)

    def window(self, T: int) -> np.ndarray:
        return np.maximum(0, _arange_window(T) - self.k + 1)

    def crossing(self, T: int):
        return None

    def describe(self) -> str:
        return f"sliding window k={self.k}"


@dataclass(frozen=True)
class WilliamsPeng:
    """Williams & Peng BPTT(h; h′): every h′ steps inject the last h′ losses, go back h steps.

    f(τ) = max(0, e(τ)-h+1), e(τ) = min(h′·⌊τ/h′⌋ + h′-1, T-1). Sutskever's TBPTT(k1, k2)
    is ``WilliamsPeng(h=k2, h_prime=k1)``. Needs h ≥ h′ (else a loss would not reach its own
    step).
    """

    h: int
    h_prime: int

    def __post_init__(self):
        check_int("h", self.h, minimum=1)
        check_int("h_prime", self.h_prime, minimum=1)
        if self.h < self.h_prime:
            raise InvalidArgument(
                f"h={self.h!r} (type=int): expected h >= h_prime={self.h_prime}; with h < h_prime the "
                "losses early in a block would not reach their own step"
            )

    def window(self, T: int) -> np.ndarray:
        t = _arange_window(T)
        e = np.minimum(self.h_prime * (t // self.h_prime) + self.h_prime - 1, T - 1)
        return np.maximum(0, e - self.h + 1)

    def crossing(self, T: int):
        return None

    def describe(self) -> str:
        return f"Williams-Peng h={self.h}, h_prime={self.h_prime}"


@dataclass(frozen=True)
class Window:
    """A user-given window: ``f`` is a callable t -> f(t) or a sequence of T integers."""

    f: Callable[[int], int] | Sequence[int]
    name: str = "window f"

    def __post_init__(self):
        if not callable(self.f) and (isinstance(self.f, (str, bytes, dict)) or not hasattr(self.f, "__len__")
                                     or not hasattr(self.f, "__getitem__")):
            fail("f", self.f, "a callable t -> f(t) or a sequence of T integers with 0 <= f(t) <= t")
        if not isinstance(self.name, str):
            fail("name", self.name, "a string naming the window in reports")

    def window(self, T: int) -> np.ndarray:
        out = np.empty(T, dtype=np.intp)
        for t in range(T):
            v = self.f(t) if callable(self.f) else (self.f[t] if t < len(self.f) else None)
            if v is None:
                fail("f", self.f, f"a window function or a sequence of T={T} integers (got {len(self.f)})")
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise InvalidArgument(
                    f"f={self.name}: f({t})={describe(v)}: expected an integer 0 <= f(t) <= t"
                )
            if not 0 <= v <= t:
                raise InvalidArgument(
                    f"f={self.name}: f({t})={int(v)}: expected 0 <= f(t) <= t={t} (a loss cannot "
                    "skip its own step nor reach before the sequence start)"
                )
            out[t] = v
        return out

    def crossing(self, T: int):
        return None

    def describe(self) -> str:
        return self.name


def _check_pis(name, pis) -> tuple:
    return check_probabilities(name, pis)


@dataclass(frozen=True)
class Randomized:
    """Randomized truncation with independent draws: the link into step t (t = 0: from h0)
    is kept with probability ``pis[t]`` and its adjoint is then multiplied by 1/pis[t]."""

    pis: tuple

    def __post_init__(self):
        object.__setattr__(self, "pis", _check_pis("pis", self.pis))

    def keep_probability(self, t: int, kept_before: np.ndarray) -> np.ndarray:
        """(N,) probabilities pis[t]: independent draws ignore the history."""
        return np.full(np.shape(kept_before)[0], self.pis[t])

    def check_length(self, T: int) -> np.ndarray:
        if len(self.pis) != T:
            raise InvalidArgument(
                f"pis has length {len(self.pis)}: expected T={T} probabilities, pis[t] for the link into step t"
            )
        return np.asarray(self.pis)

    def describe(self) -> str:
        return f"randomized pis={_short(self.pis)}"


@dataclass(frozen=True)
class RandomizedHistory:
    """ARTBP-style history-dependent truncation (a martingale scheme).

    Draws go forward in time; the link into step t is kept with probability
    ``run_probs[min(m, len-1)]``, m = the number of consecutive kept links just before t, and
    a kept link's adjoint is multiplied by 1 over that probability, so E[ξ_t | ξ_<t] = 1.
    """

    run_probs: tuple

    def __post_init__(self):
        object.__setattr__(self, "run_probs", _check_pis("run_probs", self.run_probs))

    def keep_probability(self, t: int, kept_before: np.ndarray) -> np.ndarray:
        """kept_before (N, t) bool -> (N,) keep probabilities of the link into step t."""
        run = np.zeros(kept_before.shape[0], dtype=np.intp)
        alive = np.ones(kept_before.shape[0], dtype=bool)
        for j in range(t - 1, -1, -1):
            alive &= kept_before[:, j]
            run += alive
        return np.asarray(self.run_probs)[np.minimum(run, len(self.run_probs) - 1)]

    def describe(self) -> str:
        return f"randomized history-dependent run_probs={_short(self.run_probs)}"


def _short(values) -> str:
    text = "(" + ", ".join(f"{v:.3g}" for v in values[:6]) + (", …" if len(values) > 6 else "") + ")"
    return text
