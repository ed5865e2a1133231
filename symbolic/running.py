"""First-order running rounding bounds: how far a float64 evaluation can be from the exact value.

The condition scale Σ|terms| (:func:`.polynomial.absolute_terms`) keeps the function atoms
(tanh, σ, relu) whole: it sees cancellation among the products a gradient adds, not inside an
atom's argument. An LSTM's ``tanh(c′)`` with ``c′ = f·c + i·g = −0.152 + 0.138`` carries the
rounding of both products, ~u·0.29 absolute, on a value of 0.014 — twenty times its own
relative rounding — and every product holding that atom inherits it. A *running error bound*
(Wilkinson's; Higham, *Accuracy and Stability of Numerical Algorithms*, §3.3) sees it: each
value carries, next to its exact value, a bound on the absolute error of a float64 evaluation,
propagated forward through every later operation with the absolute value of its local
derivative, plus that operation's own rounding.

The model (first order in u, float64's unit roundoff 2⁻⁵³; every bound is in units of u):

- a sum of k terms, in *any* order: ``Σ e_i + (k − 2)·Σ|terms| + |sum|`` (each of the k − 1
  additions rounds a partial sum, bounded by Σ|terms|, the last one the sum itself; two terms
  round once, at |sum| — cancellation makes that rounding small and the operands' errors large);
- a product of k factors: ``Σ_i e_i·Π_{j≠i}|f_j| + r·|product|``, r the k − 1 multiplications
  less those by a power of two (exact), plus one where a constant is not a float;
- an integer power a^n: ``|n|·|a|^{n−1}·e_a + (|n| − 1)·|a^n|`` (one more for a negative n);
- tanh: ``(1 − t²)·e_a + 4·|t|`` (its own error at most 2 ulp = 4u relative, libm's bound);
  σ: ``σ(1 − σ)·e_a + 4·max(σ, 1 − σ)`` (as ``(1 + tanh(a/2))/2`` — the reference's — its error
  is ≤ 3u absolute; as ``1/(1 + e^{−a})`` — torch's — ≤ σ·(4u(1 − σ) + 2u)); exp, log alike;
- relu: ``e_a`` (1-Lipschitz, exact otherwise; 0 where a < −e_a); relu's step: 0, unless the
  argument's sign is not decided by its bound (``|a| ≤ e_a``): then the jump, 1 = 2⁵³ u, whole.

The data (weights, inputs, initial states, cotangent) are floats, exact. The bound is of the
computation as written — the cell equations and the chain of step Jacobians of
:func:`.oracle.pair_sum` — and is evaluated in the oracle's number system (mpmath or exact
rationals), so the bound itself carries no rounding.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from .dag import postorder
from .program import BACKENDS, backend_namespace, constant_literal, emit_line

__all__ = [
    "FLIP",
    "FUNCTION_ULPS_IN_U",
    "Accumulator",
    "RunningProgram",
    "add_bound",
    "constant_roundings",
    "dot_bound",
    "pair_bound",
    "scaled_bound",
]

#: own rounding of each library function, in u relative to its value (σ: to max(σ, 1 − σ))
FUNCTION_ULPS_IN_U = {"tanh": 4, "sigmoid": 4, "exp": 4, "log": 4}
#: a jump of 1 (a branch that may go either way) in units of float64's u
FLIP = 2**53


def constant_roundings(c) -> int:
    """Roundings of multiplying by the constant ``c``: 0 for ±2^k (exact), 1 for another float,
    2 for a number that is not a float (its own rounding, then the product's)."""
    if hasattr(c, "man"):  # mpmath mpf: man·2^exp with an odd mantissa
        p, q = int(c.man), 1
    else:
        c = sp.Rational(c)
        p, q = int(c.p), int(c.q)
    if q & (q - 1):  # the denominator is not a power of two
        return 2
    p = abs(p)
    while p and not p & 1:
        p >>= 1
    if p == 1:
        return 0
    return 1 if p.bit_length() <= 53 else 2


# --------------------------------------------------------------------------- per-operation bounds


def add_bound(operands, errors, value):
    k = len(operands)
    out = abs(value)
    if k > 2:
        out = out + (k - 2) * sum(abs(o) for o in operands)
    for e in errors:
        if e:
            out = out + e
    return out


def _mul_bound(factors, errors, value, coefficient, rounded):
    prop, m = 0, len(factors)
    if any(errors):
        if m == 1:
            prop = errors[0]
        elif m == 2:
            prop = errors[0] * abs(factors[1]) + errors[1] * abs(factors[0])
        else:  # Σ_i e_i·Π_{j≠i}|f_j| by prefix and suffix products (a factor may be 0)
            a = [abs(f) for f in factors]
            suffix = [1] * (m + 1)
            for j in range(m - 1, -1, -1):
                suffix[j] = suffix[j + 1] * a[j]
            prefix = 1
            for j in range(m):
                if errors[j]:
                    prop = prop + errors[j] * prefix * suffix[j + 1]
                prefix = prefix * a[j]
    return abs(coefficient) * prop + rounded * abs(value)


def _pow_bound(base, error, value, n):
    if n == "half":  # at 0, √ is not Lipschitz: an uncertain argument counts whole (√(e·u) ≤ 1)
        prop = error / (2 * abs(value)) if value else (FLIP if error else 0)
        return prop + abs(value)
    if n > 0:
        return n * abs(base) ** (n - 1) * error + (n - 1) * abs(value)
    prop = (-n) * abs(value / base) * error if base else 0
    return prop + (-n) * abs(value)


def _tanh_bound(a, error, value):
    return (1 - value * value) * error + FUNCTION_ULPS_IN_U["tanh"] * abs(value)


def _sigmoid_bound(a, error, value):
    return value * (1 - value) * error + FUNCTION_ULPS_IN_U["sigmoid"] * max(value, 1 - value)


# The bounds are in units of u = 1/FLIP: a value is compared with a bound as value·FLIP.


def _relu_bound(a, error, value):
    return error if a * FLIP > -error else 0


def _step_bound(a, error, value):
    return FLIP if error and abs(a) * FLIP <= error else 0


def _exp_bound(a, error, value):
    return abs(value) * (error + FUNCTION_ULPS_IN_U["exp"])


def _log_bound(a, error, value):
    return error / abs(a) + FUNCTION_ULPS_IN_U["log"] * abs(value)


def _abs_bound(a, error, value):
    return error


_FUNCTIONS = {"tanh": _tanh_bound, "sigmoid": _sigmoid_bound, "relu": _relu_bound, "relu_step": _step_bound,
              "exp": _exp_bound, "log": _log_bound, "Abs": _abs_bound}
#: functions that add no rounding of their own: an exact argument gives an exact result
_EXACT_FUNCTIONS = ("relu", "relu_step", "Abs")


class RunningProgram:
    """``RunningProgram(args, exprs, backend, bounded)(values, errors) -> (outputs, bounds)``:
    the expressions' values (as :class:`~.program.Program` computes them) and, for the first
    ``bounded`` of them, the first-order bound on a float64 evaluation's error, in units of u,
    given bounds ``errors`` on the arguments (``exact`` args carry none).

    Every distinct node of the DAG gets a value line and, where a bounded output needs it, a
    bound line (the module's model).
    """

    def __init__(self, args, exprs, backend: str = "mpmath", bounded: int | None = None, exact=()):
        if backend not in BACKENDS[1:]:
            raise ValueError(f"backend={backend!r}: expected 'mpmath' or 'exact' (the bound is evaluated exactly)")
        args = list(args)
        exprs = [sp.sympify(e) for e in exprs]
        self.args, self.exprs = args, exprs
        bounded = len(exprs) if bounded is None else bounded
        exact = set(exact)
        names = {a: f"a{k}" for k, a in enumerate(args)}
        errs = {a: ("0" if a in exact else f"ea{k}") for k, a in enumerate(args)}
        needed = set(postorder(exprs[:bounded]))
        lines: list[str] = []
        namespace = backend_namespace(backend)
        namespace.update({"add_bound": add_bound, "mul_bound": _mul_bound, "pow_bound": _pow_bound,
                          **{f"{k}_bound": f for k, f in _FUNCTIONS.items()}})
        for node in postorder(exprs):
            if node in names:
                continue
            if node.is_Number:
                names[node] = constant_literal(node, backend)
                errs[node] = "0" if constant_roundings(node) < 2 else f"abs({names[node]})"
                continue
            if node.is_Symbol:
                raise ValueError(f"symbol {node} appears in the expressions but not among the arguments")
            names[node] = emit_line(node, [names[a] for a in node.args], lines, namespace)
            if node in needed:
                errs[node] = self._bound_line(node, names, errs, lines)
        self.n_ops = len(lines)
        body = "\n".join(f"    {line}" for line in lines)
        unpack = f"    ({', '.join(names[a] for a in args)},) = values\n" if args else ""
        unpack += f"    ({', '.join(f'ea{k}' for k in range(len(args)))},) = errors\n" if args else ""
        typed = {"mpmath": "mpf({})", "exact": "Rational({})"}[backend]
        outputs = ", ".join(typed.format(names[e]) if e.is_Number else names[e] for e in exprs)
        bounds = ", ".join(errs[e] for e in exprs[:bounded])
        self.source = f"def program(values, errors):\n{unpack}{body}\n    return [{outputs}], [{bounds}]\n"
        exec(compile(self.source, "<bpttcheck.symbolic.running>", "exec"), namespace)  # noqa: S102 - our own code
        self._fn = namespace["program"]

    @staticmethod
    def _bound_line(node, names, errs, lines) -> str:
        ops = [names[a] for a in node.args]
        es = [errs[a] for a in node.args]
        v = names[node]

        def assign(text):
            lines.append(f"e{len(lines)} = {text}")
            return f"e{len(lines) - 1}"

        if node.is_Add:
            return assign(f"add_bound(({', '.join(ops)},), ({', '.join(es)},), {v})")
        if node.is_Mul:
            coefficient = [a for a in node.args if a.is_Number]
            factors = [(n, e) for a, n, e in zip(node.args, ops, es) if not a.is_Number]
            rounded = len(factors) - 1 + sum(constant_roundings(c) for c in coefficient)
            if rounded == 0 and all(e == "0" for _, e in factors):
                return "0"
            c = names[coefficient[0]] if coefficient else "1"
            fs, fe = ", ".join(n for n, _ in factors), ", ".join(e for _, e in factors)
            return assign(f"mul_bound(({fs},), ({fe},), {v}, {c}, {rounded})")
        if node.is_Pow:
            exp = node.exp
            if exp == sp.S.Half:
                n = '"half"'
            elif exp.is_Integer and exp != 0:
                n = str(int(exp))
            else:
                raise NotImplementedError(f"power {node}: the bound knows integer powers and square roots")
            return assign(f"pow_bound({ops[0]}, {es[0]}, {v}, {n})")
        name = node.func.__name__
        if name in _FUNCTIONS and len(ops) == 1:
            if name in _EXACT_FUNCTIONS and es[0] == "0":
                return "0"
            return assign(f"{name}_bound({ops[0]}, {es[0]}, {v})")
        raise NotImplementedError(f"{type(node).__name__} node {node}: no rounding bound for it")

    def __call__(self, values, errors):
        return self._fn(values, errors)


# --------------------------------------------------------------------------- the chain (NumPy object arrays)


def _abs(a) -> np.ndarray:
    out = np.empty(np.shape(a), dtype=object)
    for idx in np.ndindex(*out.shape):
        out[idx] = abs(a[idx])
    return out


def dot_bound(v, ev, J, eJ):
    """``v·J`` (v of n entries, J n×m) and its bound: the operands' bounds through |J| and |v|,
    one rounding per product, and each column's sum of its nonzero products in any order."""
    products = v[:, None] * J
    value = products.sum(axis=0)
    size = _abs(products)
    total = size.sum(axis=0)
    k = np.not_equal(products, 0).sum(axis=0)
    out = ev.dot(_abs(J)) + _abs(v).dot(eJ) + total  # + one rounding per product
    for j in range(out.shape[0]):
        if k[j] >= 2:
            out[j] = out[j] + (k[j] - 2) * total[j] + abs(value[j])
    return value, out


def pair_bound(a, ea, b, eb):
    """``a + b`` elementwise and its bound (one rounding where both are nonzero)."""
    value = a + b
    out = ea + eb
    for idx in np.ndindex(*np.shape(value)):
        if a[idx] != 0 and b[idx] != 0:
            out[idx] = out[idx] + abs(value[idx])
    return value, out


def scaled_bound(w, d, ed):
    """``w·d`` for a weight of the pair table and its bound (``w`` exact: 0/1 windows, or a
    randomized 1/π whose own rounding counts)."""
    r = constant_roundings(w)
    return w * d, abs(w) * ed + (r * _abs(w * d) if r else 0)


class Accumulator:
    """A sum of many terms (over pairs, batch rows and steps), bounded for any order of adding."""

    def __init__(self, shape, zero):
        self.value = np.full(shape, zero, dtype=object)
        self.error = np.full(shape, zero, dtype=object)
        self.size = np.full(shape, zero, dtype=object)
        self.count = np.zeros(shape, dtype=np.int64)

    def add(self, index, term, error) -> None:
        self.value[index] = self.value[index] + term
        self.error[index] = self.error[index] + error
        self.size[index] = self.size[index] + _abs(term)
        self.count[index] = self.count[index] + np.not_equal(term, 0)

    def bound(self) -> np.ndarray:
        out = self.error.copy()
        for idx in np.ndindex(*out.shape):
            k = self.count[idx]
            if k >= 2:
                out[idx] = out[idx] + (k - 2) * self.size[idx] + abs(self.value[idx])
        return out
