"""``bpttcheck bench``: our code against peers, measured in the same run (the timing itself is
:mod:`bpttcheck.bench.runner`; the benchmarks come from :mod:`bpttcheck.bench.registry`).

    bpttcheck bench --list
    bpttcheck bench --group reference --group clipping --threads 1 --json bench.json
"""

from __future__ import annotations

import sys

from bpttcheck.bench.registry import AREAS, collect
from bpttcheck.bench.runner import format_table, missing, run_child, summary, write_json

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.add_argument("-k", "--select", default=None, help="only benchmarks whose name contains this text")
    parser.add_argument("--group", action="append", default=None,
                        help="only this group (repeatable: --group reference --group throughput): "
                             + ", ".join(AREAS))
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per comparison (default 7)")
    parser.add_argument("--threads", default="1,2", help="thread counts to measure, comma-separated (default 1,2)")
    parser.add_argument("--json", metavar="PATH", default=None, help="also write the results as JSON")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")


def run(args) -> int:
    results = []
    benches = collect(results)
    if args.select:
        benches = [b for b in benches if args.select in b.name]
    if args.group:
        known = sorted({b.group for b in collect()})
        unknown = [g for g in args.group if g not in known]
        if unknown:
            print(f"bpttcheck bench: --group {unknown[0]!r}: expected one of {', '.join(known)}", file=sys.stderr)
            return 2
        benches = [b for b in benches if b.group in args.group]
    if args.list:
        for b in benches:
            print(f"{b.group:12s} {b.name}  (peer: {b.peer_name or '-'}, goal: {b.goal})")
        return 0
    runnable = []
    for b in benches:
        lacking = missing(b.needs)
        if lacking:
            results.append({"name": b.name, "group": b.group, "error": f"skipped: needs {', '.join(lacking)}",
                            "threads": "-"})
        else:
            runnable.append(b.name)
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    for t in threads:
        for name in runnable:
            print(f"[threads={t}] {name} ...", file=sys.stderr, flush=True)
            got = run_child([name], args.rounds, t)
            for r in got:
                print(f"    {summary(r)}", file=sys.stderr, flush=True)
            results.extend(got)
            if args.json:  # written as it goes: a long run interrupted keeps what it measured
                write_json(args.json, results)
    print(format_table(results))
    if args.json:
        write_json(args.json, results)
    return 0
