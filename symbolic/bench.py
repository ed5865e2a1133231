"""Deprecated: the symbolic benchmarks live in :mod:`bpttcheck.bench.symbolic` (removed in 0.3);
``python -m bpttcheck.bench.symbolic`` prints the growth table."""

from bpttcheck.bench.symbolic import benchmarks, derive_and_lambdify, expression_sizes, format_table, growth_table

__all__ = ["benchmarks", "derive_and_lambdify", "expression_sizes", "format_table", "growth_table"]

if __name__ == "__main__":  # pragma: no cover - prints the README's table
    print(format_table(growth_table()))
