"""Truncated BPTT: every scheme (:mod:`bpttcheck.reference.schemes`) run by the one backward engine.

A scheme is a window function f (SPEC §1, §3): the loss at step t reaches the uses of the
parameters at steps f(t)..t, the inputs x_s with s ≥ f(t), and the initial states iff
f(t) = 0. Truncated gradients are the exact gradients of a surrogate loss in which the states
H[f(t)-1] are frozen constants. The forward is never truncated. A scheme with a crossing rule
(and full BPTT) runs as one O(T) sweep, a randomized scheme as one sweep scaling the carried
adjoint by ξ_t, any other deterministic scheme by windows.

Windows are run by recomputing each group of losses sharing a window start a from the saved
state H[a-1], all groups stacked along the batch axis, and one engine call over the longest
window. Schemes apply to unidirectional, possibly stacked networks, every layer cut at the
same times. Arrays are time-major: x (T, B, D), d_output (T, B, P). The scheme classes are
re-exported here (``bpttcheck.reference.truncation.Subsequence`` keeps working).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cells import cell_spec
from .config import RecurrentConfig
from .network import backward, forward
from .schemes import (
    Full,
    Randomized,
    RandomizedHistory,
    RandomizedScheme,
    SlidingWindow,
    Subsequence,
    TruncationScheme,
    WilliamsPeng,
    Window,
    check_scheme,
    is_randomized,
    window_starts,
)
from .validation import InvalidArgument, check_array, check_choice, describe, fail

__all__ = [
    "Full",
    "RandomizedHistory",
    "Randomized",
    "RandomizedScheme",
    "SlidingWindow",
    "Subsequence",
    "TruncationResult",
    "TruncationScheme",
    "WilliamsPeng",
    "Window",
    "check_problem",
    "check_scheme",
    "frozen_states",
    "is_randomized",
    "truncated_backward",
    "window_starts",
]


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
    check_choice("method", method, ("auto", "sweep", "windows"))
    if check_scheme(scheme) == "randomized":
        return _randomized(config, params, x, d_output, scheme, h0, c0, xi)
    if xi is not None:
        fail("xi", xi, "None for a deterministic scheme")
    f = window_starts(scheme, T)
    result = forward(config, params, x, h0, c0)
    crossing = scheme.crossing(T)
    if crossing is not None and not callable(crossing):
        raise InvalidArgument(f"scheme={scheme.describe()}: crossing({T}) returned {describe(crossing)}: expected "
                              "None or a rule (t, dh, dc) -> (dh, dc)")
    full = not f.any()  # f ≡ 0: full BPTT, one sweep without a rule
    use_sweep = method == "sweep" or (method == "auto" and (full or crossing is not None))
    if use_sweep:
        if crossing is None and not full:
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
    check_length = getattr(scheme, "check_length", None)
    if callable(check_length):
        check_length(T)
    if isinstance(xi, (list, tuple)) or np.isscalar(xi):
        try:
            xi = np.asarray(xi, dtype=np.float64)
        except (TypeError, ValueError):
            fail("xi", xi, f"real multipliers of shape (T={T},) or (N, T={T})")
    expected = f"real multipliers of shape (T={T},) or (N >= 1, T={T})"
    if not isinstance(xi, np.ndarray) or xi.ndim not in (1, 2) or xi.dtype.kind not in "fiu":
        fail("xi", xi, expected)
    one = xi.ndim == 1
    xi = np.atleast_2d(xi).astype(np.float64, copy=False)
    if xi.shape[1] != T or xi.shape[0] == 0:
        fail("xi", xi, expected)
    bad = ~np.isfinite(xi) | (xi < 0)
    if bad.any():
        n, t = (int(i) for i in np.argwhere(bad)[0])
        where = f"xi[{t}]" if one else f"xi[{n}, {t}]"
        fail("xi", xi, f"finite multipliers >= 0 (each ξ_t is 0 or 1/π_t; {where} = {float(xi[n, t])!r})")
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
