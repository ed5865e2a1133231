"""Is a randomized-truncation estimator unbiased? Exact and statistical tests (SPEC §4).

Exact (T ≤ 12): the probability-weighted mean over all 2^T patterns must equal full BPTT to
float64 precision.

Statistical (long T): N samples, mean ḡ; per coordinate i, Bernstein's inequality

    P(|ḡ_i − g_i| ≥ ε) ≤ 2·exp(−N ε² / (2σ_i² + 2 B_i ε / 3))

with σ_i² the exact variance of one sample and B_i an almost-sure bound on |ĝ_i − g_i|, both
from the pair contributions (never a plug-in sample variance, which would void the rate).
Setting the right side to α/d (Bonferroni over the d coordinates) gives thresholds ε_i such
that a correct estimator is flagged with probability ≤ α (default 1e-6) per test. For
history-dependent schemes no closed-form variance is used: σ_i² ≤ B_i² (valid, weaker).

Power: a bias β_i on coordinate i is detected (with probability ≥ 1 − α/d) once
β_i ≥ 2 ε_i, i.e. after about N ≈ 4 L (2σ_i² + B_i β_i / 3) / β_i², L = ln(2d/α). B_i grows
like Π 1/π_j over the longest kept run, so small π over long T makes the bound — and N —
explode; when even the best-resolved significant coordinate cannot resolve the requested
relative bias with the samples given, the verdict is "inconclusive", never "unbiased".
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from bpttcheck.reference.validation import InvalidArgument, check_callable, check_instance, check_int, fail
from bpttcheck.reference.pairsum import pair_contributions
from bpttcheck.reference.randomized import (
    MAX_ENUMERATION_T, enumerate_patterns, exact_moments, independent_moments, sample_xi,
)
from bpttcheck.reference.truncation import Randomized, is_randomized, truncated_backward

from .compare import Mismatch, assert_close
from .strategies import Case
from .tolerance import implementation_tolerance
from .truncation import reference_run

__all__ = [
    "UnbiasednessReport",
    "bernstein_threshold",
    "check_exactly_unbiased",
    "correct_sampler",
    "false_alarms",
    "no_compensation_sampler",
    "raise_if_biased",
    "samples_needed",
    "shared_coin_sampler",
    "statistical_test",
]


def bernstein_threshold(var, bound, n: int, alpha: float, d: int) -> np.ndarray:
    """ε solving 2·exp(−n ε² / (2σ² + 2Bε/3)) = α/d, per coordinate."""
    L = math.log(2 * d / alpha)
    b = 2 * np.asarray(bound) * L / 3
    return (b + np.sqrt(b * b + 8 * n * np.asarray(var) * L)) / (2 * n)


def samples_needed(var, bound, bias, alpha: float, d: int) -> np.ndarray:
    """Samples after which the threshold falls to bias/2 (so a bias ``bias`` is flagged)."""
    L = math.log(2 * d / alpha)
    eps = np.asarray(bias) / 2
    with np.errstate(divide="ignore"):
        return np.ceil(L * (2 * np.asarray(var) + 2 * np.asarray(bound) * eps / 3) / (eps * eps))


def correct_sampler(scheme):
    """The estimator's own draws: ``sampler(rng, n, T) -> xi (n, T)``."""
    return lambda rng, n, T: sample_xi(scheme, rng, T, n)


def no_compensation_sampler(scheme):
    """Negative control: links kept with the right probabilities but never scaled by 1/π."""
    def sampler(rng, n, T):
        return (sample_xi(scheme, rng, T, n) > 0).astype(np.float64)
    return sampler


def shared_coin_sampler(scheme):
    """Negative control: one coin per sample for every link (right marginals, biased products:
    E[ξ^m] = π^(1-m) for a common π)."""
    pis = np.asarray(scheme.pis)

    def sampler(rng, n, T):
        u = rng.random((n, 1))
        return np.where(u < pis[None, :], 1.0 / pis[None, :], 0.0)
    return sampler


@dataclass(frozen=True)
class UnbiasednessReport:
    verdict: str  # "unbiased" (no evidence of bias, and power enough), "biased", "inconclusive"
    n_samples: int
    alpha: float
    worst: str  # coordinate with the largest |ḡ − g| / ε
    deviation: float
    threshold: float
    detectable_relative_bias: float  # smallest relative bias this run resolves on a significant coordinate
    samples_for_requested_bias: float
    samples_per_second: float
    scheme: str

    def message(self) -> str:
        head = {"biased": "BiasDetected", "unbiased": "NoBiasDetected", "inconclusive": "Inconclusive"}[self.verdict]
        lines = [
            f"{head}: {self.scheme}, N={self.n_samples} samples, false-alarm rate ≤ {self.alpha:g} "
            f"(Bernstein + Bonferroni, exact second moments)",
            f"  worst coordinate {self.worst}: |ḡ − g| = {self.deviation:.3e}, threshold ε = {self.threshold:.3e}",
            f"  this run resolves a relative bias of {self.detectable_relative_bias:.3g} on its best significant "
            f"coordinate; the requested bias needs N ≈ {self.samples_for_requested_bias:.3g}",
        ]
        if self.verdict == "inconclusive":
            lines.append(f"  inconclusive: bound too wide, need N ≈ {self.samples_for_requested_bias:.3g} samples "
                         "(or larger π / shorter T)")
        return "\n".join(lines)


