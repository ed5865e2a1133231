"""The child side of :mod:`.sandbox`: rebuilds each check from its target spec and id, runs it
with a watchdog timing every case, and prints one result line per check.

Run as ``python -m bpttcheck.properties.oracle.sandbox_worker`` with the jobs as JSON on stdin.
A case over the limit makes the child print a "fail" result naming the case and exit with
status 3, so that the parent goes on with the checks left in a fresh child.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import replace

from ..results import CheckResult, Status
from ..runner import run_check
from .api import default_dtypes, target_checks
from .sandbox import MARK

__all__ = ["main"]

#: The exit status of a child that stopped a case over the time limit.
TIMED_OUT = 3


def _shown(case, limit: int = 300) -> str:
    text = repr(case)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def main() -> int:
    spec_in = json.loads(sys.stdin.read())
    timeout = float(spec_in["timeout"])
    state = {"start": None, "case": "", "check": None}

    def watchdog():
        while True:
            time.sleep(0.05)
            start, check = state["start"], state["check"]
            if start is not None and time.monotonic() - start > timeout:
                result = CheckResult(check.name, Status.FAIL, id=check.check_id, target=check.target, kind=check.kind,
                                     message=(f"Timeout: one case ran longer than {timeout:g} s and was stopped; the "
                                              f"target hangs or is far too slow (case: {state['case']})"))
                sys.stdout.write(MARK + json.dumps(result.as_dict()) + "\n")
                sys.stdout.flush()
                os._exit(TIMED_OUT)

    threading.Thread(target=watchdog, daemon=True).start()
    built = {}
    for spec, kind, cid, xfail in spec_in["jobs"]:
        if (spec, kind) not in built:
            dtypes = tuple(spec_in["dtypes"] or default_dtypes(spec_in["device"]))
            found = target_checks(spec, kind, device=spec_in["device"], dtypes=dtypes)
            built[(spec, kind)] = {c.check_id: c for c in found}
        check = built[(spec, kind)][cid]
        state["check"] = check
        result = run_check(replace(check, body=_Timed(check.body, state)), spec_in["profile"], spec_in["seed"],
                           xfail=xfail)
        sys.stdout.write(MARK + json.dumps(result.as_dict()) + "\n")
        sys.stdout.flush()
    return 0


class _Timed:
    """The check's body with its cases timed by the watchdog."""

    def __init__(self, inner, state):
        self.inner, self.state = inner, state

    def __call__(self, case):
        self.state["case"], self.state["start"] = _shown(case), time.monotonic()
        try:
            return self.inner(case)
        finally:
            self.state["start"] = None


if __name__ == "__main__":
    sys.exit(main())
