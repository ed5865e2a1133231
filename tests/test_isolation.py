"""Isolation (issue 13): whatever a target does, the run ends by itself with a verdict against that
target only. Each hostile target (tests/hostile/lstm.py) is an ``nn.LSTM`` with one behaviour in
``forward``; each is run on one check (``-k gradients``, float64, the derandomized ``ci`` cases)
with the default options, through the API and, for the endings of the whole process, the CLI.
No timed assertions: a hang is stopped by a short ``timeout`` and only the verdict is checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bpttcheck.properties.oracle.api import verify_target

torch = pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[1]
HOSTILE = "tests.hostile.lstm"


@pytest.fixture(autouse=True)
def _importable(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.chdir(ROOT)


def _one(name, **kw):
    report = verify_target(f"{HOSTILE}:{name}", "module:lstm", device="cpu", profile="ci", select="gradients",
                           dtypes=("float64",), **kw)
    (result,) = report.results
    return result


@pytest.mark.parametrize("name, status, start, fragment", [
    ("ExitZero", "fail", "TargetCrashed", "raising SystemExit(0)"),
    ("ExitThree", "fail", "TargetCrashed", "raising SystemExit(3)"),
    ("HardExitZero", "fail", "TargetCrashed", "exited with status 0"),
    ("HardExitThree", "fail", "TargetCrashed", "exited with status 3"),
    ("Segfault", "fail", "TargetCrashed", "was killed by SIGSEGV"),
    ("Killed", "fail", "TargetCrashed", "was killed by SIGKILL"),
    ("RaisesKeyboardInterrupt", "fail", "TargetCrashed", "raising KeyboardInterrupt"),
    ("ForgesResult", "fail", "OutputMismatch", "output differs"),
    ("PatchesNumpy", "fail", "TargetTampered", "replaced numpy.abs"),
    ("DisablesGrad", "fail", "TargetTampered", "grad mode: True -> False"),
    ("LoosensTheJudge", "fail", "OutputMismatch", "output differs"),  # judged in the oracle's process
    ("SkipsTheJudge", "fail", "TargetTampered", "replaced bpttcheck.properties.judge.REMOTE"),
    ("NoisyStderr", "pass", "", ""),
    ("StdoutNoNewline", "pass", "", ""),
])
def test_each_ending_has_a_verdict(name, status, start, fragment):
    r = _one(name)
    assert r.status == status, r.message
    assert r.message.startswith(start) and fragment in (r.message.splitlines() or [""])[0], r.message


def test_a_crash_quotes_the_targets_own_output():
    assert "reading address 0" in _one("Segfault").message  # its stderr
    assert "about to leave" in _one("HardExitThree").message  # its stdout


def test_a_hang_is_stopped_by_the_time_limit():
    r = _one("Hangs", timeout=2)
    assert r.status == "fail" and r.message.startswith("Timeout: one case ran longer than 2 s"), r.message


def test_running_out_of_memory_is_a_failure_not_a_decline():
    r = _one("EatsMemory", memory="256M")
    assert r.status == "fail" and "OutOfMemory" in r.message.splitlines()[0], r.message


@pytest.mark.slow
def test_a_slow_correct_target_passes_with_the_default_limit():
    report = verify_target(f"{HOSTILE}:SlowButCorrect", "module:lstm", device="cpu", profile="dev",
                           select="gradients[cpu,float64]", dtypes=("float64",))
    assert report.ok, report.table()


def test_nothing_leaks_into_the_next_target():
    report = verify_target([f"{HOSTILE}:DisablesGrad", "torch.nn:GRU"], None, device="cpu", profile="ci",
                           select="gradients", dtypes=("float64",))
    status = {r.target: r.status for r in report.results}
    assert status == {f"{HOSTILE}:DisablesGrad": "fail", "torch.nn:GRU": "pass"}, report.table()
    report = verify_target([f"{HOSTILE}:PatchesNumpy", "examples.buggy_lstm:BuggyLSTM"], "module:lstm",
                           device="cpu", profile="ci", select="gradients", dtypes=("float64",))
    first, second = report.results
    assert first.status == "fail" and second.status == "fail" and "TargetTampered" not in second.message


@pytest.mark.parametrize("in_process", [True])
def test_in_process_guards_global_state_too(in_process):
    import numpy
    import torch

    abs_before = numpy.abs
    r = _one("PatchesNumpy", in_process=in_process)
    assert r.status == "fail" and r.message.startswith("TargetTampered")
    assert numpy.abs is abs_before
    r = _one("DisablesGrad", in_process=in_process)
    assert r.status == "fail" and torch.is_grad_enabled()


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "bpttcheck", "verify", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=600)


def test_cli_sys_exit_zero_still_gives_a_table_and_a_report(tmp_path):
    out = tmp_path / "r.json"
    proc = _cli("--target", f"{HOSTILE}:ExitZero", "--kind", "module:lstm", "-k", "gradients[cpu,float64]",
                "--device", "cpu", "--profile", "ci", "-q", "--report", str(out))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "TargetCrashed" in proc.stdout and "Traceback" not in proc.stderr
    assert json.loads(out.read_text())["summary"] == {"fail": 1}


def test_cli_timeout_is_validated():
    for bad in ("nan", "0", "-1", "inf"):
        proc = _cli("--target", "torch.nn:GRU", "--timeout", bad)
        assert proc.returncode == 2 and "--timeout" in proc.stderr and "positive, finite" in proc.stderr


def test_cli_ctrl_c_prints_what_finished_and_exits_130(tmp_path):
    import signal
    import time

    out = tmp_path / "r.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "bpttcheck", "verify", "--target", "torch.nn:GRU",
                             "--target", f"{HOSTILE}:Hangs", "--kind", "module", "--device", "cpu", "--profile",
                             "ci", "-k", "gradients[cpu,float64]", "--report", str(out)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # wait (untimed) until the first target's check has finished: its line on stderr
    seen = ""
    while "[1/2]" not in seen and proc.poll() is None:
        seen += proc.stderr.readline()
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr and "module/gru/gradients[cpu,float64]" in stdout
    doc = json.loads(out.read_text())
    assert doc["run"]["interrupted"] is True and doc["summary"] == {"pass": 1}


def test_the_pipe_builds_data_never_calls():
    import os
    import pickle

    from bpttcheck.properties.oracle import sandbox
    from bpttcheck.properties.strategies import make_case
    from bpttcheck.reference import RecurrentConfig

    case = make_case(RecurrentConfig("lstm", 2, 3), T=3, B=2, seed=1, lengths=[3, 2])
    message = ("judge", "compare_results", case, {"output": case.x[..., :1]}, {"precision": "float64"})
    back = sandbox._loads(pickle.dumps(message))
    assert back[2].config == case.config and (back[2].x == case.x).all()

    class Evil:
        def __reduce__(self):
            return os.system, ("echo pwned",)

    with pytest.raises(pickle.UnpicklingError, match="posix.system|os.system"):
        sandbox._loads(pickle.dumps(("result", Evil())))


def test_a_pass_the_oracle_did_not_see_is_tampering():
    from bpttcheck.properties.oracle import sandbox
    from bpttcheck.properties.results import CheckResult, Status

    worker = sandbox.Worker.__new__(sandbox.Worker)
    worker.alive, worker.judged, worker.mismatched = False, 7, 2
    description = {"id": "module/lstm/gradients[cpu,float64]", "name": "n", "target": "t", "kind": "module"}
    forged = CheckResult("n", Status.PASS, id=description["id"], cases=7).as_dict()
    r = worker._checked(forged, description, 7, 0.0, False)
    assert r.status == Status.FAIL and r.message.startswith("TargetTampered: the worker reported pass")
    assert "mismatch in 2 of the 7 cases" in r.message


def test_a_target_that_cannot_go_to_a_worker_says_it_ran_in_process():
    from bpttcheck.properties.oracle.api import NotIsolatedWarning

    class LocalLSTM(torch.nn.LSTM):  # defined inside a function: it cannot be pickled
        pass

    with pytest.warns(NotIsolatedWarning, match="cannot be sent to a worker process"):
        report = verify_target(LocalLSTM, "module:lstm", device="cpu", profile="ci", select="gradients",
                               dtypes=("float64",))
    (r,) = report.results
    assert r.status == "pass" and "ran in this process" in r.details["isolation"]
    isolated = verify_target(f"{HOSTILE}:NoisyStderr", "module:lstm", device="cpu", profile="ci",
                             select="gradients", dtypes=("float64",))
    assert "isolation" not in isolated.results[0].details
