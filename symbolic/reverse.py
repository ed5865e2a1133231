"""Reverse-mode differentiation of SymPy expressions over their DAG.

SymPy's ``diff`` differentiates an expression tree: the derivative of a state shared by every
later step is recomputed at each of its (exponentially many, in T) occurrences. Here each
distinct subexpression is visited once, children after parents (reverse topological order),
and its adjoint — the derivative of the output with respect to it — is the sum over its
parents of ``adjoint(parent) · ∂parent/∂node``. The result is an exact SymPy expression whose
subexpressions are shared, of size linear in the DAG.

Nothing here knows about recurrent networks. The local derivatives are the elementary rules
of the node types SymPy builds: ``Add`` (1), ``Mul`` (the product of the other factors),
``Pow`` (``e·b^(e−1)``, ``b^e·log b``); an applied function's partial derivative is its own
``fdiff`` — SymPy's rule for tanh, exp, … and ours for σ, relu (see :mod:`.functions`); any
other node is differentiated by SymPy with the argument replaced by a dummy symbol. The
results equal SymPy's ``diff`` as functions (``tests/test_symbolic_reverse.py`` checks it
by exact expansion on every cell); their form differs (shared, not expanded).
"""

from __future__ import annotations

import numbers

import sympy as sp

from bpttcheck.reference.validation import fail

from .dag import postorder

__all__ = ["gradient", "jacobian"]


def _partial(node, i: int):
    """∂node/∂node.args[i], the other arguments held."""
    args = node.args
    if node.is_Add:
        return sp.S.One
    if node.is_Mul:
        return sp.Mul(*args[:i], *args[i + 1 :])
    if node.is_Pow:
        base, exp = args
        return exp * base ** (exp - 1) if i == 0 else node * sp.log(base)
    if isinstance(node, sp.Function):
        return node.fdiff(i + 1)
    d = sp.Dummy("d")  # any other node: SymPy's derivative in that argument alone
    return node.func(*args[:i], d, *args[i + 1 :]).diff(d).xreplace({d: args[i]})


class _Graph:
    """The DAG below some outputs, the nodes that depend on the variables, and the local
    partial derivatives (built once, shared by every output's reverse sweep)."""

    def __init__(self, outputs, wrt):
        self.wrt = set(wrt)
        self.order = postorder(outputs)
        self.depends: dict = {}
        for node in self.order:
            self.depends[node] = node in self.wrt or any(self.depends[a] for a in node.args)
        self._partials: dict = {}

    def partial(self, node, i: int):
        key = (node, i)
        if key not in self._partials:
            self._partials[key] = _partial(node, i)
        return self._partials[key]

    def sweep(self, output, seed=sp.S.One) -> dict:
        """{variable: ∂(seed·output)/∂variable} for the variables the output depends on."""
        if not self.depends.get(output):
            return {}
        reach = set(postorder([output]))
        terms: dict = {output: [seed]}
        grads = {}
        for node in reversed(self.order):
            if node not in reach:
                continue
            parts = terms.pop(node, None)
            if not parts:
                continue
            adjoint = parts[0] if len(parts) == 1 else sp.Add(*parts)
            if adjoint is sp.S.Zero:
                continue
            if node in self.wrt:
                grads[node] = adjoint
                continue
            for i, arg in enumerate(node.args):
                if not self.depends[arg]:
                    continue
                local = self.partial(node, i)
                if local is sp.S.Zero:
                    continue
                terms.setdefault(arg, []).append(adjoint if local is sp.S.One else adjoint * local)
        return grads


def _check_expression(name, expr) -> None:
    if isinstance(expr, (str, bytes)) or not isinstance(expr, (sp.Basic, numbers.Number)):
        fail(name, expr, "a SymPy expression (a string is not parsed here: build it with sympy.Symbol)")


def _check_symbols(wrt) -> list:
    if isinstance(wrt, (str, bytes, sp.Basic)) or not isinstance(wrt, (list, tuple, sp.MatrixBase)):
        fail("wrt", wrt, "a list (or Matrix) of SymPy symbols")
    wrt = list(wrt)
    for i, v in enumerate(wrt):
        if not isinstance(v, sp.Symbol):
            fail(f"wrt[{i}]", v, "a SymPy Symbol (differentiate with respect to symbols only)")
    return wrt


def gradient(expr, wrt) -> list:
    """``[∂expr/∂v for v in wrt]`` (v: symbols) by one reverse sweep over the DAG."""
    _check_expression("expr", expr)
    wrt = _check_symbols(wrt)
    grads = _Graph([sp.sympify(expr)], wrt).sweep(sp.sympify(expr))
    return [grads.get(v, sp.S.Zero) for v in wrt]


def jacobian(outputs, wrt) -> sp.Matrix:
    """``∂outputs_i/∂wrt_j`` (outputs: expressions or a column matrix; wrt: symbols), one
    reverse sweep per output over the shared DAG; the same as ``Matrix.jacobian``."""
    if isinstance(outputs, (str, bytes)) or not isinstance(outputs, (list, tuple, sp.MatrixBase)):
        fail("outputs", outputs, "a list of SymPy expressions or a column Matrix")
    for i, e in enumerate(outputs):
        _check_expression(f"outputs[{i}]", e)
    outputs = [sp.sympify(e) for e in outputs]
    wrt = _check_symbols(wrt)
    graph = _Graph(outputs, wrt)
    rows = []
    for e in outputs:
        grads = graph.sweep(e)
        rows.append([grads.get(v, sp.S.Zero) for v in wrt])
    return sp.Matrix(len(outputs), len(wrt), lambda i, j: rows[i][j])
