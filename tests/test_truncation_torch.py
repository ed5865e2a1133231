"""Truncated and randomized gradients against PyTorch detach loops (CPU; CUDA when present)."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from bpttcheck.properties import truncation as props
from bpttcheck.properties.strategies import cases, configs
from bpttcheck.reference.cells import TORCH_CELLS
from bpttcheck.reference.randomized import sample_xi
from bpttcheck.reference.truncation import Full, Randomized, SlidingWindow, Subsequence, WilliamsPeng

pytestmark = pytest.mark.torch

unidirectional = cases(configs(cells=TORCH_CELLS, bidirectional=False, activations=("tanh", "relu"), max_size=3), max_T=6, max_B=2,
                       lengths=False, batch_first=False)


def _devices():
    torch = pytest.importorskip("torch")
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@settings(max_examples=8)
@given(unidirectional, st.sampled_from([Full(), Subsequence(2), Subsequence(3), SlidingWindow(2), WilliamsPeng(3, 2)]))
def test_detach_loops_agree(case, scheme):
    for device in _devices():
        props.check_against_torch(props.reference_run, scheme, case, device=device)


@settings(max_examples=8)
@given(unidirectional, st.integers(0, 50))
def test_randomized_pattern_agrees_with_torch_hook(case, seed):
    scheme = Randomized(tuple(np.linspace(0.4, 0.9, case.T)))
    xi = sample_xi(scheme, np.random.default_rng(seed), case.T)[0]
    for device in _devices():
        props.check_against_torch(props.reference_run, scheme, case, device=device, xi=xi)
