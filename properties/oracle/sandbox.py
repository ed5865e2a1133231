"""Isolation: each target's checks run in a worker process of their own (the default).

The oracle starts one worker per target (:class:`Worker`, the process side is
:func:`.sandbox_worker.serve`) and reuses it for all of that target's checks; a worker that
crashed, was stopped or was ended by its target is replaced by a fresh one for the checks left,
and the worker is closed before the next target starts, so nothing a target does to its process
(patched functions, torch's global switches, leaked threads, a broken heap) reaches another.

What comes back comes over a private pipe, never from the target's stdout; the parent checks
each result is well-formed and is the one it asked for, and reads the pipe with an unpickler
that builds nothing but plain data, NumPy arrays and the oracle's own classes (a pickle can
otherwise run any code where it is loaded). The module, cell, numpy, jax and tbptt checks are
judged here, in the oracle's process: the worker sends each case with the target's results,
and the reference, the tolerances and the comparisons run on this side
(:data:`bpttcheck.properties.judge.REMOTE`), so a target that patches NumPy or the judge in its
own process cannot change them; a worker reporting a pass for a check in which this side found
a mismatch is failed (``TargetTampered``). The worker's stdout and stderr go to
files (nothing can fill a pipe); their last lines are quoted when the worker dies. Every ending
has a verdict (``TargetCrashed`` or ``Timeout``, a FAIL): an exit status, ``sys.exit``, a signal
(named: "killed by SIGSEGV"), a ``KeyboardInterrupt`` raised by the target, a hang (no new case
within the per-case time limit) and running out of memory (a cap on the worker's address space).
Exit statuses carry no meaning of their own.

Workers are forked from multiprocessing's fork server (started once, with torch and the oracle
imported, before any torch thread pool runs: forking a process whose pools have run can
deadlock), or spawned where there is none. A target given as an object goes to the worker by
pickling (a class or function defined at module level); one that cannot be pickled (defined
inside a function) runs in-process, as ``in_process=True`` does.
"""

from __future__ import annotations

import atexit
import builtins
import io
import multiprocessing
import os
import pickle
import random
import shutil
import signal
import sys
import tempfile
import time
import types

from .. import judge
from ..results import CheckResult, Status
from ..runner import PropertyCheck
from . import sandbox_worker
from .targets import TargetError

__all__ = ["DEFAULT_TIMEOUT", "TAIL_LINES", "Worker", "WorkerPool", "can_isolate", "default_memory", "exit_text", "stub"]

#: Seconds allowed per case when none is given: generous (a correct target sleeping seconds per
#: call passes), so that only a hang ends a check.
DEFAULT_TIMEOUT = 120.0
#: Lines of the target's stdout and stderr quoted in a crash or timeout verdict.
TAIL_LINES = 20
_PRELOAD = ["numpy", "torch", "hypothesis", "bpttcheck.properties.oracle.sandbox_worker",
            "bpttcheck.properties.oracle.module_checks"]


