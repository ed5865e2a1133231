"""A SymPy derivation of BPTT for teaching: equations, gradients, recursion, closed form.

:func:`derivation` returns LaTeX or Markdown (display math, one equation per block, using only
commands that matplotlib's mathtext also renders). Everything printed is computed: the
gradients are SymPy's derivatives of the unrolled loss (shown after common-subexpression
elimination), and the recursion and closed form are checked against them before printing.
"""

from __future__ import annotations

import sympy as sp

from bpttcheck.reference.cells import CELLS, cell_spec
from bpttcheck.reference.config import RecurrentConfig
from bpttcheck.reference.validation import check_choice, check_int

from .cells import param_symbols, state_sizes, step, vector_symbols
from .identities import reduces_to_zero

__all__ = ["derivation", "equations"]


def _tex(e) -> str:
    return sp.latex(e, mul_symbol="dot").replace(r"\operatorname", r"\mathrm")


def _cell_equations(config) -> list[tuple[str, str]]:
    p = param_symbols(config)
    x = vector_symbols("x", config.input_size, "t")
    P, H = state_sizes(config)
    h = vector_symbols("h", P, "t-1")
    c = vector_symbols("c", H, "t-1") if H else None
    h_new, c_new = step(config, p, x, h, c)
    rows = [(f"h_{{t,{k}}}" if P > 1 else "h_{t}", _tex(e)) for k, e in enumerate(h_new)]
    if c_new is not None:
        rows += [(f"c_{{t,{k}}}" if H > 1 else "c_{t}", _tex(e)) for k, e in enumerate(c_new)]
    return rows


def equations(cell: str = "rnn", nonlinearity: str = "tanh", T: int = 3, hidden: int = 1, inputs: int = 1) -> dict:
    """The pieces of the derivation as (label, LaTeX) lists, keyed by section."""
    from .unroll import gradient, unroll

    check_choice("cell", cell, CELLS)
    T = check_int("T", T, minimum=1, maximum=8)
    config = RecurrentConfig(cell, check_int("inputs", inputs, minimum=1), check_int("hidden", hidden, minimum=1), nonlinearity=nonlinearity)
    u = unroll(config, T)
    grads = gradient(u, wrt=[n for n in config.param_shapes() if n.startswith("weight_hh")])
    names = [n for n in grads]
    exprs = [e for n in names for e in grads[n].ravel()]
    reps, reduced = sp.cse(exprs, symbols=sp.numbered_symbols("u_"))
    out = {
        "cell": _cell_equations(config),
        "loss": [("L", r"\sum_{t=0}^{%d} g_{t}^{T} h_{t}" % (T - 1))],
        "where": [(_tex(s), _tex(e)) for s, e in reps],
        "gradient": [],
    }
    k = 0
    for n in names:
        sym = param_symbols(config)[n]
        for idx, s in enumerate(sym):
            out["gradient"].append((r"\frac{\partial L}{\partial %s}" % _tex(s), _tex(reduced[k])))
            k += 1
    out.update(_recursion_and_closed_form(config, T))
    return out


