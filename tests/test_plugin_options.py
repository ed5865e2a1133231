"""The option table shared by the pytest plugin and the CLI, and the skip/xfail id files.

In-process and fast; the plugin's behaviour in a pytest run is tested in test_plugin.py.
"""

from __future__ import annotations

import argparse

import pytest

from bpttcheck import options
from bpttcheck.options import OPTIONS, matching_pattern, read_id_file, resolve

ID = "module/lstm/gradients[cpu,float64]"


def test_all_names_exist():
    for name in options.__all__:
        assert hasattr(options, name), name


def test_every_option_has_flag_env_keyword_and_help():
    assert set(OPTIONS) == {"target", "kind", "device", "dtype", "profile", "seed", "timeout", "memory", "in-process",
                            "skip", "xfail", "report", "select", "quiet"}
    for opt in OPTIONS.values():
        assert opt.pytest_flag == f"--bpttcheck-{opt.name}"
        assert opt.cli_flag == f"--{opt.name}"
        assert opt.env == f"BPTTCHECK_{opt.name.upper().replace('-', '_')}"
        assert opt.keyword.isidentifier() and opt.help


def test_the_kind_list_is_written_once():
    """The option table names no kind: the verify command's help lists the registry's."""
    from bpttcheck.properties.oracle.kinds import KINDS, REGISTRY

    assert KINDS == tuple(k.name for k in REGISTRY)
    assert not any(k in OPTIONS["kind"].help for k in ("tbptt", "randomized"))
    parser = argparse.ArgumentParser()
    from bpttcheck.commands import verify

    verify.add_arguments(parser)
    assert all(f"  {k:<11}" in parser.epilog for k in KINDS)


@pytest.mark.parametrize("name, given, env, expected", [
    ("target", ["a.b:C"], {"BPTTCHECK_TARGET": "x:Y"}, ["a.b:C"]),  # the command line wins
    ("target", None, {"BPTTCHECK_TARGET": "a.b:C, d:E\tf.g:H"}, ["a.b:C", "d:E", "f.g:H"]),
    ("target", None, {}, []),
    ("device", None, {}, "all"),
    ("device", None, {"BPTTCHECK_DEVICE": "cpu"}, "cpu"),
    ("device", "cuda", {"BPTTCHECK_DEVICE": "cpu"}, "cuda"),
    ("profile", None, {}, None),  # the plugin then applies its CI-aware default
    ("seed", None, {"BPTTCHECK_SEED": "12"}, 12),
    ("kind", None, {"BPTTCHECK_KIND": "module:lstm"}, "module:lstm"),
    ("report", None, {"BPTTCHECK_REPORT": " out.json "}, "out.json"),
])
def test_resolve(name, given, env, expected):
    assert resolve(OPTIONS[name], given, env) == expected


