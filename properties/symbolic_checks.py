"""Properties: float64 implementations against the symbolic oracles (formerly
``bpttcheck.symbolic.checks``, which stays one release as a deprecated alias).

- :func:`check_against_oracle` — an implementation's gradients (the reference's by default,
  any truncation scheme or randomized ξ) agree with the arbitrary-precision pair-sum to a few
  float64 epsilons of the condition-aware scale ``Σ|terms|``.
- :func:`check_lambdified` — the reference agrees with SymPy's lambdified gradients.

Tolerance (condition-aware; :func:`bpttcheck.properties.tolerance.symbolic_oracle_allowance`).
The larger, per entry, of ``(T+1)·(n+2)`` eps of the scale Σ|terms| — the sum of the absolute
values of every product the gradient adds (pair terms, the vector–Jacobian chain, the products
inside each Jacobian entry; see :mod:`.oracle`), each with ≤ (T+1)·(n+2) rounded factors and
sums (n the state size) — and twice the oracle's running first-order bound on the float64
rounding, which also carries the forward's rounding through every atom (tanh, σ, relu) and
state, so that cancellation inside an atom's argument counts (:mod:`bpttcheck.symbolic.running`).
Comparisons go through the suite's one helper, on values divided by the scale. The symbolic
layer is imported inside the functions (SymPy is slow to import).
"""

from __future__ import annotations

import numpy as np

from bpttcheck.reference.cells import cell_spec
from bpttcheck.reference.config import RecurrentConfig
from bpttcheck.reference.validation import InvalidArgument, check_array, check_instance, check_int, fail
from bpttcheck.reference.network import backward, forward
from bpttcheck.reference.truncation import truncated_backward

from .compare import assert_close
from .strategies import Case
from .tolerance import (
    implementation_tolerance,
    symbolic_oracle_allowance,
    symbolic_oracle_eps,
    symbolic_oracle_tolerance,
)
from .torch_adapter import run_target

__all__ = [
    "check_against_oracle",
    "check_lambdified",
    "oracle_allowance",
    "oracle_tolerance_eps",
    "reference_gradients",
    "torch_gradients",
]


def reference_gradients(config, params, x, cotangent, h0=None, c0=None, scheme=None, xi=None) -> dict:
    """The reference's (truncated) gradients of ``Σ⟨cotangent, y⟩``."""
    if scheme is None:
        return backward(params, forward(config, params, x, h0, c0), d_output=cotangent)
    return truncated_backward(config, params, x, cotangent, scheme, h0, c0, xi=xi).grads


def torch_gradients(config, params, x, cotangent, h0=None, c0=None) -> dict:
    """torch.nn.{RNN,LSTM,GRU} in float64 with the same weights (the torch adapter); autograd's
    gradients of ``Σ⟨cotangent, y⟩``, with h0 (and c0) zero where not given."""
    res = forward(config, params, x, h0, c0)  # the reference's checks of every argument but the cotangent
    T, B, P = res.output.shape
    check_array("cotangent", cotangent, (T, B, P), dims=("T", "B", "P"))
    B = np.shape(x)[1]
    L = config.num_layers * config.num_directions
    h0 = np.zeros((L, B, config.output_size)) if h0 is None else h0
    if cell_spec(config.cell).has_cell_state and c0 is None:
        c0 = np.zeros((L, B, config.hidden_size))
    case = Case(config=config, params=params, x=np.asarray(x, dtype=np.float64), h0=h0, c0=c0,
                d_output=np.asarray(cotangent, dtype=np.float64))
    got = run_target(None, case, kind="module")
    return {k: v for k, v in got.items() if k not in ("output", "h_n", "c_n")}


def _state_size(config) -> int:
    # A stack's step is one step of every layer's state together (bpttcheck.symbolic.layers).
    per_layer = config.output_size + (config.hidden_size if cell_spec(config.cell).has_cell_state else 0)
    return config.num_layers * per_layer