def _recursion_and_closed_form(config, T: int) -> dict:
    """δ_t = ∂L/∂h_t: recursion δ_t = J_{t+1}ᵀ δ_{t+1} + g_t and the closed form
    δ_t = Σ_{i=t}^{T-1} (J_{t+1}ᵀ⋯J_iᵀ) g_i, both checked against SymPy's ∂L/∂h_t."""
    P, H = state_sizes(config)
    p = param_symbols(config)
    if H:  # the LSTM carries (h, c); the teaching text shows the Elman and GRU case
        return {"recursion": [], "closed form": [], "checked": [("", r"\mathrm{(recursion\ shown\ for\ rnn\ and\ gru)}")]}
    t0 = 0
    h = {t0: vector_symbols("h", P, t0)}
    g = {t: vector_symbols("g", P, t) for t in range(T)}
    J = {}
    L = (g[t0].T * h[t0])[0, 0]
    for t in range(t0 + 1, T):
        xt = vector_symbols("x", config.input_size, t)
        h[t] = step(config, p, xt, h[t - 1])[0]
        hs = vector_symbols("s", P)  # J_t = ∂F/∂h at h_{t-1}: differentiate at a symbol, then substitute
        J[t] = step(config, p, xt, hs)[0].jacobian(hs).xreplace(dict(zip(hs, h[t - 1])))
        L += (g[t].T * h[t])[0, 0]
    by_sympy = sp.Matrix([L.diff(s) for s in h[t0]])
    delta = g[T - 1]
    for t in range(T - 2, t0 - 1, -1):
        delta = J[t + 1].T * delta + g[t]
    closed = sp.zeros(P, 1)
    for i in range(t0, T):
        prod = sp.eye(P)
        for j in range(t0 + 1, i + 1):
            prod = prod * J[j].T
        closed += prod * g[i]
    ok = reduces_to_zero(by_sympy - delta) and reduces_to_zero(delta - closed)
    recursion = [(r"\delta_{t}", r"J_{t+1}^{T} \delta_{t+1} + g_{t},\quad \delta_{%d} = g_{%d}" % (T - 1, T - 1))]
    hg = vector_symbols("h", P, "t-1")
    Jg = step(config, p, vector_symbols("x", config.input_size, "t"), hg)[0].jacobian(hg)
    recursion.append((r"J_{t} = \frac{\partial h_{t}}{\partial h_{t-1}}", _tex(Jg if P > 1 else Jg[0, 0])))
    closed_form = [(r"\delta_{t}", r"\sum_{i=t}^{%d} \left(\prod_{j=t+1}^{i} J_{j}^{T}\right) g_{i}" % (T - 1))]
    if config.cell == "rnn":
        closed_form.append((r"J_{j}", r"\mathrm{diag}(\phi'(a_{j}))\, W_{hh}\quad (\mathrm{seed\ 003})"))
    checked = [("", r"\mathrm{SymPy:}\ \partial L/\partial h_{0} - \mathrm{recursion} = 0,\ \mathrm{recursion} - \mathrm{closed\ form} = 0"
                if ok else r"\mathrm{CHECK\ FAILED}")]
    return {"recursion": recursion, "closed form": closed_form, "checked": checked}


def derivation(cell: str = "rnn", nonlinearity: str = "tanh", T: int = 3, hidden: int = 1, inputs: int = 1, fmt: str = "markdown") -> str:
    """The derivation as a LaTeX fragment (``fmt="latex"``) or Markdown with $$…$$ blocks."""
    check_choice("fmt", fmt, ("latex", "markdown"))
    parts = equations(cell, nonlinearity, T, hidden, inputs)
    takes = cell_spec(cell).takes_nonlinearity
    title = f"BPTT for {cell}" + (f" ({nonlinearity})" if takes else "") + f", T = {T}, hidden = {hidden}, input = {inputs}"
    heads = {
        "cell": "Cell equations (PyTorch's layout)",
        "loss": "Unrolled loss (g_t: the cotangent of the output at step t)",
        "where": "Common subexpressions (SymPy cse of the gradients)",
        "gradient": "Gradients of the recurrent weight, by differentiating the unrolled loss (reverse mode over its DAG; equal to SymPy's diff)",
        "recursion": "The recursion for delta_t = dL/dh_t",
        "closed form": "The closed form",
        "checked": "Checked",
    }
    lines = []
    if fmt == "markdown":
        lines.append(f"# {title}\n")
    else:
        lines.append(f"% {title}\n\\section*{{{title}}}\n")
    for key, head in heads.items():
        rows = parts.get(key) or []
        if not rows:
            continue
        lines.append(f"## {head}\n" if fmt == "markdown" else f"\\subsection*{{{head}}}\n")
        for lhs, rhs in rows:
            eq = f"{lhs} = {rhs}" if lhs else rhs
            lines.append(f"$$ {eq} $$\n" if fmt == "markdown" else f"\\[ {eq} \\]\n")
    return "\n".join(lines)
