"""Benchmarks of the symbolic layer (cold: SymPy's cache and ours cleared before each run).

- derive + lambdify the hidden-size-1 tanh RNN at T = 20 (goal < 3 s);
- derive + lambdify the hidden-size-2 LSTM at T = 3 (goal < 10 s);
- derive + lambdify a two-layer LSTM (H = 2, T = 3) and GRU (H = 2, T = 6);
- :func:`growth_table`: time and expression size against T, for the docs.

"derive" unrolls and differentiates the loss w.r.t. every parameter (reverse mode over the
expression DAG, :mod:`bpttcheck.symbolic.reverse`); "lambdify" compiles those derivatives to
float64 straight-line code (:class:`bpttcheck.symbolic.program.Program`, one line per distinct
subexpression). ``engine="sympy"`` measures the former pipeline: SymPy's ``diff`` and
``lambdify(cse=True)``. A cold start in a fresh process (SymPy's import included) is
``python -m bpttcheck.bench.symbolic --cold CELL H T [LAYERS]``.
"""

from __future__ import annotations

import time

from bpttcheck.reference.config import RecurrentConfig

from .core import Benchmark

__all__ = ["benchmarks", "derive_and_lambdify", "expression_sizes", "format_table", "growth_table"]


def _cold():
    from sympy.core.cache import clear_cache

    from bpttcheck.symbolic import codegen, oracle

    clear_cache()
    codegen.clear_caches()
    oracle.clear_caches()


def derive_and_lambdify(config, T: int, engine: str = "reverse") -> dict:
    """Unroll, differentiate w.r.t. the parameters, compile; seconds per phase."""
    import sympy as sp

    from bpttcheck.symbolic.functions import numpy_functions
    from bpttcheck.symbolic.program import Program
    from bpttcheck.symbolic.unroll import gradient, unroll

    _cold()
    t0 = time.perf_counter()
    u = unroll(config, T)
    grads = gradient(u, wrt=list(config.param_shapes()), engine=engine)
    t1 = time.perf_counter()
    exprs = [e for v in grads.values() for e in v.ravel()]
    if engine == "sympy":
        fn = sp.lambdify(u.arguments(), exprs, modules=[numpy_functions(), "numpy"], cse=True)
    else:
        fn = Program(u.arguments(), exprs, "numpy")
    t2 = time.perf_counter()
    return {"derive_s": t1 - t0, "lambdify_s": t2 - t1, "exprs": exprs, "fn": fn}


def expression_sizes(exprs) -> dict:
    """Sizes of a list of expressions: as trees (shared parts counted each time they occur),
    as a DAG (distinct subexpressions), and the operations of the straight-line program
    compiled from them ("after CSE": one per distinct operation)."""
    from bpttcheck.symbolic.dag import dag_size, postorder, tree_size
    from bpttcheck.symbolic.program import Program

    args = [n for n in postorder(exprs) if n.is_Symbol]
    return {"tree_nodes": tree_size(exprs), "dag_nodes": dag_size(exprs), "cse_nodes": Program(args, exprs).n_ops}


def growth_table(cell: str = "rnn", hidden=(1, 2), Ts=(2, 4, 6, 8, 10), budget_s: float = 60.0, layers: int = 1) -> list[dict]:
    """Rows {cell, hidden, T, derive_s, lambdify_s, tree_nodes, dag_nodes, cse_nodes}; a
    hidden size stops growing T once one row took more than ``budget_s``."""
    rows = []
    for H in hidden:
        for T in Ts:
            r = derive_and_lambdify(RecurrentConfig(cell, 1, H, num_layers=layers), T)
            row = {"cell": cell if layers == 1 else f"{cell} L={layers}", "hidden": H, "T": T,
                   "derive_s": r["derive_s"], "lambdify_s": r["lambdify_s"]}
            row.update(expression_sizes(r["exprs"]))
            rows.append(row)
            if r["derive_s"] + r["lambdify_s"] > budget_s:
                break
    return rows


def format_table(rows) -> str:
    """The growth table as Markdown."""
    head = "| cell | hidden | T | derive (s) | lambdify (s) | tree nodes | DAG nodes | after CSE |\n|---|---|---|---|---|---|---|---|"
    body = [
        f"| {r['cell']} | {r['hidden']} | {r['T']} | {r['derive_s']:.2f} | {r['lambdify_s']:.2f} | "
        f"{r['tree_nodes']:,} | {r['dag_nodes']:,} | {r['cse_nodes']:,} |"
        for r in rows
    ]
    return "\n".join([head, *body])


def _make(cell: str, hidden: int, T: int, layers: int = 1):
    def make():
        config = RecurrentConfig(cell, 1, hidden, num_layers=layers)
        return (lambda: derive_and_lambdify(config, T)), None

    return make


_NOTES = "reverse mode over the DAG of the unrolled loss w.r.t. every parameter, compiled to straight-line code"


def benchmarks() -> list[Benchmark]:
    return [
        Benchmark("symbolic: derive+lambdify rnn/tanh H=1 T=20", _make("rnn", 1, 20), None, 3.0, "seconds",
                  group="symbolic", notes=_NOTES, rounds=3, warmup=False),
        Benchmark("symbolic: derive+lambdify lstm H=2 T=3", _make("lstm", 2, 3), None, 10.0, "seconds",
                  group="symbolic", notes=_NOTES, rounds=3, warmup=False),
        Benchmark("symbolic: derive+lambdify lstm L=2 H=2 T=3", _make("lstm", 2, 3, layers=2), None, 10.0, "seconds",
                  group="symbolic", notes=_NOTES, rounds=3, warmup=False),
    ]


def cold_start(cell: str, hidden: int, T: int, layers: int = 1, engine: str = "reverse") -> dict:
    """Seconds of one cold derive+lambdify in this process, SymPy's import included when this
    is the process's first use of it (run it in a fresh process: ``--cold``)."""
    t0 = time.perf_counter()
    import sympy  # noqa: F401 - timed: a fresh process pays for it

    t1 = time.perf_counter()
    r = derive_and_lambdify(RecurrentConfig(cell, 1, hidden, num_layers=layers), T, engine=engine)
    return {"import_s": t1 - t0, "derive_s": r["derive_s"], "lambdify_s": r["lambdify_s"],
            "total_s": time.perf_counter() - t0, "process_cpu_s": time.process_time()}


def _main(argv) -> None:  # pragma: no cover - a command-line helper for the docs' figures
    if argv[:1] == ["--cold"]:
        cell, hidden, T, *rest = argv[1:]
        engine = "sympy" if "--sympy" in rest else "reverse"
        layers = int(next((r for r in rest if r.isdigit()), 1))
        print(cold_start(cell, int(hidden), int(T), layers, engine))
    else:
        print(format_table(growth_table()))


if __name__ == "__main__":  # pragma: no cover - prints the docs' table
    import sys

    _main(sys.argv[1:])
