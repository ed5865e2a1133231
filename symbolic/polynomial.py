"""Exact polynomial normal forms of expressions over their DAG, with function atoms as variables.

The identities of :mod:`.identities` are polynomial identities in the parameters, inputs and
the *function atoms* (tanh, σ, relu, relu's step applied to some argument; equal arguments
give the same atom). ``sympy.expand`` decides them by expanding the expression tree, whose size
is exponential in T for shared states, and rebuilds canonical SymPy objects at every step.

:func:`polynomials` instead converts each distinct subexpression once (memoized on the DAG)
into SymPy's sparse polynomial ring over the rationals (``sympy.polys.rings``, dicts of exponent
tuples to exact rational coefficients), summing and multiplying there. The sparse form is
canonical, so a polynomial is zero iff its dict is empty — the same structural zero test as
``expand(e) == 0``, never reporting a nonzero polynomial as zero.

Atoms are collected from the outside in: an atom's argument is not looked into (the two
sides of an identity share their atoms' arguments; a true identity whose sides built equal
atoms from differently written arguments would be reported as not holding, never the reverse).
Expressions with negative powers or other functions are not polynomials: :func:`polynomials`
returns None for them and the caller falls back to SymPy's rational-function normal form.
"""

from __future__ import annotations

import sympy as sp

__all__ = ["absolute_terms", "atoms_and_symbols", "is_zero_polynomial", "polynomials"]


def _is_atom(node) -> bool:
    from .functions import NONLINEAR_ATOMS

    return isinstance(node, NONLINEAR_ATOMS)


def atoms_and_symbols(exprs) -> list:
    """The polynomial variables of ``exprs``: free symbols and outermost function atoms, in
    the order a depth-first walk meets them (deterministic for given expressions)."""
    seen, found = set(), []
    stack = list(reversed(exprs))
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if node.is_Symbol or _is_atom(node):
            found.append(node)
        else:
            stack.extend(reversed(node.args))
    return found


class _NotPolynomial(Exception):
    pass


def polynomials(exprs):
    """Each expression as an element of ``QQ[variables]`` (``sympy.polys.rings``), or None
    when some node is not a polynomial operation (a negative or symbolic power, an unknown
    function)."""
    from sympy.polys.domains import QQ, ZZ
    from sympy.polys.rings import ring

    exprs = [sp.sympify(e) for e in exprs]
    variables = atoms_and_symbols(exprs) or [sp.Dummy("one")]
    # Integer coefficients first (Python ints, several times faster than exact fractions);
    # the rationals when some constant is not an integer.
    for domain in (ZZ, QQ):
        R, *gens = ring([sp.Dummy(f"v{k}") for k in range(len(variables))], domain)
        try:
            return [_convert(e, dict(zip(variables, gens)), R) for e in exprs]
        except _NotInteger:
            continue
        except _NotPolynomial:
            return None
    raise AssertionError("unreachable: every rational is in QQ")  # pragma: no cover


class _NotInteger(Exception):
    pass


def _convert(root, value: dict, R):
    from sympy.polys.domains import QQ, ZZ

    stack = [root]
    while stack:
        node = stack[-1]
        if node in value:
            stack.pop()
            continue
        pending = [a for a in node.args if a not in value]
        if pending and not node.is_Number:
            stack.extend(pending)
            continue
        stack.pop()
        if node.is_Rational:
            if R.domain == ZZ and node.q != 1:
                raise _NotInteger(node)
            value[node] = R(int(node.p)) if node.q == 1 else R(QQ(int(node.p), int(node.q)))
        elif node.is_Add:
            value[node] = sum((value[a] for a in node.args[1:]), value[node.args[0]])
        elif node.is_Mul:  # smallest factors first: the intermediate products stay small
            factors = sorted((value[a] for a in node.args), key=len)
            out = factors[0]
            for f in factors[1:]:
                out = out * f
            value[node] = out
        elif node.is_Pow and node.exp.is_Integer and node.exp >= 0:
            value[node] = value[node.base] ** int(node.exp)
        else:
            raise _NotPolynomial(node)
    return value[root]


def is_zero_polynomial(exprs) -> bool | None:
    """True iff every expression is the zero polynomial in its atoms and symbols; None when
    some expression is not a polynomial (see :func:`polynomials`)."""
    polys = polynomials(exprs)
    return None if polys is None else all(not p for p in polys)


def absolute_terms(expr):
    """``Σ |c|·Π|v|^k`` over the monomials ``c·Π v^k`` of ``expr`` fully expanded (function
    atoms kept whole, as variables): the sum of the absolute values of the products whose sum
    ``expr`` is — nested sums such as ``σ(1 − σ)`` inside a product are multiplied out too, so
    that cancellation anywhere inside the expression counts. Falls back to the terms of
    SymPy's expansion for an expression that is not a polynomial in its atoms."""
    expr = sp.sympify(expr)
    variables = atoms_and_symbols([expr])
    polys = polynomials([expr])
    if polys is None:
        return sp.Add(*[sp.Abs(t) for t in sp.Add.make_args(sp.expand(expr, deep=False))])
    size = [sp.Abs(v) for v in variables]
    terms = []
    for monom, coeff in polys[0].terms():
        c = sp.Rational(int(coeff.numerator), int(coeff.denominator)) if hasattr(coeff, "denominator") else sp.Integer(int(coeff))
        terms.append(sp.Mul(abs(c), *[size[i] ** k for i, k in enumerate(monom) if k]))
    return sp.Add(*terms)
