"""The reference and the properties against the installed torch, over generated gradient lists."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from bpttcheck.properties import clipping as C

pytestmark = pytest.mark.torch

NORMS = st.sampled_from([1.0, 2.0, float("inf"), 0.5, 3.0, 2.5])
MAX_NORMS = st.sampled_from([1e-3, 0.5, 1.0, 7.0, 1e3])


@given(C.gradient_lists(), MAX_NORMS, NORMS, st.booleans())
def test_torch_agreement_finite(grads, max_norm, p, single):
    pytest.importorskip("torch")
    present = [g for g in grads if g is not None]
    C.check_torch_agreement(present[0] if single else grads, max_norm, p)


@given(C.gradient_lists(nonfinite=True), MAX_NORMS, NORMS, st.booleans())
def test_torch_agreement_nonfinite(grads, max_norm, p, error_if_nonfinite):
    pytest.importorskip("torch")
    C.check_torch_agreement(grads, max_norm, p, error_if_nonfinite=error_if_nonfinite)


@given(st.sampled_from([-1.0, 0.0, float("nan"), float("inf")]), NORMS | st.sampled_from([0.0, -1.0, float("-inf")]))
def test_torch_agreement_unvalidated_arguments(max_norm, p):
    pytest.importorskip("torch")
    grads = [np.array([[3.0, -4.0]], np.float32), None, np.array([0.5, 2.0])]
    C.check_torch_agreement(grads, max_norm, p)


@given(C.gradient_lists(), MAX_NORMS, NORMS)
def test_torch_satisfies_the_properties(grads, max_norm, p):
    pytest.importorskip("torch")
    C.check_clipping(C.torch_clip, grads, max_norm, p)


@given(C.gradient_lists(nonfinite=True), MAX_NORMS, NORMS)
def test_torch_nonfinite_semantics(grads, max_norm, p):
    pytest.importorskip("torch")
    C.check_nonfinite(C.torch_clip, grads, max_norm, p)


def test_torch_functions_are_detected():
    pytest.importorskip("torch")
    assert set(C.torch_functions()) <= set(C.TORCH_FUNCTIONS)
    assert "clip_grad_norm_" in C.torch_functions()


def test_float32_bound_at_a_million_elements():
    pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    grads = [(1 + 1e-3 * rng.random(10**6)).astype(np.float32)]  # the data torch's float32 sum drifts most on
    C.check_bound(C.torch_clip, grads, 1.0)
    C.check_returned_norm(C.torch_clip, grads, 1.0)


def test_benchmark_runs():
    pytest.importorskip("torch")
    from bpttcheck.bench import clipping as B

    (bench,) = B.benchmarks()
    assert bench.needs == ("torch",)
    ours, peer = bench.make()
    assert np.isfinite(ours().total_norm) and np.isfinite(peer().item())
