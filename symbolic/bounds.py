"""Inequalities and the clipping coefficient (SPEC §5, §6; seeds 000, 003).

Proved symbolically (SymPy decides the sign of a closed form under positivity assumptions):
- :func:`activation_derivative_bounds`: 0 ≤ φ′ ≤ γ for tanh (γ − φ′ = tanh²), sigmoid
  (γ − φ′ = (σ − ½)²), relu (φ′ ∈ {0, 1}), identity;
- :func:`scalar_vanishing_bound`: for the scalar Elman RNN and each fixed n = t − k,
  (γ|w|)^n − |∂h_t/∂h_k| ≥ 0, writing φ′_j = γ/(1 + r_j) with r_j ≥ 0;
- :func:`clipped_norm_bound`: torch's ``c = min(M/(‖g‖ + 1e-6), 1)`` gives ‖c·g‖ ≤ M in both
  branches, hence seed 000's ``|f(x) − f(x − η·clip(g))| ≤ L·η·M`` for L-Lipschitz f.
Checked numerically (no symbolic proof attempted): the matrix bound
``‖∂h_t/∂h_k‖₂ ≤ (γ·σ_max(W_hh))^(t−k)`` and the Lipschitz bound for a vector-valued
argument (:func:`check_matrix_vanishing_bound`, :func:`check_lipschitz_bound`).
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from bpttcheck.reference.validation import InvalidArgument, check_choice, check_int

from .identities import Identity

__all__ = [
    "CLIP_EPS",
    "activation_derivative_bounds",
    "check_lipschitz_bound",
    "check_matrix_vanishing_bound",
    "clip_coefficient",
    "clipped_norm_bound",
    "coefficient_identity",
    "scalar_vanishing_bound",
]

#: torch's clip_grad_norm_ adds this to the total norm (SPEC §5).
CLIP_EPS = sp.Rational(1, 10**6)


def activation_derivative_bounds(name: str) -> bool:
    """SymPy proves 0 ≤ φ′ ≤ γ (γ: tanh, relu, identity 1; sigmoid ¼) — True when proved."""
    check_choice("name", name, ("tanh", "relu", "identity", "sigmoid"))
    y = sp.Symbol("y", real=True)  # the activation's value
    if name == "tanh":  # φ′ = 1 − y², |y| < 1 so φ′ > 0; γ − φ′ = y² ≥ 0
        u = sp.Symbol("u", positive=True)  # y² = u/(1+u) < 1
        d = 1 - u / (1 + u)
        return bool(sp.simplify(d).is_positive and sp.simplify(1 - d).is_nonnegative)
    if name == "sigmoid":  # φ′ = y(1 − y) with 0 < y < 1; γ − φ′ = (y − ½)²
        u = sp.Symbol("u", positive=True)  # y = u/(1+u) ∈ (0, 1)
        s = u / (1 + u)
        gap = sp.factor(sp.Rational(1, 4) - y * (1 - y))
        return bool(sp.simplify(s * (1 - s)).is_positive and gap == (2 * y - 1) ** 2 / 4)
    return True  # relu: φ′ ∈ {0, 1}; identity: φ′ = 1 — nothing to prove


def scalar_vanishing_bound(n: int, gamma=1) -> bool:
    """SymPy proves ``(γ|w|)^n − |w|^n·Π_{j≤n} φ′_j ≥ 0`` for 0 < φ′_j ≤ γ (φ′_j = γ/(1+r_j)).

    With the identity ∂h_t/∂h_k = w^n·Π φ′(a_j) (see ``identities.state_jacobian_product``
    at H = 1) this is the scalar vanishing/exploding bound for t − k = n.
    """
    n = check_int("n", n, minimum=1)
    gamma = sp.nsimplify(gamma)
    aw = sp.Symbol("absw", nonnegative=True)
    r = sp.symbols(f"r0:{n}", nonnegative=True)
    d = [gamma / (1 + rj) for rj in r]
    gap = sp.factor(sp.together((gamma * aw) ** n - aw**n * sp.Mul(*d)))
    num, den = sp.fraction(gap)
    return bool(sp.expand(num / (gamma**n * aw**n)).is_nonnegative and den.is_positive)


def clip_coefficient(total, max_norm, eps=CLIP_EPS):
    """torch's coefficient ``min(max_norm / (total + eps), 1)`` (SymPy or numbers)."""
    return sp.Min(max_norm / (total + eps), 1)


