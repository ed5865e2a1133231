"""The DAG engines: reverse mode = SymPy's diff, straight-line programs, polynomial zero test."""

import mpmath
import numpy as np
import pytest
import sympy as sp

from bpttcheck.reference import RecurrentConfig
from bpttcheck.symbolic import dag, polynomial, reverse
from bpttcheck.symbolic.functions import relu, sigmoid, tanh
from bpttcheck.symbolic.identities import reduces_to_zero
from bpttcheck.symbolic.program import Program
from bpttcheck.symbolic.unroll import gradient, unroll

pytestmark = pytest.mark.symbolic


def _engines_agree(config, T, B=1) -> bool:
    u = unroll(config, T, B)
    a, b = gradient(u), gradient(u, engine="sympy")
    assert a.keys() == b.keys()
    return all(reduces_to_zero(sp.Matrix(list(a[k].ravel())) - sp.Matrix(list(b[k].ravel()))) for k in a)


ENGINE_CASES = [
    (RecurrentConfig("rnn", 1, 2), 2, 1),
    (RecurrentConfig("lstm", 1, 2, proj_size=1), 1, 1),
    pytest.param(RecurrentConfig("rnn", 2, 2), 2, 2, marks=pytest.mark.slow),
    pytest.param(RecurrentConfig("rnn", 1, 2, nonlinearity="relu"), 3, 1, marks=pytest.mark.slow),
    pytest.param(RecurrentConfig("rnn", 1, 1, nonlinearity="sigmoid", num_layers=2), 2, 1, marks=pytest.mark.slow),
    pytest.param(RecurrentConfig("lstm", 1, 1), 2, 1, marks=pytest.mark.slow),
    pytest.param(RecurrentConfig("gru", 1, 1), 2, 1, marks=pytest.mark.slow),
    pytest.param(RecurrentConfig("rnn", 1, 1, nonlinearity="identity", bias=False), 4, 2, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("config,T,B", ENGINE_CASES, ids=lambda v: v.describe() if hasattr(v, "describe") else str(v))
def test_reverse_mode_equals_sympy_diff(config, T, B):
    """Every gradient of the unrolled loss, reverse mode minus SymPy's diff, expands to 0."""
    assert _engines_agree(config, T, B)


def test_planted_wrong_product_rule_is_caught(monkeypatch):
    """A reverse mode that drops all but one other factor of a product must disagree."""
    right = reverse._partial

    def wrong(node, i):
        if node.is_Mul and len(node.args) > 2:
            others = [a for k, a in enumerate(node.args) if k != i and not a.is_Number]
            return others[0]
        return right(node, i)

    monkeypatch.setattr(reverse, "_partial", wrong)
    assert not _engines_agree(RecurrentConfig("lstm", 1, 1), 1)


def test_jacobian_matches_matrix_jacobian():
    x, y = sp.symbols("x y")
    outputs = sp.Matrix([tanh(x * y + sigmoid(x)) ** 2, relu(x) * y, sp.exp(x) / y])
    J = reverse.jacobian(outputs, [x, y])
    assert reduces_to_zero(J - outputs.jacobian([x, y]))
    assert reverse.gradient(x * y, [x, y, sp.Symbol("z")]) == [y, x, 0]


def test_dag_walks_each_shared_node_once():
    x = sp.Symbol("x")
    e = x
    for _ in range(40):  # tree size 2^40: only a DAG walk finishes
        e = tanh(e * x + e)
    order = dag.postorder([e])
    position = {node: k for k, node in enumerate(order)}
    assert all(position[a] < position[node] for node in order for a in node.args)  # children first
    assert order[-1] == e and len(order) == dag.dag_size([e]) < 200
    assert dag.tree_size([e]) > 2**40
    small = tanh(tanh(x) * tanh(x) + x)
    assert dag.substitute([small], {tanh(x): sp.Symbol("t")}) == [small.xreplace({tanh(x): sp.Symbol("t")})]
    assert dag.substitute([small * x], {x: sp.Integer(0)}) == [0]


def test_program_evaluates_in_each_number_system():
    x, y = sp.symbols("x y")
    long_sum = sp.Add(*[sp.Rational(1, k) * x**k for k in range(1, 100)])  # longer than one line's chunk
    exprs = [long_sum, tanh(x) * y + sp.Rational(1, 3), relu(x - y), sp.S.Zero, 1 / (x + y)]
    exact = Program([x, y], exprs, "exact")(sp.Rational(1, 2), sp.Rational(3, 4))
    assert exact[0] == long_sum.subs(x, sp.Rational(1, 2)) and exact[2] == 0 and exact[4] == sp.Rational(4, 5)
    assert isinstance(exact[3], sp.Rational)
    with mpmath.workdps(60):
        vals = Program([x, y], exprs, "mpmath")(mpmath.mpf(1) / 2, mpmath.mpf(3) / 4)
        assert abs(vals[1] - (mpmath.tanh(mpmath.mpf(1) / 2) * 0.75 + mpmath.mpf(1) / 3)) < mpmath.mpf(10) ** -58
        assert abs(vals[0] - sum(mpmath.mpf(1) / k / 2**k for k in range(1, 100))) < mpmath.mpf(10) ** -58
    floats = Program([x, y], exprs, "numpy")(0.5, 0.75)
    assert np.isclose(floats[1], np.tanh(0.5) * 0.75 + 1 / 3, rtol=1e-15) and floats[3] == 0.0


def test_program_rejects_a_symbol_that_is_not_an_argument():
    x, y = sp.symbols("x y")
    with pytest.raises(ValueError, match="symbol y"):
        Program([x], [x * y])
    with pytest.raises(ValueError, match="backend='torch'"):
        Program([x], [x], "torch")


def test_polynomial_zero_test_is_exact():
    x, y = sp.symbols("x y")
    a = tanh(x + y)
    assert polynomial.is_zero_polynomial([(a + y) ** 2 - a**2 - 2 * a * y - y**2])
    assert not polynomial.is_zero_polynomial([(a + y) ** 2 - a**2 - y**2])
    assert not polynomial.is_zero_polynomial([sp.Rational(1, 10**30) * x * a])  # tiny, not zero
    assert polynomial.is_zero_polynomial([x / 2 + x / 2 - x])
    assert polynomial.is_zero_polynomial([1 / x - 1 / x]) and polynomial.polynomials([1 / (x + y)]) is None


def test_absolute_terms_multiply_out_nested_sums():
    x, w = sp.symbols("x w")
    s = sigmoid(x)
    scale = polynomial.absolute_terms(w * s * (1 - s) * (1 - tanh(x) ** 2))
    at = {x: sp.Rational(1, 2), w: -2}
    expected = 2 * (s + s**2) * (1 + tanh(x) ** 2)  # every product, in absolute value
    assert sp.simplify(scale.subs(at) - sp.expand(expected).subs(at)) == 0
