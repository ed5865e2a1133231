"""What a benchmark is, for ``bpttcheck bench``: our code and a peer, timed in the same run.

Each area contributes ``benchmarks() -> list[Benchmark]`` from its module of this package
(:data:`bpttcheck.bench.registry.AREAS`); the runner interleaves repeats of ours and the peer,
takes the median of per-round ratios and compares it with the goal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

__all__ = ["Benchmark"]


@dataclass(frozen=True)
class Benchmark:
    """One comparison.

    ``make()`` prepares the data (not timed) and returns ``(ours, peer)``: zero-argument
    callables doing the timed work; ``peer`` is None for an absolute goal. ``goal`` is the
    largest acceptable ratio ours/peer (``goal_kind="ratio"``) or the largest acceptable
    seconds (``goal_kind="seconds"``) or bytes (``goal_kind="bytes"``: then ``ours()`` and
    ``peer()`` return the amount measured, e.g. a child process's peak memory, and are not
    timed). ``needs`` names optional modules (e.g. "torch", "jax");
    a benchmark whose needs are missing is reported as skipped.
    """

    name: str
    make: Callable[[], tuple]
    peer_name: str | None = None
    goal: float | None = None
    goal_kind: str = "ratio"
    needs: tuple[str, ...] = ()
    group: str = ""
    notes: str = field(default="", compare=False)
    #: rounds for this comparison (None: the runner's --rounds); a cold-start measurement
    #: (``warmup=False``) of something slow sets 1
    rounds: int | None = None
    warmup: bool = True