def clipped_norm_bound() -> dict[str, bool]:
    """SymPy proves ‖c·g‖ ≤ M in both branches of the coefficient (total n ≥ 0, M > 0).

    clipping (n + ε > M): M − M·n/(n+ε) = M·ε/(n+ε) > 0;
    not clipping (n + ε ≤ M, write M = n + ε + s, s ≥ 0): M − n = ε + s > 0.
    """
    n = sp.Symbol("n", nonnegative=True)
    M, s = sp.Symbol("M", positive=True), sp.Symbol("s", nonnegative=True)
    eps = CLIP_EPS
    clipping = sp.simplify(M - (M / (n + eps)) * n)
    not_clipping = sp.simplify((n + eps + s) - n)
    return {"clipping": bool(clipping.is_positive), "not_clipping": bool(not_clipping.is_positive)}


def coefficient_identity(size: int = 3, planted: str | None = None) -> Identity:
    """For n + ε > M: ‖c·g‖² = (M·n/(n+ε))² with n² = Σ g_i² — the coefficient's formula.

    planted: "no_eps" (c = M/n, what TF/optax do, not torch) must not reduce to zero.
    """
    check_choice("planted", planted, (None, "no_eps"))
    g = sp.symbols(f"g0:{check_int('size', size, minimum=1)}", real=True)
    M = sp.Symbol("M", positive=True)
    n = sp.Symbol("n", positive=True)
    c = M / (n if planted == "no_eps" else n + CLIP_EPS)
    lhs = sp.Add(*[(c * gi) ** 2 for gi in g]).subs(g[0] ** 2, n**2 - sp.Add(*[gi**2 for gi in g[1:]]))
    return Identity("clipping: ‖clip(g)‖ = M·n/(n + 1e-6)", f"{size} entries, clipping branch", sp.together(lhs), (M * n / (n + CLIP_EPS)) ** 2)


def check_matrix_vanishing_bound(config, T: int, rng: np.random.Generator, scale: float = 1.0) -> float:
    """Numerically: max over k < t of ‖∂h_t/∂h_k‖₂ / (γ·σ_max(W_hh))^(t−k) (≤ 1 expected).

    ∂h_t/∂h_k comes from SymPy's step Jacobians evaluated in float64 along a random run.
    """
    from bpttcheck.reference.activations import GAMMA
    from bpttcheck.reference.config import init_params

    from .oracle import flatten_params, step_model
    from .precision import Field

    if config.cell != "rnn":
        raise InvalidArgument(f"config={config.describe()}: expected an Elman RNN (cell='rnn')")
    T = check_int("T", T, minimum=1)
    params = init_params(config, rng, scale=scale)
    model = step_model(config, Field(exact=False, dps=60))
    theta = flatten_params(config, params)
    import mpmath

    s = np.zeros(config.hidden_size)
    jacs = []
    with mpmath.workdps(30):
        for _ in range(T):
            x = rng.standard_normal(config.input_size)
            new, Js, *_ = model([mpmath.mpf(float(v)) for v in x], [mpmath.mpf(float(v)) for v in s], [mpmath.mpf(float(v)) for v in theta])
            s = np.array([float(v) for v in new])
            jacs.append(np.array(Js.tolist(), dtype=float))
    bound = GAMMA[config.nonlinearity] * np.linalg.svd(params["weight_hh_l0"], compute_uv=False)[0]
    worst = 0.0
    for k in range(T):
        J = np.eye(config.hidden_size)
        for t in range(k, T):
            J = jacs[t] @ J
            worst = max(worst, np.linalg.norm(J, 2) / bound ** (t - k + 1))
    return worst


def check_lipschitz_bound(rng: np.random.Generator, L: float = 2.0, max_norm: float = 1.0, eta: float = 0.5, n: int = 200, d: int = 5) -> float:
    """Numerically: max of |f(x) − f(x − η·clip(g))| / (L·η·M) over n random draws (≤ 1).

    f(x) = L·sin(⟨u, x⟩) with ‖u‖ = 1 is L-Lipschitz; g is drawn at every scale so that both
    branches of the coefficient occur.
    """
    worst = 0.0
    for _ in range(n):
        u = rng.standard_normal(d)
        u /= np.sqrt(u @ u)
        x = rng.standard_normal(d)
        g = rng.standard_normal(d) * 10.0 ** rng.uniform(-3, 3)
        total = np.sqrt(g @ g)
        c = min(max_norm / (total + 1e-6), 1.0)
        f = lambda z: L * np.sin(u @ z)  # noqa: E731
        worst = max(worst, abs(f(x) - f(x - eta * c * g)) / (L * eta * max_norm))
    return worst
