"""``bpttcheck verify`` and ``bench`` as a CI step uses them: the option table's flags and
environment variables, exit statuses that explain themselves, the report and its schema.

In-process (``bpttcheck.cli.main``), run from the repository root so that ``examples`` imports.
"""

from __future__ import annotations

import json
import os

import pytest

from bpttcheck.cli import build_parser, main
from bpttcheck.options import OPTIONS
from bpttcheck.properties.results import schema

from schema_check import assert_valid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def clean_env(monkeypatch):
    for opt in OPTIONS.values():
        monkeypatch.delenv(opt.env, raising=False)
    monkeypatch.chdir(ROOT)
    return monkeypatch


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def test_help_documents_exit_statuses_and_kinds():
    verify = build_parser()._subparsers._group_actions[0].choices["verify"]
    text = verify.format_help()
    flat = " ".join(text.split())  # help text wraps with the terminal's width
    assert "exit status:" in text and "4  nothing could be checked" in text and "2  usage error" in text
    assert "tbptt      fn(module, x, hx, cotangent, k, scheme)" in text
    assert "[env: BPTTCHECK_TARGET]" in flat and "--report PATH" in flat
    # argparse writes "-k TEXT, --select TEXT" before Python 3.13 and "-k, --select TEXT" from 3.13 on
    assert "-k TEXT, --select TEXT" in flat or "-k, --select TEXT" in flat
    assert "--json" not in text  # a deprecated spelling works but is not advertised


@pytest.mark.torch
def test_the_cli_honours_the_environment_variables(clean_env, tmp_path, capsys):
    """BPTTCHECK_TARGET=examples.buggy_lstm:BuggyLSTM bpttcheck verify verifies that target."""
    pytest.importorskip("torch")
    out = tmp_path / "env.json"
    for name, value in (("TARGET", "examples.buggy_lstm:BuggyLSTM"), ("KIND", "module"), ("DEVICE", "cpu"),
                        ("DTYPE", "float64"), ("PROFILE", "ci"), ("SELECT", "module/lstm/gradients["),
                        ("QUIET", "1"), ("REPORT", str(out))):
        clean_env.setenv(f"BPTTCHECK_{name}", value)
    assert main(["verify"]) == 1
    report = json.loads(out.read_text())
    assert_valid(report, schema())
    assert report["targets"] == ["examples.buggy_lstm:BuggyLSTM"] and report["exit_status"] == 1
    (check,) = report["checks"]
    assert check["status"] == "fail" and check["target"] == "examples.buggy_lstm:BuggyLSTM"
    assert check["fail_abs"] > check["fail_allowed"] > 0
    printed = capsys.readouterr().out
    assert "GradientMismatch" in printed and printed.count("reproduce:") == 1
    assert "[1/1]" not in printed  # quiet: no progress lines


@pytest.mark.parametrize("argv, fragment", [
    (["--device", "cuda"], "every check skipped: no CUDA device"),
    (["--dtype", "float16", "--device", "cpu"], "float16 needs CUDA; this machine has none"),
    (["-k", "zzz"], "-k 'zzz' matched none of "),
])
def test_nothing_checked_is_exit_status_4_with_one_line_why(clean_env, capsys, argv, fragment):
    pytest.importorskip("torch")
    if _cuda() and "cuda" in fragment.lower():
        pytest.skip("this machine has CUDA")
    assert main(["verify", "-q", *argv]) == 4
    err = capsys.readouterr().err
    line = next(s for s in err.splitlines() if s.startswith("bpttcheck verify: "))
    assert fragment in line


@pytest.mark.parametrize("argv, fragment", [
    (["--kind", "bananas", "--target", "torch.nn:GRU"], "kind='bananas': expected one of module, cell"),
    (["--target", "nowhere_xyz:Thing"], "no module named 'nowhere_xyz'"),
    (["--skip", "missing-file.txt"], "missing-file.txt"),
    (["--timeout", "-1"], "expected a positive, finite number of seconds"),
])
def test_usage_errors_are_exit_status_2(clean_env, capsys, argv, fragment):
    try:
        code = main(["verify", *argv])
    except SystemExit as exc:  # argparse's own refusal (a flag's type)
        code = exc.code
    assert code == 2
    assert fragment in capsys.readouterr().err


def test_a_bad_environment_variable_is_a_usage_error(clean_env, capsys):
    clean_env.setenv("BPTTCHECK_DEVICE", "tpu")
    assert main(["verify"]) == 2
    assert "BPTTCHECK_DEVICE='tpu': expected one of cpu, cuda, all" in capsys.readouterr().err


@pytest.mark.torch
def test_cuda_rows_are_one_line_on_a_machine_without_cuda(clean_env, capsys):
    pytest.importorskip("torch")
    if _cuda():
        pytest.skip("this machine has CUDA")
    assert main(["verify", "--target", "torch.nn:GRU", "-q", "-k", "gradients[cpu,float64]"]) == 0
    out = capsys.readouterr().out
    assert main(["verify", "--target", "torch.nn:GRU", "-q", "--device", "all", "-k", "gradients["]) == 0
    table = capsys.readouterr().out
    assert "[cuda," not in table and "CUDA checks skipped: no CUDA device; --device cuda lists them" in table
    assert "module/gru/gradients[cpu,float64]" in out


@pytest.mark.torch
def test_id_files_match_the_same_way_as_in_the_plugin(clean_env, tmp_path, capsys):
    """A target-prefixed id and a pattern with literal brackets, in the CLI's xfail/skip files."""
    pytest.importorskip("torch")
    xfail = tmp_path / "xfail.txt"
    xfail.write_text("torch.nn:GRU::module/gru/gradients[cpu,float64]\n")
    skip = tmp_path / "skip.txt"
    skip.write_text("module/*/gradients[cpu,*]   # every CPU gradients check\n")
    out = tmp_path / "r.json"
    code = main(["verify", "--target", "torch.nn:GRU", "--device", "cpu", "--dtype", "float64", "-k", "gradients",
                 "--xfail", str(xfail), "--report", str(out), "-q"])
    statuses = {c["id"]: c["status"] for c in json.loads(out.read_text())["checks"]}
    assert statuses == {"module/gru/gradients[cpu,float64]": "xpass"} and code == 0
    main(["verify", "--target", "torch.nn:GRU", "--device", "cpu", "--dtype", "float64", "-k", "gradients",
          "--skip-file", str(skip), "--json", str(out), "-q"])  # the deprecated spellings
    (check,) = json.loads(out.read_text())["checks"]
    assert check["status"] == "skip" and "module/*/gradients[cpu,*]" in check["message"]
    assert "--json is deprecated; use --report" in capsys.readouterr().err


def test_bench_group_is_repeatable(capsys):
    assert main(["bench", "--list", "--group", "reference", "--group", "clipping"]) == 0
    groups = {line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert groups == {"reference", "clipping"}
    assert main(["bench", "--list", "--group", "nope"]) == 2
    assert "--group 'nope': expected one of" in capsys.readouterr().err
