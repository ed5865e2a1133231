"""Timing for ``bpttcheck bench``: our code against peers, measured in the same run.

Each comparison alternates ours and the peer for several rounds (interleaved, so drift in the
machine's speed hits both alike) and reports the median of the per-round ratios. Every
benchmark runs in a child process (``python -m bpttcheck.bench.runner --worker``) with
BLAS/OpenMP/torch threads pinned to one, and again to two; the goals are judged on the
one-thread figure.
"""

from __future__ import annotations

import importlib
import json
import os
import statistics
import subprocess
import sys
import time

from .registry import collect

__all__ = ["THREAD_VARS", "format_table", "measure", "missing", "run_child", "summary", "write_json"]

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
               "NUMEXPR_NUM_THREADS")


def missing(needs) -> list[str]:
    missing = []
    for mod in needs:
        try:
            importlib.import_module(mod)
        except ImportError:
            missing.append(mod)
    return missing


def _time_once(fn, min_seconds=0.02):
    """Seconds per call: repeat until the measurement spans at least ``min_seconds``."""
    n, total = 0, 0.0
    start = time.perf_counter()
    while True:
        fn()
        n += 1
        total = time.perf_counter() - start
        if total >= min_seconds:
            return total / n


def measure(bench, rounds: int = 7) -> dict:
    """Interleaved timing of one benchmark in this process."""
    ours, peer = bench.make()
    if bench.goal_kind == "bytes":  # ours()/peer() return a measured amount (peak memory), not timed
        return _measure_amounts(bench, ours, peer, rounds)
    if bench.warmup:
        ours()
        if peer is not None:
            peer()
    ours_t, peer_t, ratios = [], [], []
    for _ in range(bench.rounds or rounds):
        a = _time_once(ours)
        ours_t.append(a)
        if peer is not None:
            b = _time_once(peer)
            peer_t.append(b)
            ratios.append(a / b)
    res = {"name": bench.name, "group": bench.group, "ours_s": statistics.median(ours_t),
           "peer": bench.peer_name, "peer_s": statistics.median(peer_t) if peer_t else None,
           "ratio": statistics.median(ratios) if ratios else None,
           "goal": bench.goal, "goal_kind": bench.goal_kind,
           # the spread of the per-round ratios (or of our times, for an absolute goal)
           "spread": [min(ratios), max(ratios)] if ratios else [min(ours_t), max(ours_t)]}
    value = res["ratio"] if bench.goal_kind == "ratio" else res["ours_s"]
    res["met"] = None if bench.goal is None or value is None else bool(value <= bench.goal)
    return res


def _measure_amounts(bench, ours, peer, rounds) -> dict:
    ours_v, peer_v = [], []
    for _ in range(bench.rounds or rounds):
        ours_v.append(float(ours()))
        if peer is not None:
            peer_v.append(float(peer()))
    mine = statistics.median(ours_v)
    theirs = statistics.median(peer_v) if peer_v else None
    return {"name": bench.name, "group": bench.group, "ours_s": mine, "peer": bench.peer_name, "peer_s": theirs,
            "ratio": None if theirs is None else mine / theirs, "goal": bench.goal, "goal_kind": bench.goal_kind,
            "met": None if bench.goal is None else bool(mine <= bench.goal),
            "spread": [min(ours_v), max(ours_v)]}


def _worker(names: list[str], rounds: int, threads: int) -> list[dict]:
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass
    by_name = {b.name: b for b in collect()}
    out = []
    for name in names:
        bench = by_name[name]
        try:
            res = measure(bench, rounds)
        except Exception as exc:  # report it, keep measuring the others
            res = {"name": name, "group": bench.group, "error": f"{type(exc).__name__}: {exc}"}
        res["threads"] = threads
        out.append(res)
        print(json.dumps(res), flush=True)
    return out


def run_child(names, rounds, threads) -> list[dict]:
    env = dict(os.environ)
    for var in THREAD_VARS:
        env[var] = str(threads)
    cmd = [sys.executable, "-m", "bpttcheck.bench.runner", "--worker", str(rounds), str(threads)] + names
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    results = []
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            results.append(json.loads(line))
    if proc.returncode != 0:
        results.append({"name": "(worker)", "error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}", "threads": threads})
    return results


def _fmt_amount(v, kind):
    if kind == "bytes":
        return "-" if v is None else f"{v / 2**30:.2f} GiB" if v >= 2**29 else f"{v / 2**20:.0f} MiB"
    return _fmt_time(v)


def _fmt_goal(r):
    if r["goal"] is None:
        return "-"
    kind = r["goal_kind"]
    return {"ratio": f"≤ {r['goal']:g}", "seconds": f"≤ {r['goal']:g} s"}.get(kind, "≤ " + _fmt_amount(r["goal"], kind))


def _fmt_ratio(r):
    if r["ratio"] is None:
        return "-"
    spread = r.get("spread")
    if spread and r["goal_kind"] == "ratio" and len(spread) == 2 and spread[0] != spread[1]:
        return f"{r['ratio']:.3f} [{spread[0]:.3f}–{spread[1]:.3f}]"
    return f"{r['ratio']:.3f}"


def _fmt_time(s):
    if s is None:
        return "-"
    return f"{s * 1e6:.0f} µs" if s < 1e-3 else f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def _cut(text: str, width: int) -> str:
    text = str(text).splitlines()[0] if str(text) else ""
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(results) -> str:
    rows = [("benchmark", "thr", "ours", "peer", "peer time", "ratio", "goal", "met")]
    for r in results:
        if "error" in r:
            rows.append((r["name"], str(r.get("threads", "")), "ERROR", _cut(r["error"], 60), "", "", "", ""))
            continue
        kind = r["goal_kind"]
        rows.append((r["name"], str(r["threads"]), _fmt_amount(r["ours_s"], kind), r["peer"] or "-",
                     _fmt_amount(r["peer_s"], kind), _fmt_ratio(r), _fmt_goal(r),
                     {True: "yes", False: "NO", None: "-"}[r["met"]]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for j, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_json(path, results) -> None:
    with open(path, "w") as fh:
        json.dump({"results": results}, fh, indent=2)


def summary(r) -> str:
    if "error" in r:
        return f"error: {r['error']}"
    ratio = "" if r.get("ratio") is None else f", ratio {_fmt_ratio(r)}"
    return f"ours {_fmt_amount(r['ours_s'], r.get('goal_kind'))}{ratio}, goal met: {r.get('met')}"



if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker(sys.argv[4:], int(sys.argv[2]), int(sys.argv[3]))
