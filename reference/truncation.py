"""Truncated BPTT: every scheme as data, run by the one backward engine.

A scheme is a window function f (SPEC §1, §3): the loss at step t reaches the uses of the
parameters at steps f(t)..t, the inputs x_s with s ≥ f(t), and the initial states iff
f(t) = 0. Truncated gradients are the exact gradients of a surrogate loss in which the states
H[f(t)-1] are frozen constants. The forward is never truncated.

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

Windows are run by recomputing each group of losses sharing a window start a from the saved
state H[a-1], all groups stacked along the batch axis, and one engine call over the longest
window. Schemes apply to unidirectional, possibly stacked networks, every layer cut at the
same times. Arrays are time-major: x (T, B, D), d_output (T, B, P).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .cells import cell_spec
from .config import RecurrentConfig
from .validation import InvalidArgument, check_array, check_int, describe, fail
from .network import backward, forward

__all__ = [
    "Full",
    "RandomizedHistory",
    "Randomized",
    "SlidingWindow",
    "Subsequence",
    "TruncationResult",
    "WilliamsPeng",
    "Window",
    "check_problem",
    "frozen_states",
    "is_randomized",
    "truncated_backward",
    "window_starts",
]


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
    try:
        values = tuple(float(p) for p in pis)
    except TypeError:
        fail(name, pis, "a sequence of probabilities in (0, 1]")
    for i, p in enumerate(values):
        if not (0 < p <= 1):
            raise InvalidArgument(f"{name}[{i}]={p!r} (type=float): expected a probability in (0, 1]")
    if not values:
        fail(name, pis, "at least one probability in (0, 1]")
    return values


@dataclass(frozen=True)
class Randomized:
    """Randomized truncation with independent draws: the link into step t (t = 0: from h0)
    is kept with probability ``pis[t]`` and its adjoint is then multiplied by 1/pis[t]."""

    pis: tuple

    def __post_init__(self):
        object.__setattr__(self, "pis", _check_pis("pis", self.pis))

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


def is_randomized(scheme) -> bool:
    return isinstance(scheme, (Randomized, RandomizedHistory))


_SCHEMES = (Full, Subsequence, SlidingWindow, WilliamsPeng, Window, Randomized, RandomizedHistory)


def window_starts(scheme, T: int) -> np.ndarray:
    """f(t) for t = 0..T-1 (validated: integers with 0 <= f(t) <= t)."""
    if not isinstance(scheme, _SCHEMES):
        fail("scheme", scheme, "a truncation scheme (Full, Subsequence, SlidingWindow, WilliamsPeng, Window, Randomized, RandomizedHistory)")
    if is_randomized(scheme):
        fail("scheme", scheme, "a deterministic scheme; a randomized one has no fixed window")
    T = check_int("T", T, minimum=1)
    return scheme.window(T)


@dataclass(frozen=True)
class TruncationResult:
    """Forward results (never truncated) and the truncated gradients (torch names, "input",
    "h0", and "c0" for the LSTM). output (T, B, P); h_n (L, B, P); c_n (L, B, H) or None."""

    output: np.ndarray
    h_n: np.ndarray
    c_n: np.ndarray | None
    grads: dict
    scheme: object


def check_problem(config, params, x, d_output, h0=None, c0=None):
    """Validate a truncation problem; returns ``(x, d_output)`` as arrays.

    Truncation is defined for unidirectional (possibly stacked) networks (SPEC §3).
    """
    if not isinstance(config, RecurrentConfig):
        fail("config", config, "a RecurrentConfig")
    if config.bidirectional:
        raise InvalidArgument(
            f"config=({config.describe()}): expected a unidirectional network; truncation of a "
            "bidirectional layer has no standard meaning (SPEC §3)"
        )
    x = check_array("x", x, (None, None, config.input_size), dims=("T", "B", "input_size"))
    if x.shape[0] == 0 or x.shape[1] == 0:
        fail("x", x, "T >= 1 time steps and B >= 1 batch elements (time-major (T, B, input_size))")
    T, B = x.shape[:2]
    d_output = check_array("d_output", d_output, (T, B, config.output_size), dims=("T", "B", "P"))
    return x, d_output


def frozen_states(config, params, result, x, c0=None):
    """States entering every step, per layer: Hs (T+1, L, B, P) with Hs[t] = H[t-1]
    (Hs[0] = h0), and Cs (T+1, L, B, H) for a cell with a cell state (else None).

    Both come from the forward's named caches (``states`` and ``cell_states``), so the
    windows restart from exactly the states the forward computed. ``params``, ``x`` and
    ``c0`` are no longer read (kept for the callers' signature).
    """
    L = config.num_layers
    caches = [result.layer_cache(layer) for layer in range(L)]
    Hs = np.stack([cache.states for cache in caches], axis=1)
    if not cell_spec(config.cell).has_cell_state:
        return Hs, None
    return Hs, np.stack([cache.cell_states for cache in caches], axis=1)


def _windows(config, params, x, d_output, f, Hs, Cs):
    """Gradients of Σ_t ⟨d_output[t], y_t⟩ with loss t's window starting at f[t], in one
    engine call: losses sharing a start a form a group, recomputed from H[a-1]."""
    T, B, D = x.shape
    starts = np.unique(f)
    last = np.array([np.max(np.nonzero(f == a)[0]) for a in starts])
    W = int(np.max(last - starts + 1))
    G = len(starts)
    tt = starts[None, :] + np.arange(W)[:, None]  # (W, G) time index of each window position
    valid = tt < T
    ttc = np.minimum(tt, T - 1)
    # Positions past T-1 carry zero input and zero cotangent: they cannot touch a loss at ≤ T-1.
    xw = np.where(valid[..., None, None], x[ttc], 0).reshape(W, G * B, D)
    inject = valid & (f[ttc] == starts[None, :])
    dw = np.where(inject[..., None, None], d_output[ttc], 0).reshape(W, G * B, -1)
    h0w = Hs[starts].transpose(1, 0, 2, 3).reshape(config.num_layers, G * B, -1)
    c0w = None if Cs is None else Cs[starts].transpose(1, 0, 2, 3).reshape(config.num_layers, G * B, -1)
    res = forward(config, params, xw, h0w, c0w)
    g = backward(params, res, dw)
    dx = np.zeros_like(x, dtype=g["input"].dtype)
    np.add.at(dx, ttc[valid], g["input"].reshape(W, G, B, D)[valid])
    first = starts == 0  # only windows starting at 0 reach the true initial states
    grads = {k: v for k, v in g.items() if k not in ("input", "h0", "c0")}
    grads["input"] = dx
    grads["h0"] = g["h0"].reshape(config.num_layers, G, B, -1)[:, first].sum(axis=1)
    if cell_spec(config.cell).has_cell_state:
        grads["c0"] = g["c0"].reshape(config.num_layers, G, B, -1)[:, first].sum(axis=1)
    return grads


def truncated_backward(
    config: RecurrentConfig,
    params: dict,
    x,
    d_output,
    scheme,
    h0=None,
    c0=None,
    *,
    xi=None,
    method: str = "auto",
) -> TruncationResult:
    """Forward (untruncated) and the truncated gradient of ``Σ_t ⟨d_output[t], y_t⟩``.

    Any loss enters through its cotangent ``d_output`` (from :func:`loss_and_grad`; readout
    gradients are never truncated and are not computed here). x (T, B, D) time-major,
    d_output (T, B, P). A randomized scheme needs ``xi``: (T,) multipliers, or (N, T) for the
    mean of N patterns, all run in one engine call stacked along the batch axis.
    ``method``: "auto", "sweep" (crossing rule, O(T)) or "windows" (batched windows).
    """
    x, d_output = check_problem(config, params, x, d_output, h0, c0)
    T, B = x.shape[:2]
    if method not in ("auto", "sweep", "windows"):
        fail("method", method, "one of 'auto', 'sweep', 'windows'")
    if is_randomized(scheme):
        return _randomized(config, params, x, d_output, scheme, h0, c0, xi)
    if xi is not None:
        fail("xi", xi, "None for a deterministic scheme")
    f = window_starts(scheme, T)
    result = forward(config, params, x, h0, c0)
    crossing = scheme.crossing(T)
    use_sweep = method == "sweep" or (method == "auto" and (isinstance(scheme, Full) or crossing is not None))
    if use_sweep:
        if crossing is None and not isinstance(scheme, Full):
            fail("method", method, f"'windows' or 'auto' for {scheme.describe()} (no O(T) sweep exists)")
        grads = backward(params, result, d_output, crossing=crossing)
    else:
        Hs, Cs = frozen_states(config, params, result, x, c0)
        grads = _windows(config, params, x, d_output, f, Hs, Cs)
    return TruncationResult(result.output, result.h_n, result.c_n, grads, scheme)


def _xi_crossing(xi, B):
    # A column shared by every sample becomes a scalar: one pattern costs one multiply per step.
    shared = (xi == xi[:1]).all(axis=0)
    ws = [float(xi[0, t]) if shared[t] else np.repeat(xi[:, t], B)[:, None] for t in range(xi.shape[1])]

    def scale_by_xi(t, dh, dc):
        w = ws[t]
        if isinstance(w, float) and w == 1.0:
            return dh, dc
        return dh * w, None if dc is None else dc * w

    return scale_by_xi


def _randomized(config, params, x, d_output, scheme, h0, c0, xi):
    T, B = x.shape[:2]
    if xi is None:
        fail("xi", xi, f"an array of T={T} multipliers (or (N, T)) for {scheme.describe()}; "
             "draw them with bpttcheck.reference.randomized.sample_xi")
    if isinstance(scheme, Randomized):
        scheme.check_length(T)
    xi = np.asarray(xi, dtype=np.float64)
    if xi.ndim == 1:
        xi = xi[None]
    if xi.ndim != 2 or xi.shape[1] != T or not np.isfinite(xi).all():
        fail("xi", xi, f"finite multipliers of shape (T={T},) or (N, T={T})")
    N = xi.shape[0]
    rep = lambda a: None if a is None else np.tile(a, (1, N, 1))  # noqa: E731 — states are (L, B, ·)
    result = forward(config, params, x, h0, c0)
    big = result if N == 1 else forward(config, params, np.tile(x, (1, N, 1)), rep(h0), rep(c0))
    g = backward(params, big, np.tile(d_output, (1, N, 1)), crossing=_xi_crossing(xi, B))
    grads = {}
    for k, v in g.items():
        if k == "input":
            grads[k] = v.reshape(T, N, B, -1).mean(axis=1)
        elif k in ("h0", "c0"):
            grads[k] = v.reshape(v.shape[0], N, B, -1).mean(axis=1)
        else:
            grads[k] = v / N
    return TruncationResult(result.output, result.h_n, result.c_n, grads, scheme)
