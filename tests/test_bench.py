"""The benchmarks' own machinery (no timing is asserted: speed is `bpttcheck bench`'s job)."""

from __future__ import annotations

import pytest

from bpttcheck.bench.core import Benchmark
from bpttcheck.bench.registry import AREAS, collect
from bpttcheck.bench.runner import format_table, measure


def test_every_area_loads_and_names_its_group():
    problems = []
    benches = collect(problems)
    assert problems == []
    assert {b.group for b in benches} <= set(AREAS)
    assert {"throughput", "reference"} <= {b.group for b in benches}


def test_an_amount_is_measured_not_timed_and_printed_with_its_unit():
    bench = Benchmark("peak", make=lambda: ((lambda: 3 * 2**30), (lambda: 4 * 2**30)), peer_name="other",
                      goal=2 * 10**9, goal_kind="bytes", rounds=3)
    res = measure(bench)
    assert res["ours_s"] == 3 * 2**30 and res["ratio"] == 0.75 and res["met"] is False
    table = format_table([dict(res, threads=1)])
    assert "3.00 GiB" in table and "4.00 GiB" in table and "≤ 1.86 GiB" in table


def test_a_ratio_reports_its_spread_over_rounds():
    bench = Benchmark("r", make=lambda: ((lambda: None), (lambda: None)), peer_name="p", goal=10.0, rounds=3)
    res = measure(bench)
    lo, hi = res["spread"]
    assert lo <= res["ratio"] <= hi


def test_throughput_records_the_cases_the_oracle_draws_with_their_phase():
    pytest.importorskip("torch")
    from bpttcheck.bench import throughput

    result, seen = throughput.record(profile="dev")
    assert result.status == "pass"
    assert len(seen) == result.cases
    labels = {label for label, _, _ in seen}
    assert "main" in labels and any(label.startswith("long") for label in labels)
    assert any(label.startswith("deep") for label in labels)


def test_gradcheck_peer_passes_on_a_drawn_case():
    pytest.importorskip("torch")
    from bpttcheck.bench import throughput

    _, seen = throughput.record(profile="dev")
    small = min((case for _, case, _ in seen), key=lambda c: c.T * c.config.num_layers)
    assert throughput.gradcheck_case(small)() is True


def test_peak_rss_of_a_small_pass_is_measured_in_a_child():
    from bpttcheck.bench.reference import peak_rss

    got = peak_rss("ours", "lstm", (2, 5, 3, 4))
    assert got["peak"] >= got["before"] > 0
