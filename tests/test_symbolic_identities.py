"""Symbolic identities (each for the fixed sizes it is built with) and their planted wrong twins.

Default run: T ≤ 3, sizes ≤ 2. The slow run (``-m slow``) covers every T ≤ 6 and sizes ≤ 3
where SymPy finishes within minutes; see the README's symbolic section for the exact grid.
"""

import numpy as np
import pytest

from bpttcheck.reference import RecurrentConfig
from bpttcheck.symbolic import bounds
from bpttcheck.symbolic import identities as I

pytestmark = pytest.mark.symbolic


def _sizes(fast, slow):
    return [*fast, *(pytest.param(*s, marks=pytest.mark.slow) for s in slow)]


@pytest.mark.parametrize("T,H", _sizes([(1, 1), (2, 2), (3, 2)], [(T, H) for T in range(1, 7) for H in (1, 2, 3) if T > 3 or H > 2]))
def test_seed000_recursion_and_closed_form(T, H):
    for identity in I.seed000_recursion(T, H, outputs=2):
        assert identity.holds(), (identity.name, identity.statement)


@pytest.mark.parametrize("T,H", _sizes([(2, 2), (3, 2)], [(T, H) for T in range(2, 7) for H in (2, 3) if T > 3 or H > 2]))
def test_seed000_planted_transposed_closed_form_is_not_zero(T, H):
    wrong = [i for i in I.seed000_recursion(T, H, outputs=2, planted="transposed") if "closed" in i.name]
    assert not all(i.holds() for i in wrong)  # W_hh in place of W_hhᵀ differs once W_hh² appears


NONLIN = ["tanh", "relu", "identity", "sigmoid"]


@pytest.mark.parametrize("nonlinearity", NONLIN)
@pytest.mark.parametrize("T,H", _sizes([(3, 2)], [(1, 2), (4, 1), (5, 1), (6, 1), (4, 2), (5, 2), (6, 2), (4, 3), (5, 3),
                                              (6, 3), (8, 2), (7, 3), (4, 4)]))
def test_seed003_state_jacobian_is_product_of_factors(nonlinearity, T, H):
    assert I.state_jacobian_product(T, H, nonlinearity).holds()
    assert I.state_jacobian_product(T, H, nonlinearity, k=T - 1).holds()


@pytest.mark.parametrize("nonlinearity", NONLIN)
def test_seed003_with_sympys_own_jacobian(nonlinearity):
    """The left side by ``Matrix.jacobian`` itself (the default is reverse mode over the DAG)."""
    assert I.state_jacobian_product(3, 2, nonlinearity, engine="sympy").holds()
    assert not I.state_jacobian_product(2, 2, nonlinearity, planted="transposed", engine="sympy").holds()


@pytest.mark.parametrize("nonlinearity", NONLIN)
def test_seed003_planted_wrong_factors_are_not_zero(nonlinearity):
    assert not I.state_jacobian_product(2, 2, nonlinearity, planted="transposed").holds()
    if nonlinearity != "identity":  # φ′ = 1: leaving it out changes nothing
        assert not I.state_jacobian_product(2, 2, nonlinearity, planted="no_derivative").holds()


@pytest.mark.parametrize("H,T", _sizes([(1, 1), (2, 1), (2, 3)], [(3, 1), (3, 4), (2, 6)]))
def test_lstm_direct_cell_path(H, T):
    assert I.lstm_direct_path(H, T).holds()
    assert not I.lstm_direct_path(H, T, planted="input_gate").holds()


@pytest.mark.parametrize("H,D,P", _sizes([(1, 1, 0), (2, 1, 0), (2, 1, 1)], [(3, 2, 0), (3, 1, 2)]))
def test_lstm_step_jacobian_closed_form(H, D, P):
    assert I.lstm_step_jacobian(H, D, P).holds()
    assert not I.lstm_step_jacobian(H, D, P, planted="no_cell_term").holds()


@pytest.mark.parametrize("H,D", _sizes([(1, 1), (2, 1)], [(3, 1), (3, 2)]))
def test_gru_step_jacobian_closed_form(H, D):
    assert I.gru_step_jacobian(H, D).holds()
    for planted in ("paper_reset", "no_gate_term"):
        assert not I.gru_step_jacobian(H, D, planted=planted).holds(), planted


def test_atomize_keeps_equal_applications_equal():
    import sympy as sp

    from bpttcheck.symbolic.functions import tanh

    a, b = sp.symbols("a b")
    e = atomized = I.atomize(tanh(a + b) ** 2 - tanh(b + a) * tanh(a + b))
    assert sp.expand(atomized) == 0 and e.free_symbols.isdisjoint({a, b})
    assert not I.reduces_to_zero(tanh(a) - tanh(b))


# --- inequalities: proved symbolically (scalar case) or checked numerically -----------------


@pytest.mark.parametrize("name", NONLIN)
def test_activation_derivative_bounds_are_proved(name):
    assert bounds.activation_derivative_bounds(name)


@pytest.mark.parametrize("n", [1, 2, 4, pytest.param(5, marks=pytest.mark.slow), pytest.param(6, marks=pytest.mark.slow)])
def test_scalar_vanishing_bound_is_proved_for_each_fixed_length(n):
    assert bounds.scalar_vanishing_bound(n, gamma=1)
    assert bounds.scalar_vanishing_bound(n, gamma=sp_quarter())


def sp_quarter():
    import sympy as sp

    return sp.Rational(1, 4)


@pytest.mark.parametrize("nonlinearity,scale", [("tanh", 1.0), ("sigmoid", 3.0), pytest.param("relu", 1.0, marks=pytest.mark.slow),
                                               pytest.param("identity", 0.5, marks=pytest.mark.slow)])
def test_matrix_vanishing_bound_holds_numerically(nonlinearity, scale):
    ratio = bounds.check_matrix_vanishing_bound(RecurrentConfig("rnn", 2, 3, nonlinearity=nonlinearity), 6,
                                               np.random.default_rng(3), scale=scale)
    assert ratio <= 1 + 1e-12


def test_clipping_bound_and_coefficient_formula():
    assert bounds.clipped_norm_bound() == {"clipping": True, "not_clipping": True}
    assert bounds.coefficient_identity(3).holds()
    assert not bounds.coefficient_identity(3, planted="no_eps").holds()
    assert bounds.check_lipschitz_bound(np.random.default_rng(0)) <= 1 + 1e-12


@pytest.mark.torch
def test_torch_clip_coefficient_matches_the_formula_exactly():
    torch = pytest.importorskip("torch")
    import mpmath
    import sympy as sp

    rng = np.random.default_rng(4)
    for M in (0.5, 1.0, 3.0):
        g = [rng.standard_normal((3, 2)), rng.standard_normal(4)]
        ps = [torch.nn.Parameter(torch.zeros(a.shape, dtype=torch.float64)) for a in g]
        for p, a in zip(ps, g):
            p.grad = torch.from_numpy(a.copy())
        total = torch.nn.utils.clip_grad_norm_(ps, M)
        with mpmath.workdps(60):
            n = mpmath.sqrt(sum(mpmath.mpf(float(v)) ** 2 for a in g for v in a.ravel()))
            c = bounds.clip_coefficient(sp.Float(n, 60), sp.Float(M, 60))
            assert abs(float(total) - float(n)) <= 4 * np.finfo(float).eps * float(n)
            for p, a in zip(ps, g):
                expected = np.array([float(sp.Float(float(v), 60) * c) for v in a.ravel()]).reshape(a.shape)
                np.testing.assert_allclose(p.grad.numpy(), expected, rtol=8 * np.finfo(float).eps, atol=0)
