"""The worker side of :mod:`.sandbox`: the process in which a target's checks run.

:func:`serve` is started by the oracle (in a process of its own, one per target) with one end
of a private pipe. It loads the target, sends the descriptions of its checks, then runs the
checks it is asked for, sending a message as each case starts and the result when the check
ends. Nothing is read from the worker's stdout or stderr: its fds 1 and 2 go to files that the
oracle only quotes (their last lines) when the worker crashes or is stopped, so no pipe can fill
and nothing the target prints can decide a verdict.

Also here, for both isolated and in-process runs: :class:`Guard`, which notices a target that
replaced a function of NumPy, math, torch or the oracle (``numpy.abs = …``) or changed global
torch state (grad mode, default dtype, deterministic algorithms, threads), puts them back, and
turns what it found into a failure of that target's check — so that a target can neither fool
its own comparisons that way unnoticed nor leak into the next target.
"""

from __future__ import annotations

import io
import os
import random
import signal
import sys
import threading
import time
import traceback
from dataclasses import replace

from .. import judge
from ..compare import TargetFailure
from ..results import CheckResult, Status
from ..runner import run_check
from ..torch_adapter import global_torch_state, restore_torch_state
from .common import dtype_variant
from .kinds import CheckOptions, checks_for, resolve

__all__ = ["GUARDED_MODULES", "Guard", "JudgeFailed", "build_checks", "describe_checks", "guarded_result",
           "remote_judge", "serve"]

#: Modules whose functions a target must not replace (their attributes are compared by identity).
GUARDED_MODULES = ("numpy", "numpy.linalg", "numpy.random", "math", "torch", "torch.nn.functional", "torch.linalg",
                   "torch.autograd", "scipy.linalg")
#: Classes whose methods a target must not replace.
GUARDED_CLASSES = (("torch", "Tensor"), ("torch.nn", "Module"))


def _shown(case, limit: int = 300) -> str:
    try:
        text = repr(case)
    except Exception as exc:  # a case's repr is the oracle's own; never let it end the worker
        text = f"<unprintable case: {type(exc).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Guard:
    """What a target could change behind the oracle's back, remembered before it runs.

    ``check()`` compares, restores, and returns a sentence naming every change ("" when none).
    The oracle's own modules (``bpttcheck.*``) are guarded too."""

    def __init__(self):
        self.saved = {}
        for name in list(sys.modules):
            if name in GUARDED_MODULES or name.startswith("bpttcheck."):
                self._save(name, sys.modules.get(name))
        for module, cls in GUARDED_CLASSES:
            owner = getattr(sys.modules.get(module), cls, None)
            if owner is not None:
                self.saved[f"{module}.{cls}"] = (owner, dict(vars(owner)))
        self.torch = global_torch_state()

    def _save(self, name, module):
        if module is not None:
            self.saved[name] = (module, {k: v for k, v in vars(module).items() if callable(v)})

    def check(self) -> str:
        changed = []
        for name, (owner, before) in self.saved.items():
            now = vars(owner)
            for attr, value in before.items():
                if now.get(attr, value) is not value:
                    changed.append(f"{name}.{attr}")
                    try:
                        setattr(owner, attr, value)
                    except (AttributeError, TypeError):
                        pass
        torch_changed = restore_torch_state(self.torch)
        parts = []
        if changed:
            shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
            parts.append(f"the target replaced {shown}")
        if torch_changed:
            parts.append("the target changed torch's global state (" + ", ".join(torch_changed) + ")")
        return "; ".join(parts)


def guarded_result(result: CheckResult, guard: Guard) -> CheckResult:
    """``result``, failed when the target tampered with the oracle's modules or replaced their
    functions (the comparisons it passed may have used its replacements); torch's global state
    changes are restored and noted, and fail the check only when it would otherwise pass."""
    found = guard.check()
    if not found or result.status == Status.SKIP:
        return result
    tampered = "replaced" in found
    note = (f"TargetTampered: {found}; restored after the check. "
            + ("Its comparisons may have used the replacement, so this check cannot pass."
               if tampered else "A target must leave global state as it found it."))
    if result.status in (Status.PASS, Status.XPASS, Status.INCONCLUSIVE, Status.UNSUPPORTED) or tampered:
        status = Status.XFAIL if result.status in (Status.XFAIL, Status.XPASS) else Status.FAIL
        message = note + ("\n" + result.message if result.message else "")
        return replace(result, status=status, message=message)
    return replace(result, message=result.message + "\n  " + note)


