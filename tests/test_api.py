"""``bpttcheck.check``: the assert-style API, in-process and inside a user's own pytest test."""

from __future__ import annotations

import os
import sys

import pytest

import bpttcheck
from bpttcheck.options import OptionError
from bpttcheck.properties.oracle import verify_target
from bpttcheck.properties.oracle.kinds import spec_of

pytest_plugins = ["pytester"]
torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from planted.torch_impl import make_module  # noqa: E402

ONE = dict(dtype="float64", select="gradients[cpu", profile="ci")


class MyGRU(torch.nn.GRU):
    """A user's subclass, defined in this test module (importable as tests' module:qualname)."""


def test_check_takes_the_class_itself_and_returns_the_report():
    report = bpttcheck.check(MyGRU, **ONE)
    assert report.ok and [r.id for r in report.results] == ["module/gru/gradients[cpu,float64]"]
    assert report.targets == [spec_of(MyGRU)] and report.results[0].target.endswith(":MyGRU")


def test_verify_target_takes_objects_too():
    report = verify_target(MyGRU, device="cpu", dtypes=("float64",), select="gradients[cpu", profile="ci")
    assert report.ok


def test_a_bug_raises_check_failed_carrying_the_report():
    Bad = make_module("lstm", "gate_order_ifog")
    with pytest.raises(bpttcheck.CheckFailed) as info:
        bpttcheck.check(Bad, kind="module", **ONE)
    err = info.value
    assert isinstance(err, AssertionError) and err.report.exit_status == 1
    text = str(err)
    assert text.startswith("bpttcheck: 1 of 1 checks failed for ") and "OutputMismatch: output differs" in text
    assert "reproduce:" in text


def test_raise_on_failure_false_returns_the_report():
    class Never(torch.nn.GRU):
        def __init__(self, *a, **k):
            raise NotImplementedError("nothing is implemented yet")

    assert bpttcheck.check(Never, raise_on_failure=False, **ONE).exit_status == 4


def test_nothing_checked_is_not_a_pass():
    class Never(torch.nn.GRU):
        def __init__(self, *a, **k):
            raise NotImplementedError("nothing is implemented yet")

    with pytest.raises(bpttcheck.NothingChecked, match="nothing could be checked.*nothing is implemented yet"):
        bpttcheck.check(Never, **ONE)


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(bogus=1), "check() got unknown keyword 'bogus'"),
    (dict(device="tpu"), "device='tpu': expected one of cpu, cuda, all"),
    (dict(seed="abc"), "seed='abc': expected an integer"),
    (dict(profile="fast"), "profile='fast': expected one of dev, ci, thorough"),
    (dict(timeout=float("nan")), "timeout=nan: expected a positive, finite number"),
    (dict(dtype="float64", dtypes=["float32"]), "both dtype= and dtypes="),
])
def test_bad_keywords_name_themselves(kwargs, fragment):
    with pytest.raises(OptionError) as info:
        bpttcheck.check(MyGRU, **kwargs)
    assert fragment in str(info.value)


@pytest.mark.slow  # a pytester run importing torch and shrinking a failure: 15-50 s
def test_check_inside_a_users_own_pytest_test(pytester, monkeypatch):
    """A class defined in the user's test module, checked from a test function of that module."""
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(test_mine='''
        import pytest
        import torch
        import bpttcheck

        class MyGRU(torch.nn.GRU):
            pass

        class BuggyGRU(torch.nn.GRU):
            def forward(self, input, hx=None):
                out, h = super().forward(input, hx)
                return out * 1.001, h

        def test_my_gru():
            bpttcheck.check(MyGRU, dtype="float64", select="gradients[cpu", profile="ci")

        def test_buggy_gru():
            bpttcheck.check(BuggyGRU, dtype="float64", select="gradients[cpu", profile="ci")
    ''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*CheckFailed: bpttcheck: 1 of 1 checks failed for test_mine:BuggyGRU*",
                                 "*OutputMismatch: output differs*"])


def test_hypothesis_prints_nothing_of_its_own():
    """Under the random dev profile (a fresh process: this suite's own profiles are derandomized),
    Hypothesis would print "You can reproduce this failure by adding @seed(…)" for every failing
    or declining search — 43 lines for one buggy LSTM; the oracle's verdict replaces them."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "CI" and not k.startswith("BPTTCHECK_")}
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(__file__)), env.get("PYTHONPATH", "")])
    run = subprocess.run([sys.executable, "-m", "bpttcheck", "verify", "--target", "examples.buggy_lstm:BuggyLSTM",
                          "--device", "cpu", "--dtype", "float64", "--profile", "dev", "-q"],
                         capture_output=True, text=True, env=env, timeout=300,
                         cwd=os.path.dirname(os.path.dirname(__file__)))
    assert run.returncode == 1, run.stdout + run.stderr
    assert "@seed" not in run.stdout + run.stderr and "Falsifying example" not in run.stdout + run.stderr
