"""Truncated and randomized BPTT, symbolically (SPEC §1, §3, §4).

- :func:`surrogate_vs_pair_sum`: the truncated gradient *defined* as the gradient of the
  surrogate loss (reverse mode over its DAG, or SymPy's ``diff``) — each loss t unrolled from its window start f(t), the state before it a
  frozen constant symbol, substituted by the true state only after differentiating — equals
  the pair-sum ``Σ_t Σ_{s=f(t)..t} C[t,s]`` built from SymPy's step Jacobians (and, for the
  initial state, the losses with f(t) = 0). With f ≡ 0 (any window ≥ T) both are full BPTT.
- :func:`randomized_expectation`: ``E_ξ[Σ_{t≥s} Π_{j=s+1..t} ξ_j C[t,s]]`` over all 2^T
  outcomes, with symbolic π_t and generic symbolic C[t,s], minus the full sum: a rational
  function of the π_t that cancels to 0 for the compensated estimator (ξ_j ∈ {0, 1/π_j}) and not
  for the uncompensated one (ξ_j ∈ {0, 1}) or a single coin shared by all steps.

Each result is an :class:`~bpttcheck.symbolic.identities.Identity`; sizes are fixed per call.
"""

from __future__ import annotations

import itertools

import sympy as sp

from bpttcheck.reference.validation import check_choice, check_int

from .cells import check_single_layer, param_symbols, state_sizes, step, vector_symbols
from .dag import substitute
from .identities import Identity
from .reverse import gradient as reverse_gradient
from .truncation import pair_weights, window_function

__all__ = ["randomized_expectation", "surrogate_vs_pair_sum"]


def _join(h, c):
    return h if c is None else h.col_join(c)


def surrogate_vs_pair_sum(config, T: int, window, planted: str | None = None, engine: str = "reverse") -> Identity:
    """Gradients w.r.t. every parameter and h0 (c0): surrogate's = pair-sum.

    The surrogate's gradient is taken by ``engine``: "reverse" (reverse mode over the DAG,
    :mod:`.reverse`) or "sympy" (``sympy.diff``, whose cost follows the expression tree).
    planted: "neighbour" — the pair-sum with the neighbouring convention's window
    f(t) − 1 (clipped at 0), as when a sliding window's k is off by one.
    """
    check_single_layer(config)
    T = check_int("T", T, minimum=1)
    check_choice("planted", planted, (None, "neighbour"))
    check_choice("engine", engine, ("reverse", "sympy"))
    f = window_function(window, T)
    P, H = state_sizes(config)
    p = param_symbols(config)
    theta = sp.Matrix([s for m in p.values() for s in m])
    xs = [vector_symbols("x", config.input_size, t) for t in range(T)]
    h0 = vector_symbols("h^{0}", P)
    c0 = vector_symbols("c^{0}", H) if H else None
    G = [vector_symbols("g", P, t) for t in range(T)]
    # The true trajectory, as nested expressions.
    true = [(h0, c0)]
    for t in range(T):
        true.append(step(config, p, xs[t], *true[-1]))
    frozen = {j: (vector_symbols("K", P, j), vector_symbols("M", H, j) if H else None) for j in set(f) if j > 0}
    # Surrogate loss: loss t sees only the steps f(t)..t; the state before is a constant.
    L = sp.S.Zero
    for t in range(T):
        state = true[0] if f[t] == 0 else frozen[f[t]]
        for j in range(f[t], t + 1):
            state = step(config, p, xs[j], *state)
        L += (G[t].T * state[0])[0, 0]
    init = _join(h0, c0)
    wrt = list(theta) + list(init)
    unfreeze = {}
    for j, (K, M) in frozen.items():
        unfreeze.update(zip(K, true[j][0]))
        if M is not None:
            unfreeze.update(zip(M, true[j][1]))
    if engine == "sympy":
        derivatives = [L.diff(v) for v in wrt]
    else:
        derivatives = reverse_gradient(L, wrt)
    surrogate = sp.Matrix(substitute(derivatives, unfreeze))
    # Pair-sum from SymPy's one-step Jacobians at the true states.
    hs, cs = vector_symbols("h", P), vector_symbols("c", H) if H else None
    xsym = vector_symbols("x", config.input_size)
    s_sym = _join(hs, cs)
    s_new = _join(*step(config, p, xsym, hs, cs))
    Js, Jt = s_new.jacobian(s_sym), s_new.jacobian(theta)
    at = []
    for j in range(T):
        sub = dict(zip(s_sym, _join(*true[j])))
        sub.update(zip(xsym, xs[j]))
        at.append((Js.xreplace(sub), Jt.xreplace(sub)))
    fw = f if planted is None else [max(0, v - 1) for v in f]
    W = pair_weights(T, fw)
    pairs = sp.zeros(1, len(wrt))
    for t in range(T):
        v = G[t].T.row_join(sp.zeros(1, H))
        for s in range(t, -1, -1):
            if W[t, s + 1]:
                pairs[:, : len(theta)] += v * at[s][1]
            v = v * at[s][0]
        if W[t, 0]:
            pairs[:, len(theta) :] += v
    return Identity(
        "truncated gradient (surrogate) = pair-sum with f",
        f"{config.describe()}, T={T}, f={f}",
        surrogate,
        pairs.T,
    )


def randomized_expectation(T: int, estimator: str = "compensated") -> Identity:
    """E_ξ of the randomized estimator = full BPTT, over generic C[t,s] (s = −1: the h0 path).

    estimator: "compensated" (ξ_j = 1/π_j w.p. π_j, else 0: unbiased), "uncompensated"
    (ξ_j = 1 w.p. π_j: biased), "shared_coin" (one ξ for every step: biased, E[ξ^m] = π^(1−m)).
    """
    T = check_int("T", T, minimum=1)
    check_choice("estimator", estimator, ("compensated", "uncompensated", "shared_coin"))
    pi = [sp.Symbol(f"pi_{j}", positive=True) for j in range(T)]
    C = {(t, s): sp.Symbol(f"C_{{{t},{s}}}") for t in range(T) for s in range(-1, t + 1)}
    full = sp.Add(*C.values())

    def estimate(xi):
        return sp.Add(*[sp.Mul(*xi[s + 1 : t + 1]) * c for (t, s), c in C.items()])

    expectation = sp.S.Zero
    if estimator == "shared_coin":
        expectation = pi[0] * estimate([1 / pi[0]] * T) + (1 - pi[0]) * estimate([0] * T)
    else:
        for kept in itertools.product((0, 1), repeat=T):
            prob = sp.Mul(*[pi[j] if k else 1 - pi[j] for j, k in enumerate(kept)])
            keep = (lambda j: 1 / pi[j]) if estimator == "compensated" else (lambda j: 1)
            expectation += prob * estimate([keep(j) if k else 0 for j, k in enumerate(kept)])
    return Identity(f"E[randomized estimator] = full BPTT ({estimator})", f"T={T}", sp.cancel(expectation), full)