@pytest.mark.parametrize("name, env, fragment", [
    ("device", {"BPTTCHECK_DEVICE": "gpu"}, "BPTTCHECK_DEVICE='gpu': expected one of cpu, cuda, all"),
    ("profile", {"BPTTCHECK_PROFILE": "fast"}, "BPTTCHECK_PROFILE='fast': expected one of dev, ci, thorough"),
    ("seed", {"BPTTCHECK_SEED": "one"}, "BPTTCHECK_SEED='one': expected an integer"),
    ("timeout", {"BPTTCHECK_TIMEOUT": "-1"}, "BPTTCHECK_TIMEOUT='-1': expected a positive, finite number"),
    ("quiet", {"BPTTCHECK_QUIET": "maybe"}, "BPTTCHECK_QUIET='maybe': expected a boolean"),
])
def test_bad_environment_values_name_the_variable(name, env, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        resolve(OPTIONS[name], None, env)


def test_the_same_table_builds_the_cli(capsys):
    parser = argparse.ArgumentParser()
    options.add_argparse_options(parser)
    args = parser.parse_args(["--target", "a:B", "--target", "c:D", "--device", "cpu", "--seed", "3", "-k", "gru",
                              "-q", "--timeout", "2.5", "--dtype", "float64", "--dtype", "float32"])
    assert resolve(OPTIONS["target"], args.bpttcheck_target, {}) == ["a:B", "c:D"]
    assert resolve(OPTIONS["device"], args.bpttcheck_device, {}) == "cpu"
    assert resolve(OPTIONS["seed"], args.bpttcheck_seed, {}) == 3
    assert (args.bpttcheck_select, args.bpttcheck_quiet, args.bpttcheck_timeout) == ("gru", True, 2.5)
    assert args.bpttcheck_dtype == ["float64", "float32"]
    for bad in (["--device", "tpu"], ["--timeout", "nan"], ["--timeout", "0"], ["--seed", "x"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
    assert "--timeout: invalid float value: 'nan'" not in capsys.readouterr().err  # the table's own message
    only = argparse.ArgumentParser()
    options.add_argparse_options(only, names={"skip", "xfail"})
    assert only.parse_args(["--skip", "s.txt"]).bpttcheck_skip == "s.txt"
    with pytest.raises(SystemExit):
        only.parse_args(["--target", "a:B"])


def test_id_file_comments_and_blank_lines(tmp_path):
    path = tmp_path / "xfail.txt"
    path.write_text("# known problems\n\nmodule/lstm/packed[cpu,*]   # no packing yet\n  clip/*  \n#\n")
    assert read_id_file(path) == ["module/lstm/packed[cpu,*]", "clip/*"]
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_id_file(tmp_path / "missing.txt")


@pytest.mark.parametrize("pattern, matches", [
    (ID, True),  # an id as printed, brackets and all
    ("module/lstm/gradients[cpu,float32]", False),
    ("module/*/gradients[cpu,*]", True),  # brackets taken literally
    ("module/*/gradients[cuda,*]", False),
    ("module/lstm/*", True),
    ("*float64]", True),
    ("module/gru/*", False),
    ("Module/lstm/*", False),  # case-sensitive, like the ids
])
def test_matching_pattern(pattern, matches):
    assert (matching_pattern(ID, [pattern]) == pattern) is matches


def test_matching_pattern_tries_every_name_of_a_check():
    names = (ID, "pkg.mod:MyLSTM::" + ID)
    assert matching_pattern(names, ["pkg.mod:MyLSTM::*"]) == "pkg.mod:MyLSTM::*"
    assert matching_pattern(names, ["other:X::*", "*gradients*"]) == "*gradients*"
    assert matching_pattern(names, []) is None


def test_the_example_xfail_file_parses_and_selects_tf32_checks_on_cuda():
    from pathlib import Path

    patterns = read_id_file(Path(__file__).resolve().parents[1] / "examples" / "bpttcheck-xfail.txt")
    assert patterns == ["module/lstm/*[cuda,tf32]"]
    assert matching_pattern("module/lstm/gradients[cuda,tf32]", patterns)
    assert matching_pattern("module/lstm/gradients[cuda,float32]", patterns) is None


def test_deprecated_cli_spellings_still_work_and_say_so(capsys):
    parser = argparse.ArgumentParser()
    options.add_argparse_options(parser)
    args = parser.parse_args(["--json", "r.json", "--skip-file", "s.txt", "--xfail-file", "x.txt"])
    assert (args.bpttcheck_report, args.bpttcheck_skip, args.bpttcheck_xfail) == ("r.json", "s.txt", "x.txt")
    err = capsys.readouterr().err
    assert "--json is deprecated; use --report" in err and "--skip-file is deprecated; use --skip" in err


@pytest.mark.parametrize("name, value, expected", [
    ("device", "cpu", "cpu"), ("seed", 3, 3), ("timeout", 2, 2.0), ("dtype", "float64", ["float64"]),
    ("dtype", ("float64", "float32"), ["float64", "float32"]), ("quiet", True, True), ("skip", None, None),
])
def test_api_keywords_are_validated_by_the_table(name, value, expected):
    assert options.validate(name, value) == expected


@pytest.mark.parametrize("name, value, fragment", [
    ("device", "tpu", "device='tpu': expected one of cpu, cuda, all"),
    ("seed", "abc", "seed='abc': expected an integer"),
    ("seed", 1.5, "seed=1.5 (type=float): expected an integer"),
    ("profile", "fast", "profile='fast': expected one of dev, ci, thorough"),
    ("timeout", float("nan"), "timeout=nan: expected a positive, finite number"),
    ("timeout", 0, "timeout=0: expected a positive"),
    ("dtype", 64, "dtypes=64: expected a string or a list"),
    ("bogus", 1, "'bogus' is not a bpttcheck option"),
])
def test_bad_api_keywords_name_the_keyword(name, value, fragment):
    with pytest.raises(options.OptionError) as info:
        options.validate(name, value)
    assert fragment in str(info.value)


def test_one_matcher_for_every_surface():
    """The README's forms: an id, a pattern with literal brackets, a target-prefixed id."""
    patterns = ["pkg.mod:MyLSTM::module/lstm/*", "module/*/packed[cuda,*]"]
    assert options.id_matches("pkg.mod:MyLSTM", "module/lstm/gradients[cpu,float64]", patterns)
    assert options.id_matches("other:LSTM", "module/lstm/gradients[cpu,float64]", patterns) is None
    assert options.id_matches("other:LSTM", "module/gru/packed[cuda,float32]", patterns)
