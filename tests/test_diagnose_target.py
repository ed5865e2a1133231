"""``bpttcheck diagnose --target``: the user's own layer's lag norms (its autograd) beside the
reference's with the same weights; a planted bug shows where its gradient flow leaves them."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bpttcheck.cli import main  # noqa: E402
from bpttcheck.commands.diagnose import AGREE, _agreement, lag_curves, scaled_params  # noqa: E402
from bpttcheck.properties.oracle.target_diagnose import (  # noqa: E402
    resolve_module_target, target_lag_norms, train_target)
from bpttcheck.reference.config import RecurrentConfig, init_params  # noqa: E402
from bpttcheck.reference.profiles import TrainingHistory  # noqa: E402


def _norms(cls, cell, sigma, T=8, H=4, seed=0):
    config = RecurrentConfig(cell, 4, H)
    x = np.random.default_rng(seed + 1).standard_normal((T, 1, 4))
    return target_lag_norms(cls, config, scaled_params(config, sigma, seed), x).norms


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("sigma", [0.5, 2.0])
def test_torch_layers_follow_the_reference_at_every_lag(cell, sigma):
    cls = getattr(torch.nn, cell.upper())
    ref = lag_curves(cell, sigma, 8, 4, 0).norms
    got = _norms(cls, cell, sigma)
    assert got.shape == ref.shape and got[0] == pytest.approx(1.0)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=0)


def test_a_detached_cell_state_leaves_the_reference_from_lag_2():
    BuggyLSTM = resolve_module_target("examples.buggy_lstm:BuggyLSTM")[0]

    ref = lag_curves("lstm", 1.0, 8, 4, 0).norms
    got = _norms(BuggyLSTM, "lstm", 1.0)
    np.testing.assert_allclose(got[:2], ref[:2], rtol=1e-12)
    assert got[2] < 0.9 * ref[2]
    line = _agreement("BuggyLSTM", ref, got)
    assert "differs from the reference from lag 2 on" in line


def test_the_agreement_threshold_is_sharp():
    ref = np.array([1.0, 0.3, 1e-3, 1e-9, 1e-300])
    assert "agrees" in _agreement("X", ref, ref * (1 + 0.5 * AGREE))
    assert "from lag 3 on" in _agreement("X", ref, ref * np.array([1, 1, 1, 1 + 2 * AGREE, 1]))
    assert "agrees" in _agreement("X", ref, ref * np.array([1, 1, 1, 1, 5.0]))  # underflow noise is not judged


def test_training_records_torch_named_gradients():
    config = RecurrentConfig("gru", 1, 3)
    params = init_params(config, np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((5, 2, 1))
    hist = train_target(torch.nn.GRU, config, params, {"weight_hy": np.ones((1, 3)), "bias_y": np.zeros(1)}, x,
                        np.zeros((5, 2, 1)), lr=0.1, steps=3)
    assert isinstance(hist, TrainingHistory) and len(hist.grads) == 3 and hist.losses[-1] < hist.losses[0]
    assert {"weight_ih_l0", "weight_hh_l0", "weight_hy", "bias_y"} <= set(hist.grads[0])


def test_the_command_line(capsys):
    assert main(["diagnose", "--target", "examples.buggy_lstm:BuggyLSTM", "-T", "6", "--hidden", "3",
                 "--sigma", "1.0", "--train-steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "yours" in out and "examples.buggy_lstm:BuggyLSTM differs from the reference" in out
    assert "gradient statistics of your examples.buggy_lstm:BuggyLSTM (LSTM)" in out


@pytest.mark.parametrize("argv, fragment", [
    (["--target", "torch.nn.utils:clip_grad_norm_"], "diagnose takes a module target"),
    (["--target", "examples.lstm:LSTM", "--kind", "numpy:lstm"], "diagnose takes --kind module:rnn"),
    (["--kind", "module:lstm"], "--kind needs --target"),
    (["--target", "examples.lstm:LTSM"], "did you mean LSTM"),
])
def test_bad_targets_are_usage_errors(argv, fragment, capsys):
    with pytest.raises(SystemExit) as info:
        main(["diagnose", *argv, "-T", "4", "--train-steps", "1"])
    assert fragment in str(info.value.code) + capsys.readouterr().err


def test_the_cell_comes_from_the_class_or_the_kind():
    assert resolve_module_target("torch.nn:GRU")[1] == "gru"
    assert resolve_module_target("examples.lstm:LSTM", "module:lstm")[1] == "lstm"
