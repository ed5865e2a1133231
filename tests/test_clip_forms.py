"""The clip kind calls its target in every form torch 2.13 accepts (issue 12 item 2): a list, a
generator or a single Tensor; norm_type as a float, an int, 'inf' or float('inf'); positional or
keyword arguments; foreach left out/None/True/False; error_if_nonfinite left out/False/True.
Every form is a valid call of torch's own functions with the same result, the coverage phases
draw each form, and a planted bug living in one form only is caught."""

from __future__ import annotations

import itertools
import math
import os
import sys
import warnings

import numpy as np
import pytest

from bpttcheck.properties.clip_space import (CONTAINERS, NORM_SPELLINGS, OMITTED, ClipCase, ClipForm, clip_cases,
                                             clip_coverage)

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from planted import clip_impl  # noqa: E402


def draws(strategy, n):
    from hypothesis import given, settings

    seen = []

    @settings(max_examples=n, derandomize=True, database=None, deadline=None)
    @given(strategy)
    def collect(case):
        seen.append(case)

    collect()
    return seen


GRADS = [np.array([[3.0, -4.0], [1.0, 0.5]]), np.array(2.5, dtype=np.float32), None, np.array([-7.0, 0.25])]


def _params(grads):
    out = []
    for g in grads:
        p = torch.nn.Parameter(torch.zeros(1 if g is None else g.shape, dtype=torch.float64 if g is None else
                                           torch.from_numpy(np.array(g)).dtype))
        if g is not None:
            p.grad = torch.from_numpy(np.array(g, copy=True))
        out.append(p)
    return out


def _after(params):
    return [None if p.grad is None else p.grad.numpy().copy() for p in params]


ALL_FORMS = [ClipForm(c, k, s, f, e) for c, k, s, f, e in itertools.product(
    CONTAINERS, (False, True), NORM_SPELLINGS, (OMITTED, None, True, False), (OMITTED, False, True))]


@pytest.mark.parametrize("p", [2.0, 1.0, math.inf, 3.0])
def test_every_form_is_a_valid_torch_call_with_the_plain_result(p):
    for form in ALL_FORMS:
        grads = GRADS if form.container != "tensor" else GRADS[:1]
        want = _params(grads)
        want_total = torch.nn.utils.clip_grad_norm_(want, 1.0, p)
        got = _params(grads)
        args, kwargs = form.arguments("norm", 1.0, p)
        total = torch.nn.utils.clip_grad_norm_(form.parameters(got), *args, **kwargs)
        assert torch.equal(total, want_total), form
        for a, b in zip(_after(got), _after(want)):
            assert (a is None and b is None) or np.array_equal(a, b), form
        got = _params(grads)
        args, kwargs = form.arguments("value", 2.0, None)
        torch.nn.utils.clip_grad_value_(form.parameters(got), *args, **kwargs)
        want = _params(grads)
        torch.nn.utils.clip_grad_value_(want, 2.0)
        for a, b in zip(_after(got), _after(want)):
            assert (a is None and b is None) or np.array_equal(a, b), form


def test_the_source_of_a_form_is_what_a_user_writes():
    form = ClipForm("tensor", True, "str", True, True)
    assert form.source("norm", 1.0, math.inf) == \
        "fn(params[0], max_norm=1.0, norm_type='inf', error_if_nonfinite=True, foreach=True)"
    form = ClipForm("generator", False, "int", False, OMITTED, int_threshold=True)
    assert form.source("norm", 10.0, 2.0) == "fn((p for p in params), 10, 2, foreach=False)"
    assert ClipForm().source("value", 0.5, None) == "fn(params, 0.5)"


REQUIRED = {
    "a single Tensor": lambda c: c.form.container == "tensor" and len(c.grads) == 1,
    "a generator": lambda c: c.form.container == "generator",
    "None grads": lambda c: c.form.container != "tensor" and any(g is None for g in c.grads),
    "0-d tensors": lambda c: any(g is not None and g.ndim == 0 for g in c.grads),
    "'inf' over several": lambda c: c.form.spelling == "str" and c.norm_type == math.inf and _nonzero(c) >= 2,
    "inf over several": lambda c: c.form.spelling == "float" and c.norm_type == math.inf and _nonzero(c) >= 2,
    "p = 1, 3, 0.5 over several": lambda c: c.norm_type in (1.0, 3.0, 0.5) and _nonzero(c) >= 2,
    "foreach=True": lambda c: c.form.foreach is True,
    "foreach=False": lambda c: c.form.foreach is False,
    "foreach=None": lambda c: c.form.foreach is None,
    "error_if_nonfinite=True": lambda c: c.form.error_if_nonfinite is True,
    "keywords": lambda c: c.form.keywords,
}


