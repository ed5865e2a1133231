"""The unrolled network and its loss as one SymPy expression, differentiated symbolically.

``unroll(config, T, batch)`` builds every state as a nested expression in the parameters,
inputs and initial states, and the cotangent loss ``L = Σ_t Σ_b ⟨G[t,b], y[t,b]⟩`` (the form
every gradient check reduces to: any loss's gradient is a cotangent). Stacks of any depth are
unrolled (:mod:`.layers`); y is the top layer's h. :func:`gradient` then differentiates the
whole unrolled expression — by default in reverse mode over its DAG (:mod:`.reverse`: the
elementary rules of each node, summed over the DAG; nothing about recurrent networks, nor any
hand-written BPTT), or with ``engine="sympy"`` by ``sympy.diff`` itself (the same function,
checked by the tests; its cost follows the exponentially larger expression tree).

Shapes follow the reference: input (T, B, D), h0 (L, B, P), c0 (L, B, H), cotangent (T, B, P);
gradients are NumPy object arrays of expressions with the shapes of the reference's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from bpttcheck.reference.validation import check_choice, check_int

from .cells import vector_symbols
from .layers import check_unidirectional, stacked_step, stacked_symbols, state_layout, state_symbols

__all__ = ["ENGINES", "Unrolled", "gradient", "unroll"]

#: How :func:`gradient` differentiates: reverse mode over the DAG, or SymPy's ``diff``.
ENGINES = ("reverse", "sympy")


@dataclass
class Unrolled:
    """A network unrolled for T steps over a batch of B sequences, as SymPy expressions.

    ``x[t][b]`` (D×1), ``h0[l][b]`` (P×1), ``c0[l][b]`` (H×1; None without a cell state),
    ``cotangent[t][b]`` (P×1) are symbol columns (l: the layer); ``states[t][b]`` = ``(h, c)``
    expressions of the top layer after step t.
    """

    config: object
    T: int
    batch: int
    params: dict
    x: list
    h0: list
    c0: list | None
    cotangent: list
    states: list
    loss: sp.Expr
    _order: list = field(default_factory=list, repr=False)

    def variables(self) -> dict[str, np.ndarray]:
        """Every symbol, as object arrays shaped like the reference's arrays, by name."""
        out = {name: _as_array(m, self.config.param_shapes()[name]) for name, m in self.params.items()}
        out["input"] = _stack(self.x)
        out["h0"] = _stack(self.h0)
        if self.c0 is not None:
            out["c0"] = _stack(self.c0)
        out["cotangent"] = _stack(self.cotangent)
        return out

    def arguments(self) -> list[sp.Symbol]:
        """All symbols in a fixed order (parameters, input, h0, c0, cotangent), flattened."""
        return [s for arr in self.variables().values() for s in arr.ravel()]

    def outputs(self) -> np.ndarray:
        """(T, B, P) object array of the output expressions (the h of each step)."""
        return _stack([[h for h, _ in row] for row in self.states])


def _as_array(m: sp.Matrix, shape) -> np.ndarray:
    arr = np.empty(shape, dtype=object)
    flat = list(m)  # row-major, like NumPy
    for k, idx in enumerate(np.ndindex(*shape)):
        arr[idx] = flat[k]
    return arr


def _stack(rows) -> np.ndarray:
    """[t][b] lists of column matrices -> (t, b, n) object array."""
    T, B = len(rows), len(rows[0])
    n = rows[0][0].shape[0]
    arr = np.empty((T, B, n), dtype=object)
    for t in range(T):
        for b in range(B):
            for k in range(n):
                arr[t, b, k] = rows[t][b][k]
    return arr


def unroll(config, T: int, batch: int = 1) -> Unrolled:
    """Unroll ``config`` (one direction, any number of layers) for ``T`` steps over ``batch``
    sequences."""
    check_unidirectional(config)
    T = check_int("T", T, minimum=1)
    batch = check_int("batch", batch, minimum=1)
    P, H, _ = state_layout(config)
    L = config.num_layers
    params = stacked_symbols(config)
    one = batch == 1  # drop the batch index from the names when there is one sequence
    bidx = lambda b: () if one else (b,)  # noqa: E731
    x = [[vector_symbols("x", config.input_size, t, *bidx(b)) for b in range(batch)] for t in range(T)]
    initial = [state_symbols(config, "h^{0}", "c^{0}", *bidx(b)) for b in range(batch)]  # [b][l]
    h0 = [[initial[b][l][0] for b in range(batch)] for l in range(L)]
    c0 = [[initial[b][l][1] for b in range(batch)] for l in range(L)] if H else None
    G = [[vector_symbols("g", P, t, *bidx(b)) for b in range(batch)] for t in range(T)]
    states, prev = [], initial
    for t in range(T):
        prev = [stacked_step(config, params, x[t][b], prev[b]) for b in range(batch)]
        states.append([layers[-1] for layers in prev])
    loss = sp.Add(*[(G[t][b].T * states[t][b][0])[0, 0] for t in range(T) for b in range(batch)])
    return Unrolled(config, T, batch, params, x, h0, c0, G, states, loss)


def gradient(unrolled: Unrolled, wrt: tuple[str, ...] | None = None, engine: str = "reverse") -> dict[str, np.ndarray]:
    """``∂L/∂v`` for every variable v (default: parameters, input, h0, c0), by ``engine``
    (see :data:`ENGINES`).

    Returns object arrays shaped like the variables (torch names, "input", "h0", "c0").
    """
    check_choice("engine", engine, ENGINES)
    variables = unrolled.variables()
    names = [n for n in variables if n != "cotangent"] if wrt is None else list(wrt)
    if engine == "sympy":
        diff = np.vectorize(lambda s: unrolled.loss.diff(s), otypes=[object])
        return {name: diff(variables[name]) for name in names}
    from .reverse import gradient as reverse_gradient

    flat = [s for name in names for s in variables[name].ravel()]
    values = iter(reverse_gradient(unrolled.loss, flat))
    out = {}
    for name in names:
        arr = np.empty(variables[name].shape, dtype=object)
        for idx in np.ndindex(*arr.shape):
            arr[idx] = next(values)
        out[name] = arr
    return out
