"""The pytest plugin as another project uses it, run with pytest's own ``pytester``.

Each test builds a conftest-free project holding the repository's ``examples/`` (a correct LSTM
and one with a planted bug: the cell state detached at every step) and one ordinary test of the
project's own, then runs pytest in a subprocess with the plugin loaded from its entry point.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bpttcheck.options import OPTIONS
from bpttcheck.properties.results import schema

from schema_check import assert_valid

pytest_plugins = ["pytester"]

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
COMMON = ("-p", "no:cacheprovider", "--bpttcheck-device=cpu", "--bpttcheck-profile=ci")
GRADIENTS = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "input", "h0", "c0"}


@pytest.fixture
def project(pytester, monkeypatch):
    for opt in OPTIONS.values():  # the outer run's settings must not leak into the project's
        monkeypatch.delenv(opt.env, raising=False)
    monkeypatch.delenv("CI", raising=False)
    package = pytester.mkpydir("examples")
    for name in ("lstm.py", "buggy_lstm.py"):
        (package / name).write_text((EXAMPLES / name).read_text())
    pytester.makepyfile(test_own="def test_own():\n    assert 1 + 1 == 2\n")
    return pytester


def _report(project, name="report.json") -> dict:
    return json.loads((project.path / name).read_text())


def _by_id(report) -> dict:
    return {c["id"]: c for c in report["checks"]}


def test_without_a_target_the_plugin_adds_nothing_and_imports_nothing_heavy(project):
    project.makepyfile(test_imports="""
        import sys

        def test_light():
            heavy = [m for m in ("torch", "sympy", "bpttcheck.plugin_items", "bpttcheck.properties.oracle")
                     if m in sys.modules]
            assert heavy == []
    """)
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=2)
    assert "bpttcheck[" not in result.stdout.str()
    assert not (project.path / "report.json").exists()


def test_bad_settings_are_one_line_usage_errors(project, monkeypatch):
    monkeypatch.setenv("BPTTCHECK_PROFILE", "fast")
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: BPTTCHECK_PROFILE='fast': expected one of dev, ci, thorough"])
    monkeypatch.delenv("BPTTCHECK_PROFILE")
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "--bpttcheck-target=x:Y",
                                          "--bpttcheck-skip=missing.txt")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --bpttcheck-skip=missing.txt: *missing.txt* does not exist"])
    assert "Traceback" not in result.stderr.str()


@pytest.mark.torch
def test_a_correct_target_passes_with_skips_and_a_json_report(project):
    pytest.importorskip("torch")
    skip = project.makefile(".txt", skip="# options this LSTM does not have\n"
                                         "module/lstm/bidirectional[cpu,*]\nmodule/*/proj_size*  # nor this\n")
    result = project.runpytest_subprocess(*COMMON, "--bpttcheck-target=examples.lstm:LSTM", f"--bpttcheck-skip={skip}",
                                          "--bpttcheck-report=report.json", "-k", "float64", "-rs")
    report = _report(project)
    assert_valid(report, schema())
    checks = _by_id(report)
    # The packed groups: this LSTM declines PackedSequence. Where the group also draws padded
    # Tensors it is certified for those (pass, declining PackedSequence); where it only packs,
    # it is unsupported. Either way the verdict names the decline.
    packed = [checks[f"module/lstm/{g}[cpu,float64]"] for g in ("packed", "bidirectional_packed")]
    for c in packed:
        assert (c["status"], c["declines"]) == ("pass", ["PackedSequence"]) or \
            (c["status"] == "unsupported" and "PackedSequence" in c["message"]), c
    n_pass = 1 + sum(c["status"] == "pass" for c in packed)
    # float64 selects 5 of the 10 checks by id; the project's own test is deselected too.
    result.assert_outcomes(passed=n_pass, skipped=5 - n_pass, deselected=6)
    result.stdout.fnmatch_lines(["*listed in the skip file (module/lstm/bidirectional[[]cpu,*])*"])
    if n_pass > 1:
        result.stdout.fnmatch_lines(["bpttcheck: module/lstm/*packed[[]cpu,float64] passed (declines: PackedSequence)"])
    assert report["ok"] is True and report["targets"] == ["examples.lstm:LSTM"]
    assert (report["device"], report["profile"], report["skip_file"]) == ("cpu", "ci", str(skip))
    env = report["environment"]
    for key in ("python", "bpttcheck", "numpy", "hypothesis", "torch", "pytest", "cuda_available", "cudnn",
                "tf32_defaults"):
        assert key in env, key
    assert set(checks) == {f"module/lstm/{g}[cpu,float64]" for g in ("gradients", "bidirectional", "proj_size", "packed", "bidirectional_packed")}
    passed = checks["module/lstm/gradients[cpu,float64]"]
    assert passed["status"] == "pass" and passed["cases"] > 0 and 0 <= passed["worst_ratio"] <= 1
    assert passed["worst_quantity"] and passed["kind"] == "module" and passed["target"] == "examples.lstm:LSTM"
    assert checks["module/lstm/proj_size[cpu,float64]"]["status"] == "skip"
    assert "skip file" in checks["module/lstm/bidirectional[cpu,float64]"]["message"]
    summary = {"pass": n_pass, "skip": 2, "unsupported": 3 - n_pass}
    assert report["summary"] == {k: v for k, v in summary.items() if v}
    assert passed["nodeid"] == "bpttcheck[examples.lstm:LSTM]::module/lstm/gradients[cpu,float64]"



@pytest.mark.slow  # three interpreters importing torch: ~20 s alone, more on a busy machine
@pytest.mark.torch
def test_xdist_gives_the_same_report(project):
    pytest.importorskip("torch")
    pytest.importorskip("xdist")
    xfail = project.makefile(".txt", xfail="module/lstm/gradients[cpu,float32]\n")
    args = (*COMMON, "--bpttcheck-target=examples.lstm:LSTM", f"--bpttcheck-xfail={xfail}",
            "-k", "gradients or (packed and not bidirectional)")
    serial = project.runpytest_subprocess(*args, "--bpttcheck-report=serial.json")
    n_pass = 1 + sum(c["status"] == "pass" for c in _report(project, "serial.json")["checks"][2:])
    serial.assert_outcomes(passed=n_pass, xpassed=1, skipped=3 - n_pass, deselected=7)
    # The controller writes the report from the workers' test reports.
    project.runpytest_subprocess(*args, "--bpttcheck-report=spread.json", "-n", "2").assert_outcomes(
        passed=n_pass, xpassed=1, skipped=3 - n_pass)
    reports = [_report(project, name) for name in ("serial.json", "spread.json")]
    assert reports[1]["run"]["xdist_workers"] == 2
    for report in reports:  # timings differ between runs, nothing else may
        del report["run"]
        for check in report["checks"]:
            del check["seconds"]
    assert reports[0] == reports[1]
    assert [c["status"] for c in reports[0]["checks"]][:2] == ["xpass", "pass"]
    assert all(c["status"] in ("pass", "unsupported") for c in reports[0]["checks"][2:])


@pytest.mark.torch
def test_a_planted_bug_fails_by_name_through_environment_variables(project, monkeypatch):
    pytest.importorskip("torch")
    xfail = project.makefile(".txt", xfail="module/lstm/gradients[cpu,float32]\n")
    for name, value in (("TARGET", "examples.buggy_lstm:BuggyLSTM"), ("DEVICE", "cpu"), ("PROFILE", "ci"),
                        ("XFAIL", str(xfail)), ("REPORT", "bug.json")):
        monkeypatch.setenv(f"BPTTCHECK_{name}", value)
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "-k", "gradients")
    result.assert_outcomes(failed=1, xfailed=1, deselected=9)
    out = result.stdout.str()
    # The failure is the oracle's verdict and reproducer, not a traceback through the plugin.
    result.stdout.fnmatch_lines([
        "FAIL: module/lstm/gradients[[]cpu,float64] (* cases; target examples.buggy_lstm:BuggyLSTM)",
        "GradientMismatch: * differs (examples.buggy_lstm:BuggyLSTM on cpu, float64; lstm, *",
        "*worst |a-e| = *",
        "*reproduce:*",
    ])
    assert "load_target('examples.buggy_lstm:BuggyLSTM')" in out
    assert "plugin_items.py" not in out and "Traceback" not in out
    named = re.search(r"GradientMismatch: (\S+) differs", out).group(1)
    assert named in GRADIENTS  # a gradient: the forward pass of this bug is exact
    checks = _by_id(_report(project, "bug.json"))
    failed = checks["module/lstm/gradients[cpu,float64]"]
    assert failed["status"] == "fail" and failed["message"].startswith(f"GradientMismatch: {named} differs")
    assert checks["module/lstm/gradients[cpu,float32]"]["status"] == "xfail"


def test_bad_target_specs_are_one_line_collection_errors(project):
    project.makepyfile(layers="class MyLSTM:\n    pass\n")  # loading fails before torch is needed
    result = project.runpytest_subprocess(*COMMON, "--bpttcheck-target=examples.nothing:LSTM",
                                          "--bpttcheck-target=layers:MyLTSM")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([
        "*bpttcheck: target='examples.nothing:LSTM': no module named 'examples.nothing'*",
        "*bpttcheck: target='layers:MyLTSM': 'layers' has no attribute 'MyLTSM'; did you mean MyLSTM?",
        "*2 errors*",
    ])
    assert "Traceback" not in result.stdout.str()


def test_the_target_is_imported_by_its_worker_only(project):
    # import-time code of the target runs in its worker, never in pytest's own process
    pytest.importorskip("torch")
    project.makepyfile(layers="""
        import os
        with open("imported_by.txt", "a") as fh:
            fh.write(f"{os.getpid()}\\n")
        from examples.lstm import LSTM as MyLSTM
    """)
    project.makepyfile(test_pid="""
        import os

        def test_pid():
            with open("pytest_pid.txt", "w") as fh:
                fh.write(str(os.getpid()))
    """)
    result = project.runpytest_subprocess(*COMMON, "--bpttcheck-target=layers:MyLSTM", "--bpttcheck-dtype=float64",
                                          "--bpttcheck-select=lstm/gradients", "-k", "gradients or pid", "-v")
    result.assert_outcomes(passed=2)
    importers = set((project.path / "imported_by.txt").read_text().split())
    assert importers and (project.path / "pytest_pid.txt").read_text() not in importers


def test_an_item_points_at_the_targets_source_without_importing_it(monkeypatch):
    import sys

    from bpttcheck.plugin_items import _source_of

    monkeypatch.syspath_prepend(str(EXAMPLES.parent))
    sys.modules.pop("examples.buggy_lstm", None)
    path, line = _source_of("examples.buggy_lstm:BuggyLSTM")
    assert path.name == "buggy_lstm.py" and path.read_text().splitlines()[line].startswith("class BuggyLSTM")
    assert "examples.buggy_lstm" not in sys.modules
    assert _source_of("examples.nothing:X") is None


# --------------------------------------------------------------------------- a good citizen

HYPOTHESIS_PROBE = '''
    import json
    from hypothesis import given, settings, strategies as st

    RUNS = []

    @given(st.integers())
    def test_own_given(x):
        RUNS.append(x)

    def test_zz_record():
        s = settings.default
        with open("seen.json", "w") as fh:
            json.dump({"examples_run": len(RUNS), "max_examples": s.max_examples, "deadline": str(s.deadline),
                       "derandomize": s.derandomize, "database": type(s.database).__name__,
                       "print_blob": s.print_blob, "health": sorted(map(str, s.suppress_health_check))}, fh)
'''


def _seen(project, *args, plugin=True):
    flags = ("-p", "no:cacheprovider") + (() if plugin else ("-p", "no:bpttcheck"))
    project.runpytest_subprocess(*flags, *args, "-k", "own_given or zz_record").assert_outcomes(passed=2)
    return json.loads((project.path / "seen.json").read_text())


@pytest.mark.parametrize("mode", ["default", "CI=true", "own ci profile"])
def test_downstream_hypothesis_settings_are_untouched(project, monkeypatch, mode):
    """A project's own @given test runs with exactly the settings it has without bpttcheck."""
    project.makepyfile(test_probe=HYPOTHESIS_PROBE)
    args = ()
    if mode == "CI=true":
        monkeypatch.setenv("CI", "true")
    if mode == "own ci profile":
        project.makeconftest("from hypothesis import settings\n"
                             "settings.register_profile('ci', max_examples=7, derandomize=True, deadline=1234)\n")
        args = ("--hypothesis-profile=ci",)
    with_plugin, without = _seen(project, *args), _seen(project, *args, plugin=False)
    assert with_plugin == without
    if mode == "own ci profile":
        assert (with_plugin["max_examples"], with_plugin["examples_run"]) == (7, 7)


