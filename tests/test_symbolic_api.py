"""The symbolic layer's public surface: lazy imports, __all__, argument validation, the derive
command and the benchmark hooks."""

import importlib
import subprocess
import sys

import numpy as np
import pytest

from bpttcheck.reference import InvalidArgument, RecurrentConfig

MODULES = ["bench", "bounds", "cells", "checks", "codegen", "dag", "derive", "derive_cli", "functions", "identities",
           "layers", "oracle", "polynomial", "precision", "program", "render", "reverse", "running", "truncation",
           "truncation_identities", "unroll"]


def test_sympy_is_not_imported_by_the_other_layers_or_the_cli_parser():
    code = (
        "import sys, bpttcheck.reference, bpttcheck.properties, bpttcheck.plugin, bpttcheck.symbolic, "
        "bpttcheck.symbolic.derive_cli\n"
        "from bpttcheck.cli import build_parser; build_parser()\n"
        "print('sympy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.symbolic
@pytest.mark.parametrize("name", MODULES)
def test_every_public_module_has_a_truthful_all(name):
    mod = importlib.import_module(f"bpttcheck.symbolic.{name}")
    assert mod.__all__, name
    for item in mod.__all__:
        assert hasattr(mod, item), f"{name}.{item}"


def test_package_getattr_is_lazy_and_rejects_unknown_names():
    import bpttcheck.symbolic as s

    with pytest.raises(AttributeError):
        s.no_such_module  # noqa: B018


def _bad_calls():
    from bpttcheck.symbolic import oracle, truncation, unroll

    cfg = RecurrentConfig("rnn", 1, 2)
    p = {"weight_ih_l0": np.zeros((2, 1)), "weight_hh_l0": np.zeros((2, 2)), "bias_ih_l0": np.zeros(2), "bias_hh_l0": np.zeros(2)}
    x, G = np.zeros((2, 1, 1)), np.zeros((2, 1, 2))
    return [
        (lambda: unroll.unroll(cfg, 0), "T=0"),
        (lambda: unroll.unroll(RecurrentConfig("rnn", 1, 2, bidirectional=True), 2), "bidirectional=False"),
        (lambda: oracle.pair_sum(RecurrentConfig("rnn", 1, 2, num_layers=2), p, x, G), "params"),
        (lambda: oracle.pair_sum(RecurrentConfig("rnn", 1, 2, num_layers=2), p | {
            "weight_ih_l1": np.zeros((2, 2)), "weight_hh_l1": np.zeros((2, 2)), "bias_ih_l1": np.zeros(2),
            "bias_hh_l1": np.zeros(2)}, x, G, h0=np.zeros((1, 1, 2))), "h0"),
        (lambda: unroll.gradient(unroll.unroll(cfg, 1), engine="autograd"), "engine="),
        (lambda: unroll.unroll("rnn", 2), "expected a RecurrentConfig"),
        (lambda: oracle.pair_sum(cfg, p, x, np.zeros((2, 1, 3))), "cotangent"),
        (lambda: oracle.pair_sum(cfg, {"weight_ih_l0": p["weight_ih_l0"]}, x, G), "params"),
        (lambda: oracle.pair_sum(cfg, p, x, G, weights=np.ones((2, 2))), "weights"),
        (lambda: oracle.pair_sum(cfg, p, x, G, dps=20), "dps=20"),
        (lambda: oracle.pair_sum(cfg, p, x, G, c0=np.zeros((1, 1, 2))), "c0"),
        (lambda: oracle.rounded_gradients(cfg, p, x, G, bits=4), "bits=4"),
        (lambda: truncation.subsequence(-1), "k=-1"),
        (lambda: truncation.window_function("abc", 3), "window="),
        (lambda: truncation.randomized_weights([]), "xi="),
    ]


@pytest.mark.symbolic
def test_bad_arguments_raise_invalid_argument_naming_them():
    for call, fragment in _bad_calls():
        with pytest.raises(InvalidArgument) as info:
            call()
        assert fragment in str(info.value), (fragment, str(info.value))


@pytest.mark.symbolic
@pytest.mark.parametrize("fmt,marker", [("markdown", "$$"), ("latex", r"\[")])
def test_derive_command_writes_a_checked_derivation(tmp_path, fmt, marker):
    from bpttcheck.cli import main

    out = tmp_path / "d.txt"
    assert main(["derive", "--cell", "rnn", "-T", "2", "--format", fmt, "--output", str(out)]) == 0
    text = out.read_text()
    assert marker in text and r"\frac{\partial L}{\partial W_{hh}}" in text
    assert "CHECK FAILED" not in text and "closed" in text


@pytest.mark.symbolic
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_derive_command_for_gated_cells(cell, capsys):
    from bpttcheck.cli import main

    assert main(["derive", "--cell", cell, "-T", "1"]) == 0
    assert "sigma" in capsys.readouterr().out


def test_derive_command_rejects_bad_sizes(capsys):
    from bpttcheck.cli import main

    assert main(["derive", "-T", "0"]) == 2
    assert "T=0" in capsys.readouterr().err


def test_benchmarks_are_declared_with_absolute_goals():
    from bpttcheck.bench.symbolic import benchmarks

    marks = {b.name: (b.goal, b.goal_kind, b.peer_name) for b in benchmarks()}
    assert marks == {
        "symbolic: derive+lambdify rnn/tanh H=1 T=20": (3.0, "seconds", None),
        "symbolic: derive+lambdify lstm H=2 T=3": (10.0, "seconds", None),
        "symbolic: derive+lambdify lstm L=2 H=2 T=3": (10.0, "seconds", None),
    }


@pytest.mark.symbolic
def test_growth_table_reports_sizes():
    from bpttcheck.bench.symbolic import format_table, growth_table

    rows = growth_table("rnn", hidden=(1,), Ts=(2, 3))
    assert [r["T"] for r in rows] == [2, 3]
    assert rows[1]["tree_nodes"] > rows[1]["dag_nodes"] and "| rnn | 1 | 3 |" in format_table(rows)


@pytest.mark.slow
@pytest.mark.symbolic
def test_render_draws_every_equation(tmp_path):
    pytest.importorskip("matplotlib")
    from bpttcheck.symbolic.derive import derivation
    from bpttcheck.symbolic.render import render_markdown

    text = derivation("rnn", "tanh", 2)
    assert render_markdown(text, str(tmp_path / "d.png")) == text.count("$$") // 2
