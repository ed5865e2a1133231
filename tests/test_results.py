"""The results model, the report text and the runner's verdicts on partial implementations.

Torch-free: the checks here are small synthetic properties over option values, so each rule
of the runner (a declined value is certified around, a value raised for only sometimes fails,
everything declined is unsupported, a bug inside the supported subset still fails) is shown on
its own. The torch targets of the same rules are in tests/test_partial.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import strategies as st

from bpttcheck.properties.compare import Mismatch, compare
from bpttcheck.properties.report_text import failure_text, format_table, shorten
from bpttcheck.properties.results import (
    CheckResult,
    Report,
    Status,
    environment,
    exit_status,
    nothing_checked_reason,
    schema,
)
from bpttcheck.properties.runner import Declined, PropertyCheck, option_values, run_check
from bpttcheck.properties.tolerance import implementation_tolerance

from schema_check import assert_valid, errors


def _result(status, **kw):
    kw.setdefault("id", f"module/lstm/gradients[cpu,float64]#{status}")
    return CheckResult(kw.pop("name", kw["id"]), status, **kw)


# --------------------------------------------------------------------------- Status, exit statuses


def test_status_is_a_str_enum():
    assert Status.PASS == "pass" and Status("unsupported") is Status.UNSUPPORTED
    assert f"{Status.FAIL}" == "fail" and Status.FAIL.upper() == "FAIL"
    assert json.dumps({"s": Status.XPASS}) == '{"s": "xpass"}'
    assert _result("pass").status is Status.PASS  # a string given is made a Status
    with pytest.raises(ValueError):
        _result("passed")


@pytest.mark.parametrize("statuses, code", [
    (["pass", "skip"], 0),
    (["pass", "fail"], 1),
    (["error"], 1),
    (["xfail", "unsupported"], 0),
    (["xpass"], 0),
    (["skip", "unsupported", "inconclusive"], 4),
    ([], 4),
])
def test_exit_status(statuses, code):
    results = [_result(s) for s in statuses]
    assert exit_status(results) == code
    assert Report(results).ok is (code == 0)


def test_nothing_checked_says_why_in_one_line():
    skips = [_result("skip", message="no CUDA device") for _ in range(3)]
    assert nothing_checked_reason(skips) == "every check skipped: no CUDA device"
    mixed = skips + [_result("unsupported", message="the target declines PackedSequence: NotImplementedError: no")]
    text = nothing_checked_reason(mixed)
    assert text.startswith("nothing could be checked: 3 skipped (no CUDA device), 1 unsupported (")
    assert "\n" not in text
    assert Report([], reason="-k 'zzz' matched none of 50 checks").why == "-k 'zzz' matched none of 50 checks"
    assert Report([_result("pass")], reason="ignored").why == ""


# --------------------------------------------------------------------------- JSON


def test_json_round_trip_and_schema():
    results = [_result("pass", worst_abs=1e-16, worst_ratio=0.1, resolution=1e-14, declines=["relu"]),
               _result("fail", fail_abs=3e-3, fail_allowed=1e-15, worst_ratio=float("inf"), message="GradientMismatch"),
               _result("skip", message="no CUDA device")]
    report = Report(results, environment("cpu"), ["torch.nn:LSTM"], "ci", 3, device="cpu")
    doc = json.loads(json.dumps(report.to_json()))
    assert_valid(doc, schema())
    assert doc["format"] == 2 and doc["exit_status"] == 1 and doc["summary"] == doc["counts"]
    assert doc["checks"][1]["worst_ratio"] == "inf"
    again = Report.from_json(doc)
    assert again.table() == report.table() and again.results[1].worst_ratio == float("inf")


def test_the_validator_catches_what_the_schema_forbids():
    doc = Report([_result("pass")], environment("cpu")).to_json()
    assert not errors(doc, schema())
    bad = json.loads(json.dumps(doc))
    bad["checks"][0]["status"] = "passed"
    del bad["run"]["seconds"]
    bad["extra"] = 1
    found = "\n".join(errors(bad, schema()))
    assert "'passed' is not one of" in found and "missing 'seconds'" in found and "unexpected key 'extra'" in found


# --------------------------------------------------------------------------- the table and the failures


def test_nothing_is_cut_without_an_ellipsis():
    long = "the target declines num_layers=2: NotImplementedError: " + "x" * 200
    assert shorten(long, 60).endswith("…") and len(shorten(long, 60)) == 60
    assert shorten("two\nlines", 60) == "two …"
    table = format_table([_result("unsupported", message=long)], width=60)
    assert "…" in table and "x" * 200 not in table


def test_fail_rows_show_the_failing_cases_error_and_cuda_skips_fold():
    fail = _result("fail", worst_abs=1e-17, worst_ratio=0.01, fail_abs=3e-3, fail_allowed=1e-15,
                   message="GradientMismatch: weight_hh_l0 differs")
    skips = [_result("skip", id=f"module/lstm/{g}[cuda,float64]", message="no CUDA device") for g in "abc"]
    table = format_table([fail, *skips], device="all")
    row = table.splitlines()[2]
    assert "3.0e-03" in row and "3.0e+12" in row  # the failing case's, not the passing 1e-17
    assert "[cuda," not in table and "(3 CUDA checks skipped: no CUDA device; --device cuda lists them)" in table
    assert table.count("[cuda,") == 0 and "[cuda," in format_table(skips, device="cuda")


def test_one_report_per_bug():
    msg = "GradientMismatch: weight_ih_l0 differs (X on cpu, {d}; lstm, D=1, H=1, T=2, B=1, {d})\n  worst …"
    same = [_result("fail", id=f"module/lstm/{g}[cpu,{d}]", message=msg.format(d=d))
            for g in ("gradients", "bidirectional") for d in ("float64", "float32")]
    other = _result("fail", id="module/lstm/packed[cpu,float64]", message="OutputMismatch: output differs")
    text = failure_text(same + [other])
    assert text.count("GradientMismatch") == 1 and text.count("OutputMismatch") == 1
    assert ("also in: module/lstm/gradients[cpu,float32], module/lstm/bidirectional[cpu,float64], "
            "module/lstm/bidirectional[cpu,float32]") in text



def test_one_report_per_bug_across_shrunk_cases():
    """The same bug shrinks to another case in each group: one report, keyed by what differs and
    the diagnosis; another diagnosis of the same quantity is another bug."""
    msg = ("GradientMismatch: weight_ih_l0 differs (X on cpu, float64; lstm, D=1, H={h}, T={t}, B=1, float64)\n"
           "  worst …\n  diagnosis: {diag}\n  reproduce: …")
    same = [_result("fail", id=f"module/lstm/{g}[cpu,float64]", message=msg.format(h=h, t=t, diag="c detached"))
            for g, h, t in (("gradients", 1, 2), ("bidirectional", 2, 3))]
    other = _result("fail", id="module/lstm/packed[cpu,float64]", message=msg.format(h=1, t=2, diag="gate order"))
    text = failure_text(same + [other])
    assert text.count("GradientMismatch") == 2
    assert "also in: module/lstm/bidirectional[cpu,float64]" in text and "also in: module/lstm/packed" not in text

# --------------------------------------------------------------------------- partial implementations


def _cases(layers=(1, 2, 3), acts=("tanh", "relu"), bias=(True, False)):
    return st.fixed_dictionaries({"num_layers": st.sampled_from(layers), "nonlinearity": st.sampled_from(acts),
                                  "bias": st.sampled_from(bias), "x": st.floats(-1, 1)})


class _Case(dict):
    def option_values(self):
        return {k: v for k, v in self.items() if k != "x"}


def _check(body, strategy=None):
    return PropertyCheck("synthetic", (_cases() if strategy is None else strategy).map(_Case), body)


def _judged(case, bug=0.0):
    tol = implementation_tolerance("float64", T=1, scale=1.0)
    c = compare("output", np.array([case["x"] + bug]), np.array([case["x"]]), tol)
    if not c.ok:
        raise Mismatch(c.message("synthetic"), c)
    return [c]


class _Raised(Mismatch):
    def __init__(self, message, raised):
        super().__init__(message, None)
        self.raised = raised


def _declining(case, layers_max=1, acts=("tanh",), bias_ok=(True, False)):
    if case["num_layers"] > layers_max:
        raise Declined(f"num_layers={case['num_layers']}", "NotImplementedError: one layer only")
    if case["nonlinearity"] not in acts:
        raise Declined(f"nonlinearity={case['nonlinearity']!r}", "NotImplementedError: tanh only")
    if case["bias"] not in bias_ok:
        raise Declined(f"bias={case['bias']}", "NotImplementedError: no bias only")
    return _judged(case)


@pytest.mark.parametrize("body, declines", [
    (lambda c: _declining(c), ["relu", "num_layers ≥ 2"]),
    (lambda c: _declining(c, layers_max=3), ["relu"]),
    (lambda c: _declining(c, layers_max=3, acts=("tanh", "relu"), bias_ok=(False,)), ["bias=True"]),
    (lambda c: _judged(c), []),
])
def test_a_correct_partial_implementation_passes_with_its_declines(body, declines):
    result = run_check(_check(body), "ci")
    assert result.status == "pass", result.message
    assert sorted(result.declines) == sorted(declines)
    assert result.worst_quantity == "output"


def test_a_bug_inside_the_supported_subset_still_fails():
    result = run_check(_check(lambda c: _declining(c) if c["num_layers"] > 1 or c["nonlinearity"] != "tanh"
                              else _judged(c, bug=1e-3)), "ci")
    assert result.status == "fail" and result.message.startswith("OutputMismatch: output differs")
    assert result.fail_abs == pytest.approx(1e-3) and result.fail_allowed > 0


def test_every_case_declined_is_unsupported_with_the_targets_own_words():
    words = "NotImplementedError: this module is a placeholder; " + "and it says so at length " * 8
    result = run_check(_check(lambda c: (_ for _ in ()).throw(Declined("anything", words))), "ci")
    assert result.status == "unsupported" and words in result.message and result.declines == []


def test_the_same_exception_on_every_case_of_a_value_is_a_decline():
    """A TBPTT function refusing a scheme with ValueError("scheme must be one of …")."""
    def body(case):
        if case["nonlinearity"] == "relu":
            raise _Raised("TargetRaised: fn raised ValueError: nonlinearity must be one of tanh", "ValueError")
        return _judged(case)

    result = run_check(_check(body), "ci")
    assert result.status == "pass" and result.declines == ["relu"]
    every = run_check(_check(lambda c: (_ for _ in ()).throw(
        _Raised("TargetRaised: fn raised ValueError: scheme must be one of 'k'", "ValueError"))), "ci")
    assert every.status == "unsupported" and "scheme must be one of 'k'" in every.message


def test_a_value_raised_for_only_sometimes_fails():
    def body(case):
        if case["nonlinearity"] == "relu" and case["x"] > 0.5:
            raise _Raised("TargetRaised: fn raised RuntimeError: boom", "RuntimeError")
        return _judged(case)

    result = run_check(_check(body, _cases(layers=(1,), bias=(True,))), "ci")
    assert result.status == "fail" and result.message.startswith("TargetRaised: fn raised RuntimeError")


def test_option_values_of_a_recurrent_case():
    from bpttcheck.properties.strategies import make_case
    from bpttcheck.reference import RecurrentConfig

    case = make_case(RecurrentConfig("rnn", 2, 3, num_layers=2, nonlinearity="relu"), T=3, B=2, lengths=[3, 2])
    values = option_values((case, 4))
    assert values["num_layers"] == 2 and values["nonlinearity"] == "relu" and values["input"] == "PackedSequence"
