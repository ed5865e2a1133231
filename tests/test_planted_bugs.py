"""The planted-bug catalogue: every oracle must catch every bug, name the right quantity, and
shrink the counterexample to the smallest shape on which the bug shows.

Each row runs a deliberately wrong implementation (tests/planted/) through a Hypothesis-driven
:func:`run_check` with the same comparison that ``bpttcheck verify`` uses, over a strategy that
can reach the triggering shapes but is not confined to them. Rows fix only what a bug needs to
exist at all (a bias for a bias bug, two directions for a reverse-direction bug); the shapes
that make it *show* (B > 1, T >= 3, L >= 2, input size != hidden size, padding) are left to
Hypothesis, and the test asserts that shrinking found exactly them.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import Phase, given, settings

from bpttcheck.profiles import register_profiles
from bpttcheck.properties.runner import PropertyCheck, run_check
from bpttcheck.properties.strategies import cases, configs
from bpttcheck.properties.torch_checks import compare_results
from bpttcheck.reference.cells import TORCH_CELLS

from planted import numpy_impl

# ci's settings (derandomized: the same counterexample on every run) without the "explain"
# phase, which only annotates the report and costs ~10x the shrinking itself.
PROFILE = "planted-bugs"
register_profiles()
settings.register_profile(PROFILE, parent=settings.get_profile("bpttcheck-ci"),
                          phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])

TORCH_ACTS = ("tanh", "relu")  # the nonlinearities torch.nn.RNN has


def _row(impl, bug, report, minimal, config=None, **case_kw):
    """One catalogue row: implementation, bug, the report's first words, the shrunk shape."""
    marks = [pytest.mark.torch] if impl == "torch" else []
    return pytest.param(impl, bug, dict(config or {}), case_kw, report, minimal, id=f"{impl}-{bug}", marks=marks)


CATALOGUE = [
    # backward formulas
    _row("numpy", "rnn_dtanh_of_preactivation", "GradientMismatch: weight_ih_l0", dict(T=1, B=1, D=1, H=1),
         dict(cells=("rnn",), activations=("tanh",))),
    _row("numpy", "rnn_dwhh_with_current_state", "GradientMismatch: weight_hh_l0", dict(T=1, B=1, D=1, H=1),
         dict(cells=("rnn",))),
    _row("numpy", "gru_dbhn_without_reset", "GradientMismatch: bias_hh_l0", dict(T=1, B=1, D=1, H=1),
         dict(cells=("gru",), bias=True)),
    _row("numpy", "lstm_dwhr_without_output_gate", "GradientMismatch: weight_hr_l0", dict(T=1, B=1, H=2),
         dict(cells=("lstm",), proj=True)),
    # T = 1 shows it in c0's gradient only (the shrinker reaches that since the packed/sorted draws)
    _row("numpy", "lstm_dc_skips_forget", "GradientMismatch: c0", dict(T=1, B=1, D=1, H=1),
         dict(cells=("lstm",))),
    _row("torch", "tanh_backward_one_minus_y", "GradientMismatch: weight_ih_l0", dict(T=1, B=1, D=1, H=1),
         dict(cells=("rnn",), activations=("tanh",))),
    # forward equations
    _row("numpy", "gru_bhn_outside_reset", "OutputMismatch: output", dict(T=1, B=1, D=1, H=1),
         dict(cells=("gru",), bias=True)),
    # gate layout
    _row("numpy", "gru_gate_order_zrn", "OutputMismatch: output", dict(T=1, B=1, D=1, H=1),
         dict(cells=("gru",))),
    _row("torch", "gate_order_ifog", "OutputMismatch: output", dict(T=1, B=1, D=1, H=1),
         dict(cells=("lstm",))),
    # bugs that show only on some shapes
    _row("numpy", "bias_grad_first_sample", "GradientMismatch: bias_ih_l0", dict(T=1, B=2, D=1, H=1),
         dict(bias=True)),
    _row("torch", "hh_grad_first_sample", "GradientMismatch: weight_hh_l0", dict(B=2, D=1, H=1),
         dict(cells=("gru",))),
    _row("numpy", "split_at_hidden_size", "GradientMismatch: weight_ih_l0", dict(T=1, B=1, D=2, H=1, L=1),
         dict(cells=("rnn", "lstm"))),
    _row("numpy", "leftover_detach_every_2", "GradientMismatch: weight_ih_l0", dict(T=3, B=1, D=1, H=1)),
    _row("numpy", "stack_no_grad_to_lower_layer", "GradientMismatch: weight_ih_l0", dict(T=1, B=1, L=2)),
    _row("torch", "h0_direction_major", "OutputMismatch: output", dict(T=1, B=1, L=2),
         dict(cells=("lstm",), bidirectional=True)),
    _row("numpy", "reverse_ignores_lengths", "OutputMismatch: output", dict(T=2, B=1, lengths=[1]),
         dict(bidirectional=True), lengths=True),
    _row("torch", "reverse_not_reversed", "OutputMismatch: output", dict(T=2, B=1, D=1, H=1),
         dict(cells=("gru",), bidirectional=True)),
    _row("torch", "batch_first_reshape", "OutputMismatch: output", dict(T=2, B=2, D=1, H=1),
         dict(cells=("rnn",), activations=TORCH_ACTS), batch_first=True, lengths=False),
]