def check_exactly_unbiased(run, scheme, case) -> None:
    """E[ĝ] over all 2^T patterns, each weighted by its probability, equals full BPTT.

    ``run(scheme, case, xi=...)`` is called once per pattern (the reference is vectorised over
    patterns instead). Never tested with ξ = 1, which would hide a ξ applied twice.
    """
    check_callable("run", run, "a callable run(scheme, case, xi=...) -> gradients, e.g. reference_run")
    if not is_randomized(scheme):
        fail("scheme", scheme, "Randomized or RandomizedHistory")
    check_instance("case", case, Case, "a Case (from make_case() or the cases() strategy)")
    T = case.T
    if T > MAX_ENUMERATION_T:
        raise InvalidArgument(f"case has T={T}: expected T <= {MAX_ENUMERATION_T} for enumeration; use statistical_test")
    pairs = pair_contributions(case.config, case.params, case.x, case.d_output, case.h0, case.c0)
    if run is reference_run:
        mean = exact_moments(case.config, case.params, case.x, case.d_output, scheme, case.h0, case.c0, pairs=pairs).mean
    else:
        xi, prob = enumerate_patterns(scheme, T)
        mean = sum(p * pairs.flatten(run(scheme, case, xi=pattern).grads) for pattern, p in zip(xi, prob) if p > 0)
    got, full = pairs.unflatten(mean), pairs.unflatten(pairs.full)
    for key in full:
        tol = implementation_tolerance("float64", T=T, scale=float(np.max(np.abs(full[key]))))
        assert_close(f"{key} (mean over all 2^{T} patterns)", got[key], full[key], tol,
                     context=f"{scheme.describe()}; {case.describe()}; expected E[ĝ] = full BPTT",
                     reproducer=case.reproducer(f"# check_exactly_unbiased(reference_run, {scheme!r}, case)"))


def _moments(scheme, pairs):
    if isinstance(scheme, Randomized):
        return independent_moments(pairs, scheme.pis)
    # History-dependent: no closed form for the variance; |X - EX| ≤ B gives σ² ≤ B².
    qmin = min(scheme.run_probs)
    mean, _, bound = independent_moments(pairs, (qmin,) * pairs.T)
    return mean, bound * bound, bound


def statistical_test(
    scheme,
    case,
    n_samples: int,
    seed: int,
    *,
    sampler=None,
    alpha: float = 1e-6,
    relative_bias: float = 0.1,
    chunk: int = 2048,
    pairs=None,
) -> UnbiasednessReport:
    """Monte Carlo test of E[ĝ] = g_full with false-alarm rate ≤ ``alpha``.

    Samples come from ``sampler(rng, n, T)`` (default: the scheme's own draws) with
    ``numpy.random.default_rng(seed)``, ``chunk`` at a time stacked along the batch axis.
    """
    n_samples = check_int("n_samples", n_samples, minimum=2)
    check_int("seed", seed, minimum=0)
    if not (0 < alpha < 1):
        fail("alpha", alpha, "a probability in (0, 1)")
    if not is_randomized(scheme):
        fail("scheme", scheme, "Randomized or RandomizedHistory")
    check_instance("case", case, Case, "a Case (from make_case() or the cases() strategy)")
    if sampler is not None:
        check_callable("sampler", sampler, "None or a callable sampler(rng, n, T) -> xi (n, T)")
    T = case.T
    if isinstance(scheme, Randomized):
        scheme.check_length(T)
    if pairs is None:
        pairs = pair_contributions(case.config, case.params, case.x, case.d_output, case.h0, case.c0)
    g, var, bound = _moments(scheme, pairs)
    sampler = sampler or correct_sampler(scheme)
    rng = np.random.default_rng(seed)
    total = np.zeros_like(g)
    start = time.perf_counter()
    done = 0
    while done < n_samples:
        n = min(chunk, n_samples - done)
        xi = sampler(rng, n, T)
        res = truncated_backward(case.config, case.params, case.x, case.d_output, scheme, case.h0, case.c0, xi=xi)
        total += n * pairs.flatten(res.grads)
        done += n
    rate = n_samples / max(time.perf_counter() - start, 1e-9)
    mean = total / n_samples
    d = g.size
    rounding = implementation_tolerance("float64", T=T, scale=float(np.abs(g).max()))
    eps = bernstein_threshold(var, bound, n_samples, alpha, d) + rounding.allowed(g)
    ratio = np.abs(mean - g) / eps
    i = int(np.argmax(ratio))
    significant = np.abs(g) >= 0.1 * np.abs(g).max()
    rel = np.where(significant, 2 * eps / np.maximum(np.abs(g), 1e-300), np.inf)
    j = int(np.argmin(rel))
    need = samples_needed(var[j], bound[j], relative_bias * abs(g[j]), alpha, d)
    if ratio[i] > 1:
        verdict = "biased"
    elif rel[j] > relative_bias:
        verdict = "inconclusive"
    else:
        verdict = "unbiased"
    return UnbiasednessReport(verdict, n_samples, alpha, pairs.names()[i], float(abs(mean[i] - g[i])), float(eps[i]),
                              float(rel[j]), float(need), rate, scheme.describe())


def false_alarms(scheme, case, n_seeds: int, n_samples: int, alpha: float = 1e-6) -> tuple[int, list]:
    """Run the correct estimator under ``n_seeds`` seeds: ``(alarms, reports)`` (expected 0)."""
    pairs = pair_contributions(case.config, case.params, case.x, case.d_output, case.h0, case.c0)
    reports = [statistical_test(scheme, case, n_samples, seed, alpha=alpha, pairs=pairs) for seed in range(n_seeds)]
    return sum(r.verdict == "biased" for r in reports), reports


def raise_if_biased(report: UnbiasednessReport) -> None:
    if report.verdict == "biased":
        raise Mismatch(report.message(), None)