def _check_grads(grads, names) -> None:
    """``grads`` (the implementation's gradients under test) hold every name the oracle gives."""
    if not isinstance(grads, dict):
        fail("grads", grads, f"None or a dict of gradients name -> array with the keys {list(names)}")
    missing = [n for n in names if n not in grads]
    if missing:
        raise InvalidArgument(f"grads has keys {sorted(grads)}: expected the keys {list(names)} (missing {missing})")


def oracle_tolerance_eps(config, T: int) -> float:
    """Allowed error in eps of Σ|terms|: (T+1)·(n+2), n the state size
    (:func:`bpttcheck.properties.tolerance.symbolic_oracle_eps`)."""
    check_instance("config", config, RecurrentConfig, "a RecurrentConfig")
    T = check_int("T", T, minimum=1)
    return symbolic_oracle_eps(_state_size(config), T)


def check_against_oracle(
    config, params, x, cotangent, h0=None, c0=None, *, grads=None, weights=None, label="reference", context=""
) -> dict[str, float]:
    """Compare ``grads`` (default: the reference's full BPTT) with the high-precision pair-sum
    under ``weights`` (a truncation/ξ table); raises ``Mismatch``; returns worst error in eps."""
    from bpttcheck.symbolic.oracle import error_in_eps, pair_sum
    from bpttcheck.symbolic.precision import to_float

    T = np.shape(x)[0]
    oracle = pair_sum(config, params, x, cotangent, h0, c0, weights=weights)
    if grads is None:
        grads = reference_gradients(config, params, x, cotangent, h0, c0)
    _check_grads(grads, oracle.grads)
    worst = {}
    ctx = f"{label} vs symbolic pair-sum, {config.describe()}, T={T}, B={np.shape(x)[1]}, float64" + (f", {context}" if context else "")
    for name, expected in oracle.grads.items():
        scale = oracle.scale[name]
        tol = symbolic_oracle_tolerance(_state_size(config), T, oracle.field.describe(), scale=scale,
                                        rounding=oracle.rounding[name])
        err = error_in_eps(grads[name], expected, scale)
        worst[name] = float(err.max()) if err.size else 0.0
        safe = np.where(scale > 0, scale, 1.0)
        assert_close(name, np.asarray(grads[name]) / safe, to_float(expected) / safe, tol, context=ctx)
    return worst


def oracle_allowance(config, T: int, oracle) -> dict[str, np.ndarray]:
    """The allowed |error| of each gradient entry against ``oracle`` (a :func:`pair_sum`
    result): :func:`bpttcheck.properties.tolerance.symbolic_oracle_allowance`."""
    check_instance("config", config, RecurrentConfig, "a RecurrentConfig")
    T = check_int("T", T, minimum=1)
    if not all(hasattr(oracle, a) for a in ("grads", "scale", "rounding")):
        fail("oracle", oracle, "the OracleResult of bpttcheck.symbolic.oracle.pair_sum()")
    return {name: symbolic_oracle_allowance(oracle.scale[name], oracle.rounding[name], _state_size(config), T)
            for name in oracle.grads}


def check_lambdified(config, params, x, cotangent, h0=None, c0=None, *, grads=None, context="") -> None:
    """The reference's gradients (or ``grads``) against SymPy's lambdified ones (float64 both)."""
    from bpttcheck.symbolic.codegen import lambdify_gradients

    T, B = np.shape(x)[:2]
    expected = lambdify_gradients(config, T, B)(params, x, cotangent, h0, c0)
    if grads is None:
        grads = reference_gradients(config, params, x, cotangent, h0, c0)
    _check_grads(grads, expected)
    ctx = f"reference vs lambdified SymPy gradient, {config.describe()}, T={T}, B={B}, float64" + (f", {context}" if context else "")
    for name, e in expected.items():
        tol = implementation_tolerance("float64", T=T, amplification=1.0, scale=float(np.max(np.abs(e))) if e.size else 1.0)
        assert_close(name, grads[name], e, tol, context=ctx)