@pytest.mark.slow  # pytester runs importing torch: 15-40 s
@pytest.mark.torch
def test_downstream_hypothesis_settings_are_untouched_when_a_target_is_named(project):
    pytest.importorskip("torch")
    project.makepyfile(test_probe=HYPOTHESIS_PROBE)
    with_target = _seen(project, "--bpttcheck-target=examples.lstm:LSTM", "--bpttcheck-profile=ci")
    assert with_target == _seen(project, plugin=False)


@pytest.mark.slow  # pytester runs importing torch: 15-40 s
@pytest.mark.torch
def test_failing_items_rerun_by_node_id_and_with_lf(project):
    """The node id printed for a failure can be pasted back; --lf re-runs only the failures."""
    pytest.importorskip("torch")
    target = ("--bpttcheck-target=examples.buggy_lstm:BuggyLSTM", "--bpttcheck-device=cpu", "--bpttcheck-profile=ci",
              "--bpttcheck-dtype=float64", "--bpttcheck-select=gradients[")
    first = project.runpytest_subprocess(*target)
    first.assert_outcomes(failed=1, passed=1)  # the oracle's check, and the project's own test
    nodeid = "bpttcheck[examples.buggy_lstm:BuggyLSTM]::module/lstm/gradients[cpu,float64]"
    assert f"re-run: pytest '{nodeid}'" in first.stdout.str()
    again = project.runpytest_subprocess(*target, "--lf")
    again.assert_outcomes(failed=1, deselected=5)
    again.stdout.fnmatch_lines(["run-last-failure: rerun previous 1 failure*"])
    pasted = project.runpytest_subprocess(nodeid, "--bpttcheck-device=cpu", "--bpttcheck-profile=ci")
    pasted.assert_outcomes(failed=1)  # that check only: no other check, not the project's own tests
    assert "path cannot contain" not in pasted.stderr.str()


@pytest.mark.slow  # pytester runs importing torch: 15-40 s
@pytest.mark.torch
def test_the_cli_and_the_plugin_write_the_same_keys(project, monkeypatch):
    pytest.importorskip("torch")
    from bpttcheck.cli import main

    args = ("--target=torch.nn:GRU", "--device=cpu", "--profile=ci", "--dtype=float64", "--select=gradients[")
    project.runpytest_subprocess("-p", "no:cacheprovider", *(a.replace("--", "--bpttcheck-", 1) for a in args),
                                 "--bpttcheck-report=plugin.json")
    monkeypatch.chdir(project.path)
    assert main(["verify", "-q", *args, "--report=cli.json"]) == 0
    plugin, cli = _report(project, "plugin.json"), _report(project, "cli.json")
    for doc in (plugin, cli):
        assert_valid(doc, schema())
    assert set(plugin) == set(cli) and set(plugin["run"]) == set(cli["run"])
    assert [set(c) for c in plugin["checks"]] == [set(c) for c in cli["checks"]]
    assert plugin["checks"][0]["nodeid"] == cli["checks"][0]["nodeid"]
    for key in ("targets", "device", "profile", "summary", "ok", "exit_status"):
        assert plugin[key] == cli[key], key
