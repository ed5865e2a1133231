"""Isolation's cost (issue 13): the same verify with each target in its worker process (the
default) and in-process (``in_process=True``), in the same run; goal: the worker at most 1.3×.

Two rows: one module target's ``ci`` verify on CPU (``torch.nn:LSTM``), and the default run of
the built-ins on CPU. Each side is one whole ``verify_target`` call (worker start, listing the
checks, every case); the fork server's one-time start is inside the first worker-side round.
"""

from __future__ import annotations

from bpttcheck.properties.oracle.api import verify_target

from .core import Benchmark

__all__ = ["GOAL", "benchmarks"]

#: The largest acceptable ratio isolated / in-process.
GOAL = 1.3


def _make(spec):
    def make():
        def side(in_process):
            return lambda: verify_target(spec, device="cpu", profile="ci", in_process=in_process)

        return side(False), side(True)

    return make


def benchmarks() -> list[Benchmark]:
    return [
        Benchmark(name=f"isolation: verify {what} --device cpu --profile ci, worker process",
                  make=_make(spec), peer_name="the same verify in-process (--in-process)", goal=GOAL,
                  needs=("torch",), group="isolation", rounds=1, warmup=False)
        for spec, what in (("torch.nn:LSTM", "--target torch.nn:LSTM"), (None, "(the built-ins)"))
    ]
