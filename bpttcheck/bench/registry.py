"""The benchmark registry: which module holds each area's ``benchmarks()``.

Adding an area: a module in this package with ``benchmarks() -> list[Benchmark]``, and one line
here. An area whose module cannot be imported is reported, never fatal: ``bpttcheck bench``
measures what it can.
"""

from __future__ import annotations

import importlib

__all__ = ["AREAS", "collect"]

#: area -> module contributing ``benchmarks()``
AREAS = {
    "reference": "bpttcheck.bench.reference",
    "gradcheck": "bpttcheck.bench.gradcheck",
    "truncation": "bpttcheck.bench.truncation",
    "unbiased": "bpttcheck.bench.unbiased",
    "clipping": "bpttcheck.bench.clipping",
    "stability": "bpttcheck.bench.stability",
    "symbolic": "bpttcheck.bench.symbolic",
    "throughput": "bpttcheck.bench.throughput",
    "isolation": "bpttcheck.bench.isolation",
}


def collect(problems: list | None = None) -> list:
    """Every area's benchmarks; an area that fails to load is noted in ``problems``."""
    found = []
    for name in AREAS.values():
        try:
            found.extend(importlib.import_module(name).benchmarks())
        except Exception as exc:
            if problems is not None:
                problems.append({"name": name, "error": f"{type(exc).__name__}: {exc}", "threads": "-"})
    return found
