"""Checks of ``randomized`` targets: ``fn(module, x, hx, cotangent, pis, rng) -> dict[str, Tensor]``,
one draw of a randomized-truncation estimator (SPEC §4): ``pis[t]`` (a float64 NumPy array of
length T) is the probability that the link into step t is kept (its adjoint then multiplied
by 1/pis[t]); ``rng`` is a ``numpy.random.Generator``, the target's only randomness. Module,
inputs and keys as for tbptt targets.

- determinism: the same seed twice gives bitwise the same gradients.
- exact (T ≤ 4): the oracle hands the target a :class:`ControlledGenerator` whose
  ``random()`` values it chooses. Each step's uniform u_t is only ever compared with a
  threshold, and the thresholds a keep-probability π can use are π and 1−π, so [0, 1) splits
  into at most three cells per step; one value from each cell, all 3^T combinations,
  weighted by the cells' lengths, give E[ĝ] exactly. It must equal full BPTT. This applies
  when the target draws with ``rng.random()`` only, T values in all (one per step, in any
  call shape); otherwise the check is "unsupported" and the statistical check decides.
- statistical: N draws from ``numpy.random.default_rng(seed)``; Bernstein's bound with the
  exact variance from the pair contributions and a Bonferroni correction gives a false-alarm
  rate ≤ 1e-6 per case (:mod:`bpttcheck.properties.unbiased`).

A biased result is explained: "pis read as a drop probability", "no 1/π compensation".
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from functools import partial

import numpy as np

from bpttcheck.reference.cells import TORCH_CELLS
from bpttcheck.reference.pairsum import pair_contributions
from bpttcheck.reference.randomized import independent_moments, pattern_weights

from ..compare import Mismatch, compare
from ..reproduce import JUDGE_LINES
from ..runner import PropertyCheck
from ..sensitivity import gradient_magnitudes, rounding_sensitivity
from ..strategies import cases, configs
from ..tolerance import Tolerance, implementation_tolerance
from ..unbiased import bernstein_threshold
from .common import Declined, Guarded, TargetFailure, check_id, devices_for
from .tbptt_checks import Protocol, with_initial_states

__all__ = ["ControlledGenerator", "EXACT_MAX_T", "STAT_SAMPLES", "exact_comparisons", "randomized_checks",
           "statistical_comparison"]

EXACT_MAX_T = 4
STAT_SAMPLES = 1000
ALPHA = 1e-6

_OTHER_DRAWS = ("uniform", "integers", "binomial", "choice", "standard_normal", "normal", "exponential",
                "permutation", "shuffle", "permuted", "bytes", "standard_exponential", "geometric", "poisson",
                "beta", "gamma", "multinomial", "bit_generator", "spawn")


class ControlledGenerator(np.random.Generator):
    """A Generator whose ``random()`` returns the oracle's scripted values in order; any other
    way of drawing declines the exact check (it could not be enumerated)."""

    def __init__(self, values):
        super().__init__(np.random.PCG64(0))
        object.__setattr__(self, "_script", list(values))
        object.__setattr__(self, "_used", 0)

    def __getattribute__(self, name):
        if name in _OTHER_DRAWS:
            raise Declined("the exact check", f"the target draws with rng.{name}; the exact check needs "
                                              "rng.random() only (T values, one per step)")
        return super().__getattribute__(name)

    def random(self, size=None, dtype=np.float64, out=None):
        n = 1 if size is None else int(np.prod(size))
        script, used = object.__getattribute__(self, "_script"), object.__getattribute__(self, "_used")
        if used + n > len(script):
            raise Declined("the exact check", f"the target drew more than T={len(script)} values with rng.random()")
        vals = np.asarray(script[used:used + n], dtype=dtype)
        object.__setattr__(self, "_used", used + n)
        return float(vals[0]) if size is None else vals.reshape(size)

    @property
    def used(self) -> int:
        return object.__getattribute__(self, "_used")


def _cells(pi: float):
    """(value, probability) per cell of [0, 1) split at π and 1−π."""
    cuts = sorted({0.0, min(pi, 1 - pi), max(pi, 1 - pi), 1.0})
    return [((a + b) / 2, b - a) for a, b in zip(cuts, cuts[1:]) if b > a]


def _ctx(spec, device, case, pis):
    return f"{spec} on {device}, pis={np.round(pis, 4).tolist()}; {case.describe()}"


def _snippet(spec, case, pis, device, body):
    """A stand-alone reproducer: the case, the target, ``body`` (lines that judge and raise an
    AssertionError when the bug is there)."""
    return case.reproducer(f"""import torch