def describe_checks(checks) -> list[dict]:
    """What the oracle needs to list, select and report the checks without running them."""
    return [{"name": c.name, "id": c.check_id, "skip": c.skip, "target": c.target, "kind": c.kind} for c in checks]


def build_checks(target, kind, device, dtypes):
    for name in dtypes:
        dtype_variant(name)
    return checks_for(resolve(target, kind), CheckOptions(device=device, dtypes=tuple(dtypes)))


# --------------------------------------------------------------------------- the worker process


def _redirect(fd: int, path: str):
    new = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(new, fd)
    os.close(new)


def _unbuffered(fd: int):
    return io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
                            line_buffering=True, write_through=True)


def _limit_memory(extra: int) -> None:
    """Cap the address space at what the worker maps now plus ``extra`` bytes (0: no cap)."""
    if not extra:
        return
    try:
        import resource

        with open("/proc/self/statm") as fh:
            mapped = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = mapped + extra
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, OSError, ValueError):
        pass  # no /proc or no RLIMIT_AS (not Linux): no cap; docs/isolation.md says so


def _watch_parent(pid: int) -> None:
    """End the worker when the oracle is gone (it may be stuck in the target's code)."""
    while True:
        time.sleep(1.0)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:
            pass


class JudgeFailed(Exception):
    """The oracle's process could not judge a case the worker sent (its message says why)."""


def remote_judge(conn):
    """The worker's :data:`bpttcheck.properties.judge.REMOTE`: the case and the target's results
    go to the oracle's process, which runs the reference and the comparisons there and sends the
    comparisons back."""

    def ask(name, case, got, kwargs):
        conn.send(("judge", name, case, got, kwargs))
        reply = conn.recv()
        if reply[0] != "judged":
            raise JudgeFailed(str(reply[1]))
        return reply[1]

    return ask


def serve(conn, target, kind, device, dtypes, memory, out_path, err_path, parent_pid) -> None:
    """The worker's main loop (see the module docstring); messages are tuples:

    to the oracle: ("checks", [description]) or ("load-error", type name, message) first; then
    per check ("case", shown case) as each case starts, ("judge", function name, case, the
    target's results, options) for each comparison, answered by ("judged", comparisons) or
    ("judge-error", message), and ("result", result dict) or
    ("ended", what) when the target ended the check with a BaseException (sys.exit,
    KeyboardInterrupt) — the oracle then recycles the worker. From the oracle:
    ("run", check id, xfail, profile, seed, a seed for the worker's ``random``) or ("stop",).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the user's Ctrl-C is the oracle's to handle
    _redirect(1, out_path)
    _redirect(2, err_path)
    sys.stdout, sys.stderr = _unbuffered(1), _unbuffered(2)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    _limit_memory(memory)
    judge.REMOTE = remote_judge(conn)  # before any Guard: replacing it is tampering
    try:
        checks = {c.check_id: c for c in build_checks(target, kind, device, dtypes)}
    except BaseException as exc:  # noqa: BLE001 - the oracle decides what a failed load means
        conn.send(("load-error", type(exc).__name__, str(exc)))
        return
    conn.send(("checks", describe_checks(checks.values())))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] != "run":
            return
        _, check_id, xfail, profile, seed, state = message
        random.seed(state)
        check = checks[check_id]
        guard = Guard()

        def body(case, inner=check.body):
            conn.send(("case", _shown(case)))
            try:
                return inner(case)
            except TargetFailure as exc:
                if getattr(exc, "raised", None) != "MemoryError":
                    raise
                # Over the memory cap: a failure of the target, never a decline of the case.
                raise TargetFailure(f"OutOfMemory: the target ran out of memory (MemoryError) in the worker, whose "
                                    f"memory cap is {memory / 2 ** 30:.1f} GiB above what it used at start "
                                    f"(--memory sets it)\n  " + str(exc)) from None

        try:
            result = run_check(replace(check, body=body), profile, seed, xfail=xfail)
        except BaseException as exc:  # noqa: BLE001 - sys.exit, KeyboardInterrupt: the target ended the check
            what = f"{type(exc).__name__}" + (f"({exc})" if str(exc) else "")
            tail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:])
            conn.send(("ended", what, tail))
            return
        conn.send(("result", guarded_result(result, guard).as_dict()))
