"""The README is a contract: its files run, its commands parse, its option table is the option
table, its links and deprecated names exist, and its verdicts are the ones a user gets."""

from __future__ import annotations

import importlib
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from bpttcheck.cli import build_parser
from bpttcheck.options import OPTIONS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", README, flags=re.S)
FILES = {m.group(1): code for _, code in BLOCKS if (m := re.match(r"# file: (\S+\.py)", code))}


def test_the_readme_names_its_example_files():
    assert {"test_my_layers.py", "mytbptt.py", "mysteps.py", "kerasmods.py", "jaxmods.py"} <= set(FILES)


@pytest.mark.parametrize("name", sorted(FILES))
def test_every_python_file_compiles(name):
    compile(FILES[name], name, "exec")


def _commands():
    """Every `bpttcheck verify …` the README shows: in shell blocks and in inline code."""
    found = []
    for lang, code in BLOCKS:
        if lang in ("sh", ""):
            found += [line for line in code.splitlines() if "bpttcheck verify" in line]
    found += re.findall(r"`(bpttcheck verify[^`]*)`", README)
    out = []
    for line in found:
        text = line[line.index("bpttcheck verify"):].split("#")[0].split("&&")[0].strip()
        out.append(text)
    return sorted(set(out))


@pytest.mark.parametrize("command", _commands())
def test_every_verify_command_parses(command):
    args = shlex.split(command)[1:]
    build_parser().parse_args(args)  # SystemExit(2) on an unknown flag or a bad choice


def test_the_option_table_is_the_option_table():
    table = README[README.index("## Options"):README.index("## Isolation")]
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    assert set(OPTIONS) <= set(rows), sorted(set(OPTIONS) - set(rows))
    for name, opt in OPTIONS.items():
        row = rows[name]
        for flag in (opt.cli_flag, opt.pytest_flag, opt.env):
            assert f"`{flag}" in row, (name, flag)


def test_links_point_at_files():
    for target in re.findall(r"\]\(([^)#]+)\)", README):
        assert (ROOT / target).exists(), target


def test_deprecated_names_still_import():
    table = README[README.index("## Deprecated names"):README.index("## Developing")]
    for name in re.findall(r"`(bpttcheck\.[\w.]+)`", table):
        module, _, attr = name.rpartition(".")
        try:
            importlib.import_module(name)
        except ModuleNotFoundError:
            assert hasattr(importlib.import_module(module), attr), name


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    for name in ("mytbptt.py", "mysteps.py", "test_my_layers.py"):
        (tmp_path / name).write_text(FILES[name], encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for mod in ("mytbptt", "mysteps"):
        sys.modules.pop(mod, None)


def test_the_tbptt_example_passes_one_scheme_and_declines_the_others(user_dir):
    pytest.importorskip("torch")
    from bpttcheck.properties.oracle import verify_target

    report = verify_target("mytbptt:tbptt_grads", device="cpu", profile="ci")
    statuses = {r.id: str(r.status) for r in report.results}
    assert {i for i, s in statuses.items() if s == "pass"} == {f"tbptt/subsequence/{c}[cpu,float64]"
                                                              for c in ("rnn", "lstm", "gru")}
    assert sum(s == "unsupported" for s in statuses.values()) == 6 and report.exit_status == 0


def test_the_step_example_passes(user_dir):
    pytest.importorskip("torch")
    from bpttcheck.properties.oracle import verify_target

    report = verify_target("mysteps:Peephole", device="cpu", profile="ci")
    assert [str(r.status) for r in report.results] == ["pass", "pass"]


def _pytest(user_dir, *args):
    """The user's own pytest run in ``user_dir``, with this checkout (``examples``) importable."""
    import os

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(user_dir), str(ROOT)])}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_layers.py", *args],
                          capture_output=True, text=True, cwd=user_dir, timeout=600, env=env)


def test_the_users_test_file_passes_and_the_buggy_lstm_fails(user_dir):
    pytest.importorskip("torch")
    run = _pytest(user_dir)
    assert run.returncode == 0 and "2 passed" in run.stdout, run.stdout + run.stderr
    buggy = FILES["test_my_layers.py"].replace("from examples.lstm import LSTM", "from examples.buggy_lstm import "
                                               "BuggyLSTM as LSTM")
    (user_dir / "test_my_layers.py").write_text(buggy, encoding="utf-8")
    run = _pytest(user_dir, "-k", "lstm_gradients")
    assert run.returncode == 1 and "CheckFailed" in run.stdout and "diagnosis: the result matches c detached" \
        in run.stdout, run.stdout[-3000:]


@pytest.mark.frameworks
@pytest.mark.parametrize("name, spec, backend, expect", [
    ("jaxmods.py", "jaxmods:MyLSTM", None, "2 passed"),
    ("kerasmods.py", "kerasmods:KerasLSTM", "torch", "2 passed, 4 unsupported"),
])
def test_the_framework_examples_pass(name, spec, backend, expect, tmp_path):
    import importlib.util
    import os

    for needed in ("torch", "jax" if backend is None else "keras"):
        if importlib.util.find_spec(needed) is None:  # keras imports its backend: find, don't import
            pytest.skip(f"{needed} is not installed")

    (tmp_path / name).write_text(FILES[name], encoding="utf-8")
    env = {**os.environ, **({"KERAS_BACKEND": backend} if backend else {})}
    run = subprocess.run([sys.executable, "-m", "bpttcheck", "verify", "--target", spec, "--device", "cpu", "-q"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert run.returncode == 0 and expect in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]
