"""The reference agrees with torch autograd: outputs, final states and every gradient.

float64 within ~1e-13 of the condition-aware scale; float32 under the tolerance policy in the
contractive regime (torch float32 against the float64 reference on the same rounded values).
"""

import numpy as np
import pytest
from hypothesis import given

from bpttcheck.properties.strategies import cases, configs, make_case
from bpttcheck.properties.torch_checks import compare_with_torch
from bpttcheck.reference import RecurrentConfig
from bpttcheck.reference.cells import TORCH_CELLS

pytestmark = pytest.mark.torch
TORCH_ACTIVATIONS = ("tanh", "relu")


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@given(data=cases(configs(cells=("rnn", "lstm", "gru"), activations=TORCH_ACTIVATIONS)))
def test_float64_agrees_with_torch(cell, data):
    pytest.importorskip("torch")
    # the cell parameter spreads the examples; the strategy draws all cells
    compare_with_torch(data, dtype="float64")


@given(case=cases(configs(cells=TORCH_CELLS, activations=TORCH_ACTIVATIONS), regime="contractive", max_T=20))
def test_float32_agrees_with_torch_under_policy(case):
    pytest.importorskip("torch")
    compare_with_torch(case, dtype="float32")


@pytest.mark.parametrize(
    "config",
    [
        RecurrentConfig("lstm", 5, 6, num_layers=3, bidirectional=True, proj_size=3),
        RecurrentConfig("gru", 7, 5, num_layers=2, bidirectional=True, bias=False),
        RecurrentConfig("rnn", 4, 8, num_layers=2, nonlinearity="relu", bidirectional=True),
    ],
    ids=lambda c: c.describe(),
)
@pytest.mark.parametrize("batch_first", [False, True])
def test_larger_fixed_configurations(config, batch_first):
    pytest.importorskip("torch")
    case = make_case(config, T=12, B=4, seed=7, lengths=[12, 3, 7, 1], batch_first=batch_first)
    comparisons = compare_with_torch(case, dtype="float64")
    assert max(c.worst_ratio for c in comparisons) < 1


def test_a_planted_difference_is_reported_with_a_reproducer():
    torch = pytest.importorskip("torch")

    class ShiftedGRU(torch.nn.GRU):
        """torch's GRU whose output is nudged: the oracle must name the output."""

        def forward(self, input, hx=None):
            out, h = super().forward(input, hx)
            return out + 1e-9, h

    case = make_case(RecurrentConfig("gru", 2, 3), T=3, B=2, seed=1)
    with pytest.raises(AssertionError) as info:
        compare_with_torch(case, cls=ShiftedGRU)
    text = str(info.value)
    assert text.startswith("OutputMismatch: output differs (ShiftedGRU on cpu, float64")
    assert "reproduce:" in text and "RecurrentConfig(cell='gru'" in text
    assert np.isfinite(info.value.comparison.worst_abs)