def _shape(case) -> dict:
    c = case.config
    return dict(T=case.T, B=case.B, D=c.input_size, H=c.hidden_size, L=c.num_layers,
                lengths=None if case.lengths is None else [int(v) for v in case.lengths])


def _body(impl, bug):
    """The property ``impl`` with ``bug`` is checked by: every quantity against the reference."""
    if impl == "numpy":
        return lambda case: compare_results(case, numpy_impl.run(case, bug), context=case.describe(),
                                            reproducer=lambda: case.reproducer())
    pytest.importorskip("torch")
    from bpttcheck.properties.torch_checks import compare_with_torch
    from planted import torch_impl

    cls = torch_impl.make_module(torch_impl.BUGS[bug][0], bug)
    return lambda case: compare_with_torch(case, cls=cls)


@pytest.mark.parametrize("impl, bug, config_kw, case_kw, report, minimal", CATALOGUE)
def test_planted_bug_is_caught_named_and_shrunk(impl, bug, config_kw, case_kw, report, minimal):
    if impl == "torch":
        pytest.importorskip("torch")
    failing = []
    body = _body(impl, bug)

    def recording(case):
        try:
            return body(case)
        except AssertionError:
            failing.append(case)
            raise

    if impl == "torch" and "activations" not in config_kw:
        config_kw = dict(config_kw, activations=TORCH_ACTS)
    check = PropertyCheck(f"{impl}:{bug}", cases(configs(**config_kw), **case_kw), recording)
    result = run_check(check, profile=PROFILE)
    assert result.status == "fail", f"{bug} was not caught: {result.status} {result.message[:300]}"
    assert result.message.startswith(report + " differs"), result.message[:400]
    assert "reproduce:" in result.message
    # Hypothesis replays the shrunk counterexample last.
    shrunk = _shape(failing[-1])
    assert {k: shrunk[k] for k in minimal} == minimal, f"{bug} shrank to {shrunk}"
    assert f"T={minimal.get('T', shrunk['T'])}, B=" in result.message


def test_catalogue_covers_every_planted_bug():
    listed = {p.values[1] for p in CATALOGUE if p.values[0] == "numpy"}
    assert listed == set(numpy_impl.BUGS)
    assert all(text.strip() for text in numpy_impl.BUGS.values())
    assert len(CATALOGUE) >= 16


@pytest.mark.torch
def test_torch_catalogue_covers_every_planted_bug():
    pytest.importorskip("torch")
    from planted import torch_impl

    listed = {p.values[1] for p in CATALOGUE if p.values[0] == "torch"}
    assert listed == set(torch_impl.BUGS)
    # At least one bug lives in a custom autograd Function's backward.
    assert any("autograd Function" in text for _, text in torch_impl.BUGS.values())


def test_unknown_bug_is_rejected():
    with pytest.raises(ValueError, match=r"bug='no_such_bug'"):
        numpy_impl.run(None, "no_such_bug")


# With no bug planted, each implementation is an independent second implementation: it must
# agree with the reference (this checks the reference as much as the implementations).

@given(cases(configs(cells=TORCH_CELLS)))  # the planted implementation writes the three torch cells
def test_numpy_implementation_agrees_with_reference(case):
    compare_results(case, numpy_impl.run(case), context=case.describe())


@pytest.mark.torch
@given(cases(configs(cells=TORCH_CELLS, activations=TORCH_ACTS)))
def test_torch_implementation_agrees_with_reference(case):
    pytest.importorskip("torch")
    from bpttcheck.properties.torch_checks import compare_with_torch
    from planted import torch_impl

    compare_with_torch(case, cls=torch_impl.make_module(case.config.cell))


def test_report_names_the_quantity_and_configuration():
    """The first line of a report is exactly STYLE.md's: kind, quantity, configuration."""
    check = PropertyCheck("x", cases(configs(cells=("rnn",), bias=True), max_B=3),
                          lambda c: compare_results(c, numpy_impl.run(c, "bias_grad_first_sample"),
                                                    context=c.describe()))
    message = run_check(check, profile=PROFILE).message
    first = message.splitlines()[0]
    assert re.fullmatch(r"GradientMismatch: bias_ih_l0 differs \(rnn/\w+, D=1, H=1, T=1, B=2, float64\)", first), first