from bpttcheck.properties.oracle import load_target
from bpttcheck.properties.torch_adapter import protocol_inputs
fn = load_target({spec!r})
module, xt, hx, cotangent = protocol_inputs(case, device={device!r})
pis = np.array({list(map(float, pis))!r})
{body}""")


def _cell_snippet(spec, case, pis, device, u):
    return _snippet(spec, case, pis, device, (
        "from bpttcheck.properties.oracle.randomized_checks import ControlledGenerator\n"
        f"got = fn(module, xt, hx, cotangent, pis, ControlledGenerator({u!r}))  # this one cell of the draws"))


def _magnitudes(case) -> dict:
    """Σ|terms| of full BPTT of ``L = Σ⟨d_output, output⟩`` (the protocol's loss)."""
    return gradient_magnitudes(replace(case, d_h_n=None, d_c_n=None))


def _pairs(case):
    return pair_contributions(case.config, case.params, case.x, case.d_output, case.h0, case.c0)


def _flat(pairs, got, ctx):
    missing = [n for n, _ in pairs.layout if n not in got]
    if missing:
        raise TargetFailure(f"GradientMismatch: {missing} missing from the target's result (keys {sorted(got)}) ({ctx})")
    for n, shape in pairs.layout:
        if got[n].shape != shape:
            raise TargetFailure(f"WrongShape: result[{n!r}] has shape {got[n].shape} where {shape} was expected ({ctx})")
    return pairs.flatten(got)


def _close(a, b) -> bool:
    return bool(np.allclose(a, b, rtol=1e-9, atol=1e-12 * max(1.0, float(np.abs(b).max()) if np.size(b) else 1.0)))


def _diagnose(mean_of, pairs, pis) -> str:
    """Which common mistake reproduces ``mean_of`` (a flat mean): pis as drop, no 1/π. A
    reading is offered only where it differs from the correct one on this case (at T = 1 the
    input gradient does not depend on the link, and every reading gives the same mean)."""
    T = len(pis)
    kept = ((np.arange(2**T)[:, None] >> np.arange(T)[None, :]) & 1).astype(bool)
    for text, keep_p, scale in (
        ("pis read as the probability of DROPPING the link (keep with 1 − pis[t], scale 1/(1 − pis[t]))",
         1 - pis, 1 / np.maximum(1 - pis, 1e-300)),
        ("no 1/pis compensation: a kept link's adjoint is not scaled by 1/pis[t]", pis, np.ones(T)),
        ("pis read as drop probability and no compensation", 1 - pis, np.ones(T)),
    ):
        prob = np.prod(np.where(kept, keep_p, 1 - keep_p), axis=1)
        xi = np.where(kept, scale, 0.0)
        m = prob @ pairs.weighted_sum(pattern_weights(xi))
        if _close(m, mean_of) and not _close(m, pairs.full):
            return "diagnosis: the mean matches " + text
    return "diagnosis: not explained by pis-as-drop or a missing 1/pis"


def exact_comparisons(fn, case, pis, *, device="cpu", spec="the target", raise_on_mismatch=True) -> list:
    """The exact check of one case: E[ĝ] and E[ĝ²] over every cell of the draws against full
    BPTT and the exact second moments of independent keeps (``case`` with its initial states).
    Raises :class:`Mismatch` (or returns the comparisons, ``raise_on_mismatch=False``)."""
    T = case.T
    ctx = _ctx(spec, device, case, pis)
    pairs = _pairs(case)
    mean = np.zeros_like(pairs.full)
    second = np.zeros_like(pairs.full)
    peak = np.zeros_like(pairs.full)  # the largest |ĝ| of any cell: each result is rounded relative to its own size
    cells = [_cells(float(p)) for p in pis]
    proto = Protocol(case, device)
    for combo in itertools.product(*cells):
        u = [c[0] for c in combo]
        w = math.prod(c[1] for c in combo)
        rng = ControlledGenerator(u)
        got = proto.call(fn, (np.array(pis), rng), context=ctx, what=f"{spec}(module, x, hx, cotangent, pis, rng)",
                         reproducer=lambda u=u: _cell_snippet(spec, case, pis, device, u))
        if rng.used != T:
            raise Declined("the exact check", f"the target drew {rng.used} values with rng.random() for T={T} steps "
                                              "(the exact check needs exactly one per step)")
        flat = _flat(pairs, got, ctx)
        mean += w * flat
        second += w * flat * flat
        peak = np.maximum(peak, np.abs(flat))
    full = pairs.full
    got_d, full_d, peak_d = pairs.unflatten(mean), pairs.unflatten(full), pairs.unflatten(peak)
    rep = lambda: _exact_snippet(spec, case, pis, device)  # noqa: E731
    mags = _magnitudes(case)
    # the forward's own rounding, carried into every cell's ĝ (as in every other check)
    sens = rounding_sensitivity(replace(case, d_h_n=None, d_c_n=None), "float64", seed=case.seed % 2**32)
    comps = []
    for key, e in full_d.items():
        # Condition-aware: each cell's ĝ adds the pair terms times ξ-products, whose mean over the
        # cells is 1 (ξ ≥ 0, independent, mean 1), so the cells' rounding averages to that of full
        # BPTT's Σ|terms|; the largest |ĝ| of any cell covers the accumulation of the mean.
        tol = implementation_tolerance("float64", T=T, scale=float(np.max(np.abs(e))) if e.size else 1.0,
                                       magnitude=np.maximum(mags[key], peak_d[key]), sensitivity=sens.get(key))
        c = compare(f"{key} (E[ĝ] over every cell of the draws)", got_d[key], e, tol)
        comps.append(c)
        if not c.ok and raise_on_mismatch:
            text = c.message(ctx + f"; exact over {len(list(itertools.product(*cells)))} cells; expected E[ĝ] = full BPTT")
            text += "\n  " + _diagnose(mean, pairs, np.asarray(pis))
            text += "\n  reproduce:\n" + "\n".join("    " + s for s in rep().rstrip().splitlines())
            raise Mismatch(text, c)
    # The law of ĝ, not only its mean: a target reading pis as drop probabilities (keeping with
    # 1 − π and scaling by 1/(1 − π)) is unbiased too, but its second moments differ (E ξ² = 1/π).
    _, var, _ = independent_moments(pairs, np.asarray(pis))
    want2 = pairs.unflatten(var + full * full)
    got2 = pairs.unflatten(second)
    # independent_moments forms E[ĝ²] as a signed sum over the (T+1)² second differences of
    # A², so its rounding is relative to the largest term (bounded by the largest second
    # moment of any coordinate), not to the coordinate itself: found by the 20-seed run.
    scale2 = float(np.max(np.abs(var + full * full))) if full.size else 1.0
    # Per coordinate the terms are bounded by (Π max(1, 1/π_t) · Σ|terms|)² (every cell's ĝ adds
    # the pair terms times ξ-products ≤ Π 1/π), and the largest cell's ĝ² bounds the target's
    # own sum. Only that bound holds everywhere: the largest second moment is not a bound on the
    # terms (thorough seed 101: T = 1, π = 0.3, E[ĝ²] = g² formed from terms 11·g² apart, 800u
    # off against an allowance of 560u from the largest moment), so the larger of the two
    # allowances judges.
    growth = float(np.prod(np.maximum(1.0, 1.0 / np.asarray(pis, dtype=np.float64))))
    own = pairs.unflatten(np.maximum((growth * pairs.flatten(mags)) ** 2, peak * peak))
    for key, e in want2.items():
        tol = implementation_tolerance("float64", T=(T + 1) ** 2, scale=scale2)
        tol_own = implementation_tolerance("float64", T=(T + 1) ** 2, scale=float(np.max(np.abs(e))) if e.size else 1.0,
                                           magnitude=own[key])
        allowed = np.maximum(np.broadcast_to(tol.allowed(e), e.shape), tol_own.allowed(e))
        tol = Tolerance(0.0, 0.0, "the larger per element of: r·(the largest second moment of any coordinate) "
                        f"[{tol.why}] and r·(Π max(1, 1/π)·Σ|terms|)² [{tol_own.why}]", extra=allowed,
                        precision="float64")
        c = compare(f"{key} (E[ĝ²] over every cell of the draws)", got2[key], e, tol)
        comps.append(c)
        if not c.ok and raise_on_mismatch:
            text = c.message(ctx + "; expected the second moments of independent draws kept with probability pis[t]")
            text += "\n  " + _diagnose_second(second, pairs, np.asarray(pis))
            text += "\n  reproduce:\n" + "\n".join("    " + s for s in rep().rstrip().splitlines())
            raise Mismatch(text, c)
    return comps


def _exact_body(fn, spec, device, drawn):
    case, pis = drawn
    return exact_comparisons(fn, with_initial_states(case), pis, device=device, spec=spec)


def _exact_snippet(spec, case, pis, device):
    return _snippet(spec, case, pis, device, (
        "from bpttcheck.properties.oracle.randomized_checks import exact_comparisons\n"
        f"comparisons = exact_comparisons(fn, case, pis, device={device!r}, raise_on_mismatch=False)\n"
        + JUDGE_LINES))


def _diagnose_second(second, pairs, pis) -> str:
    keep = 1 - pis
    ok = keep > 0
    if ok.all():
        _, var, _ = independent_moments(pairs, keep)
        _, var_right, _ = independent_moments(pairs, pis)
        alt, right = var + pairs.full**2, var_right + pairs.full**2
        if _close(alt, second) and not _close(alt, right):
            return ("diagnosis: the second moments match pis read as the probability of DROPPING the link "
                    "(keep with 1 − pis[t], scale 1/(1 − pis[t])): unbiased, but not the estimator asked for")
    return "diagnosis: the draws are not independent keeps with probability pis[t] (shared or history-dependent coins?)"


def _determinism_body(fn, spec, device, drawn):
    case, pis = drawn
    case = with_initial_states(case)
    ctx = _ctx(spec, device, case, pis)
    seed = case.seed % 2**32
    rep = lambda: _snippet(spec, case, pis, device, (  # noqa: E731
        f"a = fn(module, xt, hx, cotangent, pis, np.random.default_rng({seed}))\n"
        f"b = fn(module, xt, hx, cotangent, pis, np.random.default_rng({seed}))\n"
        "differ = [k for k in a if not torch.equal(a[k], b[k])]\n"
        "print('differ:', differ)\n"
        "assert not differ, f'{differ} differ between two calls with the same seed'"))
    proto = Protocol(case, device)
    runs = [proto.call(fn, (np.array(pis), np.random.default_rng(seed)), context=ctx, reproducer=rep,
                       what=f"{spec}(module, x, hx, cotangent, pis, rng)") for _ in range(2)]
    for key in runs[0]:
        if key not in runs[1] or not np.array_equal(runs[0][key], runs[1][key], equal_nan=True):
            raise TargetFailure(f"NotDeterministic: {key} differs between two calls with numpy.random.default_rng({seed}); "
                                f"the generator passed in must be the target's only source of randomness ({ctx})\n"
                                "  reproduce:\n" + "\n".join("    " + s for s in rep().rstrip().splitlines()))
    return []


def statistical_comparison(fn, case, pis, *, device="cpu", spec="the target", samples: int = STAT_SAMPLES) -> list:
    """The statistical check of one case (``case`` with its initial states): the mean of
    ``samples`` draws from ``numpy.random.default_rng(case.seed)`` within Bernstein's bound
    (exact variance, Bonferroni over the coordinates, false-alarm rate ≤ ALPHA) of full BPTT;
    raises :class:`Mismatch` otherwise."""
    ctx = _ctx(spec, device, case, pis)
    pairs = _pairs(case)
    g, var, bound = independent_moments(pairs, pis)
    seed = case.seed % 2**32
    rng = np.random.default_rng(seed)
    n = samples
    rep = lambda: _snippet(spec, case, pis, device, (  # noqa: E731
        "from bpttcheck.properties.oracle.randomized_checks import statistical_comparison\n"
        f"statistical_comparison(fn, case, pis, device={device!r}, samples={n})  # raises if biased"))
    total = np.zeros_like(g)
    proto = Protocol(case, device)
    for _ in range(n):
        got = proto.call(fn, (np.array(pis), rng), context=ctx, reproducer=rep,
                         what=f"{spec}(module, x, hx, cotangent, pis, rng)")
        total += _flat(pairs, got, ctx)
    mean = total / n
    rounding = implementation_tolerance("float64", T=case.T, scale=float(np.abs(g).max()) if g.size else 1.0,
                                        magnitude=pairs.flatten(_magnitudes(case)))
    eps = bernstein_threshold(var, bound, n, ALPHA, g.size) + rounding.allowed(g)
    ratio = np.abs(mean - g) / eps
    i = int(np.argmax(ratio))
    if ratio[i] > 1:
        text = (f"BiasDetected: {pairs.names()[i]}: the mean of {n} draws is {mean[i]:.6g}, full BPTT gives {g[i]:.6g}; "
                f"|difference| {abs(mean[i] - g[i]):.3e} > threshold {eps[i]:.3e} (Bernstein + Bonferroni over "
                f"{g.size} coordinates with the exact variance; false-alarm rate ≤ {ALPHA:g}) ({ctx})")
        text += "\n  " + _diagnose_statistical(mean, pairs, np.asarray(pis), var, bound, n)
        text += "\n  reproduce:\n" + "\n".join("    " + s for s in rep().rstrip().splitlines())
        raise Mismatch(text, None)
    return []


def _statistical_body(fn, spec, device, drawn):
    case, pis = drawn
    return statistical_comparison(fn, with_initial_states(case), pis, device=device, spec=spec)


def _diagnose_statistical(mean, pairs, pis, var, bound, n):
    T = len(pis)
    if T > 12:
        return "diagnosis: T too long to compare with the common mistakes"
    kept = ((np.arange(2**T)[:, None] >> np.arange(T)[None, :]) & 1).astype(bool)
    eps = bernstein_threshold(var + bound**2, bound * 4, n, ALPHA, mean.size)
    for text, keep_p, scale in (("pis read as the probability of DROPPING the link", 1 - pis, 1 / np.maximum(1 - pis, 1e-300)),
                                ("no 1/pis compensation", pis, np.ones(T))):
        prob = np.prod(np.where(kept, keep_p, 1 - keep_p), axis=1)
        m = prob @ pairs.weighted_sum(pattern_weights(np.where(kept, scale, 0.0)))
        if np.all(np.abs(mean - m) <= eps) and not np.all(np.abs(pairs.full - m) <= eps):
            return f"diagnosis: consistent with {text}"
    return "diagnosis: not explained by pis-as-drop or a missing 1/pis (a shared or history-dependent coin?)"


def _strategy(cell, max_T):
    from hypothesis import strategies as st


    conf = configs(cells=(cell,) if cell != "all" else TORCH_CELLS, activations=("tanh",), bidirectional=False, proj=False, max_layers=2)

    @st.composite
    def drawn(draw):
        case = draw(cases(conf, max_T=max_T, max_B=2, lengths=False, batch_first=False, regime="contractive"))
        pis = [draw(st.sampled_from((0.3, 0.5, 0.7, 0.9, 1.0))) for _ in range(case.T)]
        return case, tuple(pis)

    return drawn()


def randomized_checks(target, options) -> list[PropertyCheck]:
    spec, fn, device = target.spec, target.obj, options.device
    out = []
    for dev, skip in devices_for(device):
        for part, body, max_T, examples, cells in (
                ("exact", _exact_body, EXACT_MAX_T, None, TORCH_CELLS),
                ("determinism", _determinism_body, 6, None, ("all",)),
                ("statistical", _statistical_body, 4, 3, ("all",))):
            for cell in cells:
                out.append(PropertyCheck(
                    name=f"{spec} (randomized) {part} {cell} on {dev}",
                    strategy=_strategy(cell, max_T),
                    body=Guarded(partial(body, fn, spec, dev)),
                    skip=skip,
                    max_examples=examples,
                    id=check_id("randomized", part, cell, dev, "float64"),
                ))
    return out
