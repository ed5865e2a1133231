"""Benchmarks of the symbolic layer (cold: SymPy's cache and ours cleared before each run).

- derive + lambdify the hidden-size-1 tanh RNN at T = 20 (goal < 3 s);
- derive + lambdify the hidden-size-2 LSTM at T = 3 (goal < 10 s);
- :func:`growth_table`: time and expression size against T, for the README.

"derive" is SymPy's ``diff`` of the unrolled loss w.r.t. every parameter; "lambdify" prints
those derivatives to NumPy after common-subexpression elimination.
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


def derive_and_lambdify(config, T: int) -> dict:
    """Unroll, differentiate w.r.t. the parameters, lambdify with CSE; seconds per phase."""
    import sympy as sp

    from bpttcheck.symbolic.functions import numpy_functions
    from bpttcheck.symbolic.unroll import gradient, unroll

    _cold()
    t0 = time.perf_counter()
    u = unroll(config, T)
    grads = gradient(u, wrt=list(config.param_shapes()))
    t1 = time.perf_counter()
    exprs = [e for v in grads.values() for e in v.ravel()]
    fn = sp.lambdify(u.arguments(), exprs, modules=[numpy_functions(), "numpy"], cse=True)
    t2 = time.perf_counter()
    return {"derive_s": t1 - t0, "lambdify_s": t2 - t1, "exprs": exprs, "fn": fn}


def expression_sizes(exprs) -> dict:
    """Sizes of a list of expressions: as trees (shared parts counted each time they occur),
    as a DAG (distinct subexpressions), and after ``sympy.cse`` (the code lambdify prints)."""
    import sympy as sp

    tree: dict = {}

    def tree_size(e):
        if e not in tree:
            tree[e] = 1 + sum(tree_size(a) for a in e.args)
        return tree[e]

    total_tree = sum(tree_size(e) for e in exprs)
    reps, reduced = sp.cse(exprs)
    cse_nodes = sum(len(list(sp.preorder_traversal(e))) for _, e in reps) + sum(
        len(list(sp.preorder_traversal(e))) for e in reduced
    )
    return {"tree_nodes": total_tree, "dag_nodes": len(tree), "cse_nodes": cse_nodes}


def growth_table(cell: str = "rnn", hidden=(1, 2), Ts=(2, 4, 6, 8, 10), budget_s: float = 60.0) -> list[dict]:
    """Rows {cell, hidden, T, derive_s, lambdify_s, tree_nodes, dag_nodes, cse_nodes}; a
    hidden size stops growing T once one row took more than ``budget_s``."""
    rows = []
    for H in hidden:
        for T in Ts:
            r = derive_and_lambdify(RecurrentConfig(cell, 1, H), T)
            row = {"cell": cell, "hidden": H, "T": T, "derive_s": r["derive_s"], "lambdify_s": r["lambdify_s"]}
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


def _make(cell: str, hidden: int, T: int):
    def make():
        config = RecurrentConfig(cell, 1, hidden)
        return (lambda: derive_and_lambdify(config, T)), None

    return make


def benchmarks() -> list[Benchmark]:
    return [
        Benchmark("symbolic: derive+lambdify rnn/tanh H=1 T=20", _make("rnn", 1, 20), None, 3.0, "seconds",
                  group="symbolic", notes="SymPy diff of the unrolled loss w.r.t. every parameter, lambdify(cse=True)",
                  rounds=3, warmup=False),
        Benchmark("symbolic: derive+lambdify lstm H=2 T=3", _make("lstm", 2, 3), None, 10.0, "seconds",
                  group="symbolic", notes="SymPy diff of the unrolled loss w.r.t. every parameter, lambdify(cse=True)",
                  rounds=1, warmup=False),
    ]


if __name__ == "__main__":  # pragma: no cover - prints the README's table
    print(format_table(growth_table()))
