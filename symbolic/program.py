"""Straight-line programs from SymPy expressions: one assignment per distinct operation.

``lambdify(cse=True)`` prints SymPy expressions to Python after ``sympy.cse``, whose cost (and
that of lambdify's argument renaming, an ``xreplace`` per argument) follows the size of the
expression *tree*. Differentiated unrolled networks are trees exponentially larger than their
DAGs, so :class:`Program` prints the DAG instead (:func:`~.dag.postorder`): every distinct
subexpression becomes one line ``v_k = v_i * v_j`` in a compiled Python function, evaluated in
one of three number systems:

- ``"numpy"`` — float64 (NumPy's tanh; σ as ½ + ½·tanh(a/2), as the reference's float code
  would have it — a further float oracle, never the exact one);
- ``"mpmath"`` — mpmath numbers at the working precision of the caller's ``mpmath.workdps``
  (rational constants are formed at call time, so they carry that precision);
- ``"exact"`` — SymPy's rationals (identity and relu networks: every operation is exact).

The program evaluates the expressions as written; it adds no rounding of its own beyond
the number system's.
"""

from __future__ import annotations

import sympy as sp

from .dag import postorder

__all__ = ["BACKENDS", "Program", "backend_namespace", "constant_literal", "emit_line"]

BACKENDS = ("numpy", "mpmath", "exact")
_CHUNK = 64  # longest sum or product on one line (Python's parser nests binary operators)


def backend_namespace(backend: str) -> dict:
    """The names a program of ``backend`` calls (tanh, sigmoid, relu, …) bound to that number system."""
    from . import functions as F

    if backend == "numpy":
        import numpy as np

        return {"tanh": np.tanh, "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "Abs": np.abs,
                "sign": np.sign, **F.numpy_functions()}
    if backend == "mpmath":
        import mpmath

        return {"tanh": mpmath.tanh, "exp": mpmath.exp, "log": mpmath.log, "sqrt": mpmath.sqrt,
                "Abs": abs, "sign": mpmath.sign, "mpf": mpmath.mpf, **F.mpmath_functions()}
    return {"tanh": F.tanh, "sigmoid": F.sigmoid, "relu": F.relu, "relu_step": F.relu_step, "exp": sp.exp,
            "log": sp.log, "sqrt": sp.sqrt, "Abs": sp.Abs, "sign": sp.sign, "Rational": sp.Rational}


def constant_literal(node, backend: str) -> str:
    """A SymPy number as a literal of ``backend`` (a Float by its exact binary value)."""
    if node.is_Integer:
        return repr(int(node))
    if node.is_Rational:
        p, q = int(node.p), int(node.q)
        return {"numpy": repr(p / q), "mpmath": f"(mpf({p}) / {q})", "exact": f"Rational({p}, {q})"}[backend]
    if node.is_Float:
        r = sp.Rational(node)  # the Float's exact binary value
        return constant_literal(r, backend)
    raise NotImplementedError(f"constant {node!r} ({type(node).__name__}): expected an integer, rational or float")


def _typed(literal: str, backend: str) -> str:
    """A constant output as a number of the backend's kind (not a bare Python int)."""
    return {"numpy": f"float({literal})", "mpmath": f"mpf({literal})", "exact": f"Rational({literal})"}[backend]


def emit_line(node, operands, lines, namespace) -> str:
    """Append the line computing ``node`` from its operands' names to ``lines``; its name."""

    def assign(text):
        lines.append(f"v{len(lines)} = {text}")
        return f"v{len(lines) - 1}"

    if node.is_Add or node.is_Mul:
        op = " + " if node.is_Add else " * "
        while len(operands) > _CHUNK:
            operands = [assign(op.join(operands[k : k + _CHUNK])) for k in range(0, len(operands), _CHUNK)]
        return assign(op.join(operands))
    if node.is_Pow:
        base, exp = operands
        if node.exp == sp.S.Half:
            return assign(f"sqrt({base})")
        return assign(f"{base} ** {exp}")
    name = node.func.__name__
    if isinstance(node, sp.Function) and name in namespace:
        return assign(f"{name}({', '.join(operands)})")
    raise NotImplementedError(f"{type(node).__name__} node {node}: no rule to print it")


class Program:
    """``Program(args, exprs, backend)(*values) -> list``: the expressions' values at ``args =
    values``, by straight-line code over their DAG. ``n_ops`` counts its operations."""

    def __init__(self, args, exprs, backend: str = "numpy"):
        if backend not in BACKENDS:
            raise ValueError(f"backend={backend!r}: expected one of {BACKENDS}")
        self.backend = backend
        args = list(args)
        exprs = [sp.sympify(e) for e in exprs]
        names = {a: f"a{k}" for k, a in enumerate(args)}
        lines: list[str] = []
        namespace = backend_namespace(backend)
        for node in postorder(exprs):
            if node in names:
                continue
            if node.is_Number:
                names[node] = constant_literal(node, backend)
            elif node.is_Symbol:
                raise ValueError(f"symbol {node} appears in the expressions but not among the arguments")
            else:
                names[node] = emit_line(node, [names[a] for a in node.args], lines, namespace)
        self.n_ops = len(lines)
        body = "\n".join(f"    {line}" for line in lines)
        unpack = f"    ({', '.join(names[a] for a in args)},) = values\n" if args else ""
        outputs = ", ".join(_typed(names[e], backend) if e.is_Number else names[e] for e in exprs)
        source = f"def program(values):\n{unpack}{body}\n    return [{outputs}]\n"
        self.source = source
        exec(compile(source, "<bpttcheck.symbolic.program>", "exec"), namespace)  # noqa: S102 - our own code
        self._fn = namespace["program"]

    def __call__(self, *values) -> list:
        return self._fn(values)
