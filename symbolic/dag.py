"""SymPy expressions seen as DAGs: each distinct subexpression visited once.

An unrolled recurrent network is a deeply shared expression — the state after step t appears
in every later step — so its *tree* (each occurrence counted) grows exponentially with T while
its *DAG* (each distinct subexpression once) grows linearly. SymPy's own traversals (``diff``,
``xreplace``, ``free_symbols``, ``expand``) walk the tree; the functions here walk the DAG:

- :func:`postorder` — the distinct nodes below some roots, children before parents;
- :func:`substitute` — ``xreplace`` memoized on the DAG;
- :func:`tree_size` / :func:`dag_size` — the two sizes, for the benchmark tables.

Equal subexpressions are merged by SymPy's structural equality (the hash), not by identity:
two separately built copies of the same state are one node.
"""

from __future__ import annotations

__all__ = ["dag_size", "postorder", "substitute", "tree_size"]


def postorder(roots) -> list:
    """Distinct nodes reachable from ``roots`` (SymPy expressions), each after its args."""
    seen: set = set()
    order: list = []
    for root in roots:
        if root in seen:
            continue
        stack = [(root, iter(root.args))]
        seen.add(root)
        while stack:
            node, children = stack[-1]
            for child in children:
                if child not in seen:
                    seen.add(child)
                    stack.append((child, iter(child.args)))
                    break
            else:
                stack.pop()
                order.append(node)
    return order


def substitute(exprs, mapping: dict) -> list:
    """``[e.xreplace(mapping) for e in exprs]``, each distinct node rebuilt once.

    Like ``xreplace``, a node found in ``mapping`` is replaced whole (its args not visited),
    and rebuilt nodes are evaluated by SymPy's constructors: with numbers for every symbol,
    an expression of rational operations (and relu) comes out as its exact value.
    """
    done: dict = {}
    for node in postorder(exprs) if mapping else ():
        if node in mapping:
            done[node] = mapping[node]
        elif node.args:
            args = tuple(done.get(a, a) for a in node.args)
            done[node] = node if args == node.args else node.func(*args)
    return [done.get(e, e) for e in exprs]


def tree_size(exprs) -> int:
    """Nodes of the expressions as trees (a shared subexpression counted each time)."""
    size: dict = {}
    for node in postorder(exprs):
        size[node] = 1 + sum(size[a] for a in node.args)
    return sum(size[e] for e in exprs)


def dag_size(exprs) -> int:
    """Distinct subexpressions of the expressions."""
    return len(postorder(exprs))