def default_memory() -> int:
    """The default memory cap: half of the machine's physical memory (0 = none where unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (AttributeError, ValueError, OSError):
        return 0


def _context():
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        from multiprocessing import forkserver

        if getattr(forkserver._forkserver, "_forkserver_pid", None) is None:
            # Only before the fork server runs (it may be the user's too: it then keeps theirs).
            ctx.set_forkserver_preload(_PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


def can_isolate(target) -> bool:
    """Whether ``target`` can be sent to a worker: a spec string, or an object that pickles."""
    if isinstance(target, str):
        return True
    if getattr(target, "__module__", None) == "__main__" or getattr(type(target), "__module__", None) == "__main__":
        return False  # the worker does not import the user's script
    try:
        pickle.dumps(target)
        return True
    except Exception:
        return False


#: What a message from a worker may hold, besides the oracle's own classes (``bpttcheck.*``).
_SAFE_BUILTINS = frozenset({"bool", "bytes", "bytearray", "complex", "dict", "float", "frozenset", "int", "list",
                            "range", "set", "slice", "str", "tuple"})
_SAFE_NUMPY = frozenset({("numpy", "ndarray"), ("numpy", "dtype"), ("numpy._core.multiarray", "_reconstruct"),
                         ("numpy._core.multiarray", "scalar"), ("numpy.core.multiarray", "_reconstruct"),
                         ("numpy.core.multiarray", "scalar"), ("numpy._core.numeric", "_frombuffer"),
                         ("numpy.core.numeric", "_frombuffer")})


class _DataUnpickler(pickle.Unpickler):
    """Builds plain data, NumPy arrays and the oracle's own classes only: a message from the
    worker cannot make this process call anything else."""

    def find_class(self, module, name):
        if module == "builtins" and name in _SAFE_BUILTINS:
            return getattr(builtins, name)
        if (module, name) in _SAFE_NUMPY:
            return super().find_class(module, name)
        if module.startswith("bpttcheck.") and "." not in name:
            found = super().find_class(module, name)
            if isinstance(found, type):
                return found
        raise pickle.UnpicklingError(f"the worker sent {module}.{name}, which a message may not hold")


def _loads(data: bytes):
    return _DataUnpickler(io.BytesIO(data)).load()


def exit_text(code) -> str:
    """How a worker ended, in words: "was killed by SIGSEGV", "exited with status 3"."""
    if code is None:
        return "stopped responding"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        extra = " (the kernel's out-of-memory killer sends it, as does kill -9)" if -code == signal.SIGKILL else ""
        return f"was killed by {name}{extra}"
    return f"exited with status {code}"


def _tail(path: str, lines: int = TAIL_LINES) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode("utf-8", "backslashreplace")
    except OSError:
        return ""
    kept = text.splitlines()[-lines:]
    return "\n".join("    " + line[:500] for line in kept)


class Worker:
    """One worker process holding one target's checks; see the module docstring."""

    def __init__(self, target, kind, *, device, dtypes, memory):
        self.folder = tempfile.mkdtemp(prefix="bpttcheck-worker-")
        self.out, self.err = os.path.join(self.folder, "stdout"), os.path.join(self.folder, "stderr")
        ctx = _context()
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=sandbox_worker.serve, name="bpttcheck-worker", daemon=True,
                                args=(child, target, kind, device, tuple(dtypes), memory, self.out, self.err,
                                      os.getpid()))
        self.memory = memory
        # The worker needs nothing of the user's __main__: multiprocessing would import (run) their
        # script again in it, which a script without a __main__ guard does not survive.
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            self.proc.start()
        finally:
            sys.modules["__main__"] = main
        child.close()
        self.alive = True
        self.checks = None

    def load(self, timeout: float) -> list[dict]:
        """The descriptions of the target's checks; TargetError when it cannot be loaded."""
        message = self._receive(time.monotonic() + max(timeout, 60.0))
        if message is None or message[0] not in ("checks", "load-error"):
            ending = self.ending()
            raise TargetError(f"target: the worker process loading it {ending}" + self.tails())
        if message[0] == "load-error":
            self.close()
            _, kind, text = message
            if kind in ("TargetError", "OptionError"):
                raise TargetError(text)
            raise TargetError(f"loading the target raised {kind}: {text}")
        self.checks = message[1]
        return self.checks

    def _receive(self, deadline: float):
        """The next message, or None when the worker died or the deadline passed."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                if self.conn.poll(min(left, 0.5)):
                    return self._read()
            except (EOFError, OSError):
                return None
            if not self.proc.is_alive():
                try:
                    if self.conn.poll(0):
                        return self._read()
                except (EOFError, OSError):
                    pass
                return None

    def _read(self):
        data = self.conn.recv_bytes()
        try:
            return _loads(data)
        except Exception as exc:  # noqa: BLE001 - a message the oracle cannot read is the worker's fault
            return ("unreadable", f"{type(exc).__name__}: {exc}")

    def _judge(self, message) -> bool:
        """Judge a case the worker sent, here; False when the message is not a judge request."""
        try:
            _, name, case, got, kwargs = message
            fn = {"compare_results": judge.compare_results, "compare_truncated": judge.compare_truncated}[name]
            if not isinstance(got, dict) or not isinstance(kwargs, dict):
                return False
        except (ValueError, KeyError, TypeError):
            return False
        try:
            comparisons = fn(case, got, raise_on_mismatch=False, **kwargs)
        except Exception as exc:  # noqa: BLE001 - said to the worker: its check fails with it
            self.conn.send(("judge-error", f"the oracle could not judge the target's results: "
                                           f"{type(exc).__name__}: {exc}"))
            return True
        self.judged += 1
        if not all(c.ok for c in comparisons):
            self.mismatched += 1
        self.conn.send(("judged", comparisons))
        return True

    def run(self, description: dict, xfail: bool, *, profile, seed, timeout, tick=None) -> CheckResult:
        """Run one check in the worker; a crash, a hang or a target ending the worker is a FAIL."""
        ident = dict(id=description["id"], target=description["target"], kind=description["kind"])
        started = time.perf_counter()
        # The worker draws its random cases from this process's random state (as an in-process run
        # would), so a run under a seeded or deterministic PRNG (pytest's) stays reproducible.
        self.conn.send(("run", description["id"], xfail, profile, seed, random.getrandbits(128)))
        cases, case = 0, "(before its first case)"
        self.judged = self.mismatched = 0
        while True:
            deadline = time.monotonic() + timeout
            message = self._receive(deadline)
            if message is None:
                hung = time.monotonic() >= deadline  # else the pipe closed: the worker is gone
                if not hung:
                    self.proc.join(timeout=5.0)  # its exit status, from the fork server
                self.close()
                if hung:
                    head = (f"Timeout: one case ran longer than {timeout:g} s and the worker running the target was "
                            f"stopped; the target hangs or is far too slow (set the limit with --timeout)\n"
                            f"  case {cases}: {case}")
                else:
                    code = self.proc.exitcode
                    memory = self._memory_note() if code in (-signal.SIGKILL, -signal.SIGABRT) else ""
                    head = (f"TargetCrashed: the worker process running the target {self.ending()} during case "
                            f"{cases}" + memory + f"\n  case: {case}")
                return self._failed(description, head + self.tails(), cases, started, xfail)
            if message[0] == "case":
                cases += 1
                case = str(message[1])
                if tick is not None:
                    tick(f"{cases} cases")
            elif message[0] == "ended":
                self.close()
                head = (f"TargetCrashed: the target ended the check by raising {message[1]} during case {cases} "
                        f"(the worker was replaced)\n  case: {case}\n  where:\n"
                        + "\n".join("    " + s for s in str(message[2]).rstrip().splitlines()[-6:]))
                return self._failed(description, head + self.tails(), cases, started, xfail)
            elif message[0] == "judge" and self._judge(message):
                continue
            elif message[0] == "result":
                return self._checked(message[1], description, cases, started, xfail)
            else:
                self.close()
                return self._failed(description, f"TargetCrashed: the worker sent an unexpected message "
                                                 f"{str(message)[:200]!r}", cases, started, xfail)

    def _memory_note(self) -> str:
        if self.memory:
            return f" (its memory cap is {self.memory / 2 ** 30:.1f} GiB; --memory sets it)"
        return ""

    def _checked(self, data, description, cases, started, xfail) -> CheckResult:
        """The worker's result, taken only when it is well-formed and for the check asked."""
        try:
            result = CheckResult.from_dict(data)
            result.status = Status(result.status)
            ok = result.id == description["id"] and isinstance(result.cases, int) and result.cases >= 0
        except Exception:  # noqa: BLE001 - anything malformed is the worker's fault, never a verdict
            ok = False
        if not ok:
            self.close()
            return self._failed(description, "TargetCrashed: the worker sent back a malformed result",
                                cases, started, xfail)
        if self.mismatched and result.status in (Status.PASS, Status.XPASS, Status.INCONCLUSIVE, Status.UNSUPPORTED):
            self.close()
            return self._failed(description, f"TargetTampered: the worker reported {result.status.value} although "
                                             f"the oracle's own comparisons found a mismatch in {self.mismatched} of "
                                             f"the {self.judged} cases it judged", cases, started, xfail)
        return result

    def _failed(self, description, message, cases, started, xfail) -> CheckResult:
        return CheckResult(description["name"], Status.XFAIL if xfail else Status.FAIL, id=description["id"],
                           target=description["target"], kind=description["kind"], cases=cases,
                           seconds=time.perf_counter() - started, message=message)

    def ending(self) -> str:
        self.proc.join(timeout=5.0)
        return exit_text(self.proc.exitcode)

    def tails(self) -> str:
        parts = []
        for name, path in (("stdout", self.out), ("stderr", self.err)):
            text = _tail(path)
            if text.strip():
                parts.append(f"\n  last lines of the target's {name}:\n{text}")
        return "".join(parts)

    def close(self) -> None:
        if not self.alive:
            return
        self.alive = False
        try:
            self.conn.send(("stop",))
        except (OSError, ValueError):
            pass
        self.proc.join(timeout=0.5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(timeout=5.0)
        self.conn.close()

    def remove(self) -> None:
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class WorkerPool:
    """The workers of a run, one per target (key: target, kind, device, precisions, memory cap):
    :meth:`get` starts one (or replaces one that died), :meth:`release` closes a target's worker
    when its checks are done, :meth:`close` all of them."""

    def __init__(self):
        self.workers = {}
        atexit.register(self.close)

    @staticmethod
    def key(target, kind, device, dtypes, memory):
        return (target if isinstance(target, str) else id(target), kind, device, tuple(dtypes), memory)

    def get(self, target, kind, *, device, dtypes, memory, timeout) -> Worker:
        key = self.key(target, kind, device, dtypes, memory)
        worker = self.workers.get(key)
        if worker is not None and not worker.alive:
            self.release(key)
            worker = None
        if worker is None:
            worker = Worker(target, kind, device=device, dtypes=dtypes, memory=memory)
            try:
                worker.load(timeout)
            except BaseException:
                worker.remove()
                raise
            self.workers[key] = worker
        return worker

    def release(self, key) -> None:
        worker = self.workers.pop(key, None)
        if worker is not None:
            worker.remove()

    def close(self) -> None:
        for key in list(self.workers):
            self.release(key)


def stub(description: dict) -> PropertyCheck:
    """A check as the parent lists it: its name, id, skip reason, target and kind (the body runs
    in the worker)."""
    return PropertyCheck(description["name"], None, None, skip=description["skip"], id=description["id"],
                         target=description["target"], kind=description["kind"])