def _nonzero(case):
    return sum(1 for g in case.grads if g is not None and np.any(g != 0))


@pytest.mark.parametrize("profile", ["dev", "ci"])
def test_the_coverage_phases_draw_every_form(profile):
    cases = [c for phase in clip_coverage("norm")(profile) for c in draws(phase.strategy, phase.max_examples)]
    missing = [name for name, holds in REQUIRED.items() if not any(holds(c) for c in cases)]
    assert not missing
    value = [c for phase in clip_coverage("value")(profile) for c in draws(phase.strategy, phase.max_examples)]
    for name in ("a single Tensor", "a generator", "None grads", "0-d tensors", "foreach=True", "keywords"):
        assert any(REQUIRED[name](c) for c in value), name
    nonfinite = [c for phase in clip_coverage("norm", True)(profile) for c in draws(phase.strategy, 1)]
    assert all(any(g is not None and not np.isfinite(g).all() for g in c.grads) for c in nonfinite)


def test_clip_cases_have_option_values_for_declines():
    case = draws(clip_cases("norm"), 1)[0]
    values = case.option_values()
    assert set(values) == {"parameters", "norm_type", "error_if_nonfinite", "foreach", "keywords"}
    assert isinstance(case, ClipCase) and case.describe().startswith("fn(")


def _body(flavour):
    from bpttcheck.properties.oracle import clip_checks as cc

    return cc._norm_body if flavour == "norm" else cc._value_body  # the body the clip kind's checks run


FORM_OF = {
    "iterates_single_tensor": ClipForm("tensor"),
    "generator_twice": ClipForm("generator"),
    "str_inf_as_two": ClipForm("list", spelling="str"),
    "inf_sum_of_maxes": ClipForm("list"),
    "foreach_first_dtype_only": ClipForm("list", foreach=True),
    "zero_d_shape0": ClipForm("list"),
}


@pytest.mark.parametrize("bug", sorted(clip_impl.NORM_BUGS))
def test_norm_bugs_of_one_form_fail_in_that_form_and_pass_in_the_plain_one(bug):
    from bpttcheck.properties.compare import Mismatch

    grads = [np.array([3.0, -4.0]), np.array([[1.0, 2.0]], dtype=np.float32), np.array(6.0)]
    form = FORM_OF[bug]
    fn = clip_impl.clip_norm(bug)
    body = lambda case: _body("norm")(fn, "planted", "cpu", case)  # noqa: E731
    p = math.inf if bug in ("str_inf_as_two", "inf_sum_of_maxes") else 2.0
    if bug != "zero_d_shape0":
        one = bug in ("iterates_single_tensor", "inf_sum_of_maxes")  # the latter shows from two grads on
        plain = ClipCase(grads[:1] if one else grads[:2], 1.0, p,
                         ClipForm(spelling="float"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            body(plain)  # right in torch's plainest form
    chosen = grads[:1] if form.container == "tensor" else grads
    with warnings.catch_warnings(), pytest.raises(Mismatch) as info:
        warnings.simplefilter("ignore")
        body(ClipCase(chosen, 1.0, p, form))
    assert form.source("norm", 1.0, p).split("(", 1)[1][:8] in str(info.value)  # the report shows the call form


@pytest.mark.parametrize("bug", sorted(clip_impl.VALUE_BUGS))
def test_value_bugs_of_one_form_fail_in_that_form(bug):
    from bpttcheck.properties.compare import Mismatch

    fn = clip_impl.clip_value(bug)
    grads = [np.array([[3.0, -4.0]])]
    _body("value")(fn, "planted", "cpu", ClipCase(grads, 1.0, None, ClipForm(), "value"))
    with warnings.catch_warnings(), pytest.raises(Mismatch):
        warnings.simplefilter("ignore")
        _body("value")(fn, "planted", "cpu", ClipCase(grads, 1.0, None, FORM_OF[bug], "value"))


@pytest.mark.slow
@pytest.mark.parametrize("flavour, bug", [("norm", b) for b in clip_impl.NORM_BUGS] +
                         [("value", b) for b in clip_impl.VALUE_BUGS])
def test_clip_bugs_are_caught_end_to_end(flavour, bug):
    from bpttcheck.properties.oracle import verify_target

    fn = (clip_impl.clip_norm if flavour == "norm" else clip_impl.clip_value)(bug)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = verify_target(fn, kind="clip", device="cpu", profile="ci", select="torch-semantics").results[0]
    assert result.status == "fail", result.message
