"""A per-case time limit: the checks run in a child process that a watchdog ends when one case
runs too long (torch's C code cannot be interrupted in-process, so a thread or a signal in
the same process would not do).

The parent sends the jobs as JSON on stdin; the child rebuilds each check from its target
spec and id, runs it, and prints one JSON line per result. A case that exceeds the limit makes
the child print a "fail" result naming the case and exit; a child that dies (a segfault in the
target) gives an "error" result. Either way the parent starts a fresh child for the checks
left, so one hanging target never stops the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from ..results import CheckResult, Status

__all__ = ["MARK", "run_isolated"]

#: The prefix of a result line on the child's stdout.
MARK = "@@bpttcheck-result "


def run_isolated(items, results, todo, *, profile, seed, timeout, device, dtypes, progress=None):
    """Run ``items`` = [((spec, kind), check, xfail)] in child processes; fill ``results[todo[i]]``."""
    pending = list(range(len(items)))
    done = 0
    while pending:
        jobs = [[items[i][0][0], items[i][0][1], items[i][1].check_id, items[i][2]] for i in pending]
        payload = json.dumps({"jobs": jobs, "device": device, "dtypes": dtypes, "profile": profile, "seed": seed,
                              "timeout": timeout})
        proc = subprocess.Popen([sys.executable, "-m", "bpttcheck.properties.oracle.sandbox_worker"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=os.getcwd())
        proc.stdin.write(payload)
        proc.stdin.close()
        got = 0
        for line in proc.stdout:
            if not line.startswith(MARK):
                continue
            data = json.loads(line[len(MARK):])
            i = pending[got]
            results[todo[i]] = CheckResult.from_dict(data)
            got += 1
            done += 1
            if progress is not None:
                r = results[todo[i]]
                progress(f"[{done}/{len(items)}] {r.id} ... {r.status} ({r.cases} cases, {r.seconds:.1f} s)", True)
        proc.wait()
        stderr = proc.stderr.read()
        pending = pending[got:]
        if pending and proc.returncode != 3:  # died without reporting: a crash in the target
            i = pending.pop(0)
            check = items[i][1]
            tail = stderr.strip().splitlines()[-3:]
            results[todo[i]] = CheckResult(check.name, Status.ERROR, id=check.check_id, target=check.target,
                                           kind=check.kind,
                                           message=f"TargetCrashed: the process running this check died with exit code "
                                                   f"{proc.returncode}: " + " | ".join(tail))
            done += 1
