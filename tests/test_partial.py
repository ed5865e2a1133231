"""Partial implementations (issue 12, item 4): a correct target that implements only part of the
options gets PASS with its declines listed, and a bug inside the part it supports still FAILs.

The targets: a one-layer GRU, a tanh-only RNN, a bias-free LSTM, an LSTM without PackedSequence,
and a TBPTT function that implements one scheme and refuses the others with
``ValueError("scheme must be one of …")``. Each also comes with a planted bug inside its subset.
"""

from __future__ import annotations

import os
import sys

import pytest

from bpttcheck.properties.oracle import verify_target

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from planted.torch_impl import make_module  # noqa: E402

from bpttcheck.properties.oracle.builtins import detach_loop_tbptt  # noqa: E402


def declining(base, *, max_layers=None, activations=None, bias=None):
    """``base`` refusing, at construction, what it does not implement."""

    class Partial(base):
        def __init__(self, *args, **kwargs):
            if max_layers is not None and kwargs.get("num_layers", 1) > max_layers:
                raise NotImplementedError(f"only {max_layers} layer(s)")
            if activations is not None and kwargs.get("nonlinearity", "tanh") not in activations:
                raise NotImplementedError(f"only {', '.join(activations)}")
            if bias is not None and kwargs.get("bias", True) != bias:
                raise NotImplementedError(f"bias={not bias} is not implemented")
            super().__init__(*args, **kwargs)

    Partial.__name__ = Partial.__qualname__ = f"Partial{base.__name__}"
    return Partial


class NoPackLSTM(torch.nn.LSTM):
    def forward(self, input, hx=None):
        if isinstance(input, torch.nn.utils.rnn.PackedSequence):
            raise NotImplementedError("PackedSequence input is not implemented")
        return super().forward(input, hx)


def only_subsequence(module, x, hx, cotangent, k, scheme):
    if scheme != "subsequence":
        raise ValueError(f"scheme must be one of ('subsequence',), got {scheme!r}")
    return detach_loop_tbptt(module, x, hx, cotangent, k, scheme)


def only_subsequence_off_by_one(module, x, hx, cotangent, k, scheme):
    if scheme != "subsequence":
        raise ValueError(f"scheme must be one of ('subsequence',), got {scheme!r}")
    return detach_loop_tbptt(module, x, hx, cotangent, k + 1, scheme)


def _one(target, select, kind=None):
    report = verify_target(target, kind, device="cpu", dtypes=("float64",), profile="ci", select=select)
    assert len(report.results) == 1, [r.id for r in report.results]
    return report.results[0]


CORRECT = [
    (declining(torch.nn.GRU, max_layers=1), "module/gru/gradients[", ["num_layers ≥ 2"]),
    (declining(torch.nn.RNN, activations=("tanh",)), "module/rnn/gradients[", ["relu"]),
    (declining(torch.nn.LSTM, bias=False), "module/lstm/gradients[", ["bias=True"]),
]


@pytest.mark.parametrize("target, select, declines", CORRECT, ids=["one-layer", "tanh-only", "no-bias"])
def test_a_correct_partial_module_passes_with_its_declines(target, select, declines):
    r = _one(target, select)
    assert r.status == "pass", r.message
    assert r.declines == declines
    assert r.cases > 0 and r.worst_quantity


PLANTED = [
    (declining(make_module("gru", "hh_grad_first_sample"), max_layers=1), "module/gru/gradients[",
     "GradientMismatch: weight_hh_l0"),
    pytest.param(declining(make_module("rnn", "tanh_backward_one_minus_y"), activations=("tanh",)),
                 "module/rnn/gradients[", "GradientMismatch: ", marks=pytest.mark.slow),  # shrinking: ~5-20 s
    pytest.param(declining(make_module("lstm", "gate_order_ifog"), bias=False), "module/lstm/gradients[",
                 "OutputMismatch: output", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("target, select, verdict", PLANTED, ids=["one-layer", "tanh-only", "no-bias"])
def test_a_bug_inside_the_supported_subset_still_fails(target, select, verdict):
    r = _one(target, select)
    assert r.status == "fail" and r.message.startswith(verdict), r.message
    assert r.fail_abs is not None and r.fail_allowed and r.fail_abs > r.fail_allowed


def test_no_packing_is_declined_not_failed_and_the_rest_is_certified():
    r = _one(NoPackLSTM, "module/lstm/packed[")
    # The packed group certifies the padded-Tensor cases it draws, or is unsupported when it
    # draws only packed ones; it never fails a correct LSTM for declining packing.
    assert (r.status, r.declines) == ("pass", ["PackedSequence"]) or \
        (r.status == "unsupported" and "PackedSequence input is not implemented" in r.message), r
    assert _one(NoPackLSTM, "module/lstm/gradients[").status == "pass"


def test_a_bug_in_a_target_without_packing_still_fails():
    # examples/buggy_lstm.py declines PackedSequence, and its cell state is detached at every step
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, root)
    r = _one("examples.buggy_lstm:BuggyLSTM", "module/lstm/gradients[", kind="module")
    assert r.status == "fail" and r.message.startswith("GradientMismatch")


def test_a_tbptt_function_with_one_scheme():
    refused = _one(only_subsequence, "tbptt/k/rnn", kind="tbptt")
    assert refused.status == "unsupported"
    assert "scheme must be one of ('subsequence',), got 'k'" in refused.message
    assert _one(only_subsequence, "tbptt/subsequence/rnn", kind="tbptt").status == "pass"
    bug = _one(only_subsequence_off_by_one, "tbptt/subsequence/rnn", kind="tbptt")
    assert bug.status == "fail" and "GradientMismatch" in bug.message.splitlines()[0]
