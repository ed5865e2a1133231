"""Symbolic identities of BPTT, each reduced to zero by SymPy for a fixed size.

Every identity is stated for the fixed T and sizes it is built with — never as a claim about
all T. Derivatives are polynomials in the function atoms (tanh, σ, relu, relu's step) whose
arguments both sides share, so :func:`reduces_to_zero` replaces each atom by a fresh symbol and
expands: the identity holds iff the difference is the zero polynomial. Each builder takes a
``planted`` argument naming a deliberately wrong right-hand side (a transposed factor, a missing
activation derivative, …) that must NOT reduce to zero.

Identities (SPEC §1, §6; seeds 000, 002, 003):
- :func:`seed000_recursion`: the linear RNN's ``∂L/∂h_t`` by SymPy = the recursion
  ``W_hhᵀ ∂L/∂h_{t+1} + W_qhᵀ ∂L/∂o_t`` = the closed form
  ``Σ_{i=t..T} (W_hhᵀ)^{T−i} W_qhᵀ ∂L/∂o_{T+t−i}`` (1-based t as in the seed).
- :func:`state_jacobian_product`: ``∂h_t/∂h_k = Π_{j=t..k+1} diag(φ′(a_j))·W_hh`` (seed 003).
- :func:`lstm_direct_path`: ``∂c_t/∂c_{t−1} = diag(f_t)`` with h_{t−1} held (seed 002), and
  with W_hh = 0, ``∂c_T/∂c_0 = Π diag(f_t)``.
- :func:`lstm_step_jacobian`, :func:`gru_step_jacobian`: the closed-form step Jacobians.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from bpttcheck.reference.validation import check_choice, check_int
from bpttcheck.reference.cells import cell_spec
from bpttcheck.reference.config import RecurrentConfig

from .cells import param_symbols, step, vector_symbols
from .dag import postorder, substitute
from .functions import NONLINEAR_ATOMS, activation, relu_step, sigmoid, tanh
from .polynomial import is_zero_polynomial
from .reverse import jacobian as reverse_jacobian

__all__ = [
    "Identity",
    "atomize",
    "gru_step_jacobian",
    "lstm_direct_path",
    "lstm_step_jacobian",
    "reduces_to_zero",
    "seed000_recursion",
    "state_jacobian_product",
]


@dataclass(frozen=True)
class Identity:
    """``lhs == rhs`` (matrices or scalars) for the sizes in ``statement``."""

    name: str
    statement: str
    lhs: object
    rhs: object

    def difference(self):
        return sp.Matrix(self.lhs) - sp.Matrix(self.rhs) if isinstance(self.lhs, sp.MatrixBase) else self.lhs - self.rhs

    def holds(self) -> bool:
        return reduces_to_zero(self.difference())

    def residual(self):
        """The expanded difference with atoms as symbols (zero iff the identity holds)."""
        return _expand_atomized(self.difference())


def atomize(expr):
    """``expr`` with every tanh/σ/relu/relu-step application replaced by a fresh symbol.

    Applications with equal arguments get the same symbol. Only the outermost applications
    are collected (their arguments are never walked), and each shared subexpression is
    visited once, so this stays linear in the size of the expression's DAG.
    """
    mapping, seen = {}, set()
    stack = list(expr) if isinstance(expr, sp.MatrixBase) else [sp.sympify(expr)]
    while stack:
        e = stack.pop()
        if e in seen:
            continue
        seen.add(e)
        if isinstance(e, NONLINEAR_ATOMS):
            mapping.setdefault(e, sp.Dummy(f"a{len(mapping)}"))
        else:
            stack.extend(e.args)
    if isinstance(expr, sp.MatrixBase):
        return sp.Matrix(expr.shape[0], expr.shape[1], substitute(list(expr), mapping))
    return substitute([sp.sympify(expr)], mapping)[0]


def _normal_form(e):
    # Polynomials cancel under expand; rational functions (1/π, the clipping coefficient)
    # need their terms over a common denominator first, tried only when expand leaves some.
    r = sp.expand(e)
    if r == 0 or not any(p.exp.is_negative for p in r.atoms(sp.Pow)):
        return r  # an expanded polynomial is zero only if it is literally 0
    return sp.cancel(sp.together(r))


def _expand_atomized(expr):
    a = atomize(expr)
    return a.applyfunc(_normal_form) if isinstance(a, sp.MatrixBase) else _normal_form(a)


def reduces_to_zero(expr) -> bool:
    """True iff ``expr`` (scalar or matrix) expands to the zero polynomial, with the function
    atoms as symbols. (A structural test: a nonzero polynomial is never reported as zero.)

    First the atomized expression is evaluated exactly at one rational point: a nonzero value
    proves it is not the zero function (how the planted wrong identities are refuted quickly).
    Only a zero there leads to the full normal form: the sparse polynomial over the DAG
    (:mod:`.polynomial`), or, for rational functions, SymPy's expand and cancel.
    """
    a = atomize(expr)
    if _nonzero_somewhere(a):
        return False
    items = list(a) if isinstance(a, sp.MatrixBase) else [sp.sympify(a)]
    zero = is_zero_polynomial(items)
    if zero is not None:
        return zero
    return all(_normal_form(e) == 0 for e in items)


def _nonzero_somewhere(a) -> bool:
    """Exact value at a fixed pseudo-random point with rational coordinates in [1/7, 2]."""
    items = list(a) if isinstance(a, sp.MatrixBase) else [a]
    symbols = {n for n in postorder([sp.sympify(e) for e in items]) if n.is_Symbol}
    point = {s: sp.Rational(1 + (37 * k) % 13, 7) for k, s in enumerate(sorted(symbols, key=str))}
    for v in substitute([sp.sympify(e) for e in items], point):  # exact, each DAG node once
        if v.is_Number and v != 0 and v.is_finite:
            return True
    return False


# --- seed 000: recursion and closed form of the linear RNN --------------------------------


def seed000_recursion(T: int, hidden: int, outputs: int = 1, planted: str | None = None) -> list[Identity]:
    """For t = 1..T: SymPy's ∂L/∂h_t = recursion, and recursion = closed form.

    ``L = Σ_t ⟨g_t, o_t⟩`` with ``o_t = W_qh h_t``, ``h_t = W_hx x_t + W_hh h_{t−1}`` and
    ``g_t = ∂L/∂o_t`` free symbols. planted: "transposed" (W_hh for W_hhᵀ in the closed form).
    """
    T = check_int("T", T, minimum=1)
    H = check_int("hidden", hidden, minimum=1)
    Q = check_int("outputs", outputs, minimum=1)
    check_choice("planted", planted, (None, "transposed"))
    W = sp.Matrix(H, H, lambda i, j: sp.Symbol(f"W_{{hh,{i}{j}}}"))
    Wq = sp.Matrix(Q, H, lambda i, j: sp.Symbol(f"W_{{qh,{i}{j}}}"))
    Wx = sp.Matrix(H, 1, lambda i, j: sp.Symbol(f"W_{{hx,{i}}}"))
    x = {t: sp.Symbol(f"x_{t}") for t in range(1, T + 1)}
    g = {t: vector_symbols("g", Q, t) for t in range(1, T + 1)}
    rec = {T: Wq.T * g[T]}
    for t in range(T - 1, 0, -1):
        rec[t] = W.T * rec[t + 1] + Wq.T * g[t]
    Wc = W if planted == "transposed" else W.T
    out = []
    for t in range(1, T + 1):
        h_t = vector_symbols("h", H, t)
        h, L = h_t, (g[t].T * Wq * h_t)[0, 0]
        for i in range(t + 1, T + 1):
            h = Wx * x[i] + W * h
            L += (g[i].T * Wq * h)[0, 0]
        by_sympy = sp.Matrix([L.diff(s) for s in h_t])
        closed = sp.zeros(H, 1)
        for i in range(t, T + 1):
            closed += Wc ** (T - i) * Wq.T * g[T + t - i]
        size = f"T={T}, H={H}, Q={Q}, t={t}"
        out.append(Identity("seed000: SymPy ∂L/∂h_t = recursion", size, by_sympy, rec[t]))
        out.append(Identity("seed000: recursion = closed form", size, rec[t], closed))
    return out


# --- seed 003: ∂h_t/∂h_k as a product of diag(φ′)·W factors -------------------------------


def _derivative_of(name: str, a, h):
    """φ′(a) written by hand from h = φ(a) (independently of SymPy's differentiation)."""
    return {"tanh": 1 - h**2, "sigmoid": h * (1 - h), "relu": relu_step(a), "identity": sp.S.One}[name]


def state_jacobian_product(
    T: int, hidden: int, nonlinearity: str = "tanh", k: int = 0, planted: str | None = None, engine: str = "reverse"
) -> Identity:
    """``∂h_T/∂h_k`` = ``Π_{j=T..k+1} diag(φ′(a_j))·W_hh`` for an Elman RNN (1 input), the
    left side differentiated by ``engine``: "reverse" (reverse mode over the DAG) or "sympy"
    (``Matrix.jacobian``; its cost follows the expression tree).

    planted: "transposed" (W_hhᵀ in each factor) or "no_derivative" (diag(φ′) left out).
    """
    T = check_int("T", T, minimum=1)
    k = check_int("k", k, minimum=0, maximum=T - 1)
    check_choice("planted", planted, (None, "transposed", "no_derivative"))
    check_choice("engine", engine, ("reverse", "sympy"))
    config = RecurrentConfig("rnn", 1, check_int("hidden", hidden, minimum=1), nonlinearity=nonlinearity)
    p = param_symbols(config)
    W = p["weight_hh_l0"]
    h_k = vector_symbols("h", config.hidden_size, k)
    h, product = h_k, sp.eye(config.hidden_size)
    for j in range(k + 1, T + 1):
        x = vector_symbols("x", 1, j)
        a = p["weight_ih_l0"] * x + p["bias_ih_l0"] + W * h + p["bias_hh_l0"]
        h = a.applyfunc(lambda e: activation(nonlinearity, e))
        d = sp.diag(*[_derivative_of(nonlinearity, a[i], h[i]) for i in range(config.hidden_size)])
        factor = W.T if planted == "transposed" else W
        product = (factor if planted == "no_derivative" else d * factor) * product
    return Identity(
        "seed003: ∂h_t/∂h_k = Π diag(φ′)·W_hh",
        f"{nonlinearity}, T={T}, k={k}, H={config.hidden_size}",
        h.jacobian(h_k) if engine == "sympy" else reverse_jacobian(h, h_k),
        product,
    )


# --- LSTM and GRU step Jacobians (SPEC §6, seed 002) --------------------------------------


def _step_parts(config):
    p = param_symbols(config)
    P, H = config.output_size, config.hidden_size
    x = vector_symbols("x", config.input_size)
    h = vector_symbols("h", P)
    c = vector_symbols("c", H) if cell_spec(config.cell).has_cell_state else None
    return p, x, h, c


def lstm_direct_path(hidden: int, T: int = 1, planted: str | None = None) -> Identity:
    """T = 1: ``∂c_t/∂c_{t−1} = diag(f_t)`` (h_{t−1} held). T > 1: with W_hh = 0,
    ``∂c_T/∂c_0 = Π_t diag(f_t)``. planted: "input_gate" (diag(i_t) instead)."""
    check_choice("planted", planted, (None, "input_gate"))
    T = check_int("T", T, minimum=1)
    config = RecurrentConfig("lstm", 1, check_int("hidden", hidden, minimum=1))
    p, _, h, c = _step_parts(config)
    H = config.hidden_size
    if T > 1:
        p = dict(p, weight_hh_l0=sp.zeros(4 * H, H))
    c0, state, product = c, (h, c), sp.eye(H)
    for t in range(T):
        x = vector_symbols("x", 1, t)
        a = p["weight_ih_l0"] * x + p["bias_ih_l0"] + p["weight_hh_l0"] * state[0] + p["bias_hh_l0"]
        gate = a[(0 if planted == "input_gate" else H) : (H if planted == "input_gate" else 2 * H), :]
        product = sp.diag(*[sigmoid(e) for e in gate]) * product
        state = step(config, p, x, *state)
    return Identity("seed002: ∂c_t/∂c_{t-1} = diag(f_t)", f"T={T}, H={H}", state[1].jacobian(c0), product)


def lstm_step_jacobian(hidden: int, inputs: int = 1, proj_size: int = 0, planted: str | None = None) -> Identity:
    """``∂(h′, c′)/∂(h, c)`` by SymPy = the closed form through the gates (SPEC §6).

    ∂c′/∂h = diag(c·f(1−f)) W_f + diag(g·i(1−i)) W_i + diag(i(1−g²)) W_g, ∂c′/∂c = diag(f),
    ∂m/∂· = diag(tanh c′·o(1−o)) ∂a_o + diag(o(1−tanh² c′)) ∂c′/∂·, h′ = W_hr m (or m).
    planted: "no_cell_term" (drops the diag(c·f(1−f)) W_f term).
    """
    check_choice("planted", planted, (None, "no_cell_term"))
    config = RecurrentConfig("lstm", inputs, hidden, proj_size=proj_size)
    p, x, h, c = _step_parts(config)
    H = config.hidden_size
    W = p["weight_hh_l0"]
    h_new, c_new = step(config, p, x, h, c)
    a = p["weight_ih_l0"] * x + p["bias_ih_l0"] + W * h + p["bias_hh_l0"]
    blk = lambda m, k: m[k * H : (k + 1) * H, :]  # noqa: E731
    i, f, o = (blk(a, k).applyfunc(sigmoid) for k in (0, 1, 3))
    g = blk(a, 2).applyfunc(tanh)
    tc = c_new.applyfunc(tanh)
    D = lambda v: sp.diag(*v)  # noqa: E731
    one = sp.ones(H, 1)
    dc_dh = D(g.multiply_elementwise(i - i.multiply_elementwise(i))) * blk(W, 0) + D(
        i.multiply_elementwise(one - g.multiply_elementwise(g))
    ) * blk(W, 2)
    if planted != "no_cell_term":
        dc_dh += D(c.multiply_elementwise(f - f.multiply_elementwise(f))) * blk(W, 1)
    dc_dc = D(f)
    carry = D(o.multiply_elementwise(one - tc.multiply_elementwise(tc)))
    dm_dh = D(tc.multiply_elementwise(o - o.multiply_elementwise(o))) * blk(W, 3) + carry * dc_dh
    dm_dc = carry * dc_dc
    Wr = p.get("weight_hr_l0")
    if Wr is not None:
        dm_dh, dm_dc = Wr * dm_dh, Wr * dm_dc
    closed = sp.Matrix(sp.BlockMatrix([[dm_dh, dm_dc], [dc_dh, dc_dc]]))
    s, s_new = h.col_join(c), h_new.col_join(c_new)
    return Identity("SPEC §6: LSTM step Jacobian", f"H={H}, D={inputs}, proj={proj_size}", s_new.jacobian(s), closed)


def gru_step_jacobian(hidden: int, inputs: int = 1, planted: str | None = None) -> Identity:
    """``∂h′/∂h = diag(z) + diag(1−z)·∂n/∂h + diag(h − n)·∂z/∂h`` (SPEC §6), with
    ∂z/∂h = diag(z(1−z)) W_hz, ∂n/∂h = diag(1−n²)[diag(r) W_hn + diag((W_hn h + b_hn) r(1−r)) W_hr].
    planted: "paper_reset" (b_hn outside the reset product, as in the 2014 paper) or
    "no_gate_term" (the diag(h − n) ∂z/∂h term left out)."""
    check_choice("planted", planted, (None, "paper_reset", "no_gate_term"))
    config = RecurrentConfig("gru", inputs, hidden)
    p, x, h, _ = _step_parts(config)
    H = config.hidden_size
    W, b_hh = p["weight_hh_l0"], p["bias_hh_l0"]
    h_new, _ = step(config, p, x, h)
    gi = p["weight_ih_l0"] * x + p["bias_ih_l0"]
    gh = W * h + b_hh
    blk = lambda m, k: m[k * H : (k + 1) * H, :]  # noqa: E731
    r = (blk(gi, 0) + blk(gh, 0)).applyfunc(sigmoid)
    z = (blk(gi, 1) + blk(gh, 1)).applyfunc(sigmoid)
    n = (blk(gi, 2) + r.multiply_elementwise(blk(gh, 2))).applyfunc(tanh)
    D = lambda v: sp.diag(*v)  # noqa: E731
    one = sp.ones(H, 1)
    ghn = blk(W, 2) * h if planted == "paper_reset" else blk(gh, 2)
    dz = D(z - z.multiply_elementwise(z)) * blk(W, 1)
    dn = D(one - n.multiply_elementwise(n)) * (
        D(r) * blk(W, 2) + D(ghn.multiply_elementwise(r - r.multiply_elementwise(r))) * blk(W, 0)
    )
    closed = D(z) + D(one - z) * dn
    if planted != "no_gate_term":
        closed += D(h - n) * dz
    return Identity("SPEC §6: GRU step Jacobian", f"H={H}, D={inputs}", h_new.jacobian(h), closed)


