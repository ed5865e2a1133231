"""Properties of truncated BPTT (issue 4), each checking an implementation against an oracle
independent of it, with a report that names the scheme, the quantity and the time steps.

An implementation under test is a callable ``run(scheme, case) -> result`` where ``result``
has ``.grads`` (torch names, "input", "h0", "c0") and ``.output``, ``.h_n``, ``.c_n``, like
:func:`reference_run`. Cases are :class:`~bpttcheck.properties.strategies.Case` objects
(time-major, no padding); only their ``d_output`` cotangent is used — every loss enters
through it, and readout gradients are never truncated. Randomized properties are in
:mod:`.unbiased` and in :func:`check_randomized_pattern` here.
"""

from __future__ import annotations

import numpy as np

from bpttcheck.reference import GAMMA, forward
from bpttcheck.reference.cells import cell_spec
from bpttcheck.reference.validation import InvalidArgument, fail
from bpttcheck.reference.pairsum import pair_contributions, pair_sum, surrogate_gradient
from bpttcheck.reference.randomized import pattern_weights
from bpttcheck.reference.truncation import (
    Full, Randomized, SlidingWindow, Subsequence, WilliamsPeng, Window, is_randomized,
    truncated_backward, window_starts,
)

from .compare import Mismatch, compare
from .sensitivity import gradient_magnitudes
from .tolerance import implementation_tolerance
from .torch_checks import require_torch, torch_layer

__all__ = [
    "check_against_pairsum",
    "check_against_surrogate",
    "check_against_torch",
    "check_error_bound",
    "check_forward_unchanged",
    "check_large_window_is_full",
    "check_randomized_pattern",
    "check_unit_windows_coincide",
    "error_bound",
    "explain_convention",
    "localize",
    "reference_run",
    "surrogate_complex_step",
    "torch_truncated",
    "truncation_bias",
]


def reference_run(scheme, case, xi=None, method="auto"):
    """The reference implementation, in the ``run(scheme, case)`` form."""
    return truncated_backward(case.config, case.params, case.x, case.d_output, scheme, case.h0, case.c0,
                              xi=xi, method=method)


def _context(scheme, case) -> str:
    return f"{scheme.describe()}; {case.describe()}"


_LAST_MAGNITUDES: list = [None, None]  # (case, its full-BPTT magnitudes): one case is checked at a time


def _magnitudes(case) -> dict:
    if _LAST_MAGNITUDES[0] is not case:
        _LAST_MAGNITUDES[:] = [case, gradient_magnitudes(case)]
    return _LAST_MAGNITUDES[1]


def _tol(case, grads_expected, key):
    """Condition-aware: Σ|terms| of full BPTT bounds the terms any truncated gradient adds
    (a subset of the same pairs), so a cancelled element is judged on its terms, not itself."""
    scale = float(np.max(np.abs(grads_expected[key]))) if np.size(grads_expected[key]) else 1.0
    mags = _magnitudes(case).get(key)
    if mags is not None and mags.shape != np.shape(grads_expected[key]):
        mags = None
    return implementation_tolerance("float64", T=case.T, scale=scale, magnitude=mags)


def _first_mismatch(got: dict, expected: dict, case):
    for key in expected:
        if key not in got:
            return key, None
        c = compare(key, got[key], expected[key], _tol(case, expected, key))
        if not c.ok:
            return key, c
    return None, None


def _raise(key, comparison, context, lines, case, check):
    if comparison is None:
        raise Mismatch(f"GradientMismatch: {key} missing from the implementation's gradients ({context})", None)
    text = comparison.message(context)
    text += "".join("\n  " + line for line in lines)
    text += "\n  reproduce:\n" + "\n".join("    " + s for s in case.reproducer(check).rstrip().splitlines())
    raise Mismatch(text, comparison)


def _flat(g: dict) -> np.ndarray:
    return np.concatenate([np.asarray(v).reshape(-1) for v in g.values()])


def localize(run, scheme, case, max_lines: int = 4) -> list[str]:
    """Which losses disagree, and which window each one actually used.

    Runs the implementation with the cotangent of one loss t at a time and finds the window
    start a whose surrogate gradient it matches (SPEC §1: loss t through steps a..t).
    """
    T = case.T
    f = window_starts(scheme, T)
    lines = []
    for t in range(T):
        d = np.zeros_like(case.d_output)
        d[t] = case.d_output[t]
        sub = _with(case, d_output=d)
        got = run(scheme, sub).grads
        want = surrogate_gradient(case.config, case.params, case.x, d, t, int(f[t]), case.h0, case.c0)
        if _first_mismatch(got, want, case)[0] is None:
            continue
        used = [a for a in range(t + 1)
                if _first_mismatch(got, surrogate_gradient(case.config, case.params, case.x, d, t, a, case.h0, case.c0), case)[0] is None]
        seen = f"it reaches back to step {used[0]} (window {used[0]}..{t})" if used else "it matches no window a..t"
        lines.append(f"loss at t={t}: expected window f(t)={f[t]}..{t}" + (" (reaches h0)" if f[t] == 0 else "") + f"; {seen}")
        if len(lines) >= max_lines:
            lines.append("… (further losses not examined)")
            break
    return lines


def _with(case, **changes):
    from dataclasses import replace

    return replace(case, **changes)


def _check_grads(run, scheme, case, expected, oracle: str, check: str):
    got = run(scheme, case).grads
    key, comp = _first_mismatch(got, expected, case)
    if key is None:
        return
    lines = [f"oracle: {oracle}"] + localize(run, scheme, case)
    hint = explain_convention(got, scheme, case)
    if hint:
        lines.append(hint)
    _raise(key, comp, _context(scheme, case), lines, case, check)


def check_against_pairsum(run, scheme, case) -> None:
    """The truncated gradient equals the O(T²) pair-sum Σ_t Σ_{s ≥ f(t)} C[t, s]."""
    expected = pair_sum(case.config, case.params, case.x, case.d_output, scheme, case.h0, case.c0)
    _check_grads(run, scheme, case, expected, "pair-sum over windows f(t)..t",
                 f"# check_against_pairsum(reference_run, {scheme!r}, case)")


def check_large_window_is_full(run, case) -> None:
    """Every scheme whose window covers the sequence equals full BPTT (k ≥ T, h ≥ T, π = 1)."""
    T = case.T
    expected = pair_sum(case.config, case.params, case.x, case.d_output, Full(), case.h0, case.c0)
    for scheme in (Subsequence(T), Subsequence(T + 3), SlidingWindow(T), SlidingWindow(T + 1),
                   WilliamsPeng(T, 1), WilliamsPeng(T + 2, T), Window(lambda t: 0, "f(t)=0")):
        _check_grads(run, scheme, case, expected, "full BPTT (window >= T)", "")
    ones = Randomized((1.0,) * T)
    got = run(ones, case) if run is not reference_run else reference_run(ones, case, xi=np.ones(T))
    key, comp = _first_mismatch(got.grads, expected, case)
    if key is not None:
        _raise(key, comp, _context(ones, case), ["oracle: full BPTT (every link kept, π = 1)"], case, "")


def check_unit_windows_coincide(run, case) -> None:
    """Window-1 schemes all equal f(t) = t: SlidingWindow(1), Subsequence(1), WP(1; 1)."""
    f = np.arange(case.T)
    expected = pair_sum(case.config, case.params, case.x, case.d_output, f, case.h0, case.c0)
    for scheme in (SlidingWindow(1), Subsequence(1), WilliamsPeng(1, 1), Window(lambda t: t, "f(t)=t")):
        _check_grads(run, scheme, case, expected, "window f(t)=t (each loss reaches its own step only)", "")


def check_forward_unchanged(run, scheme, case) -> None:
    """Outputs and final states equal the plain forward's, whatever the scheme."""
    ref = forward(case.config, case.params, case.x, case.h0, case.c0)
    xi = np.ones(case.T) if is_randomized(scheme) and run is reference_run else None
    got = run(scheme, case) if xi is None else run(scheme, case, xi=xi)
    for name in ("output", "h_n", "c_n"):
        e = getattr(ref, name)
        if e is None:
            continue
        c = compare(name, getattr(got, name), e, implementation_tolerance("float64", T=case.T, scale=float(np.max(np.abs(e)))))
        if not c.ok:
            steps = ""
            if name == "output":
                bad = np.nonzero(np.any(np.abs(np.asarray(got.output) - e) > c.tolerance.allowed(e), axis=(1, 2)))[0]
                steps = f"the forward differs at steps t={bad.tolist()[:8]}; the forward must never be truncated"
            _raise(name, c, _context(scheme, case), [steps] if steps else ["the forward must never be truncated"], case, "")


# --- an oracle independent of the engine's backward: complex step on the surrogate loss ---

def surrogate_complex_step(scheme, case, h: float = 1e-30) -> dict:
    """∇ of the surrogate loss Σ_t ⟨G_t, y_t⟩, loss t run from the frozen state H[f(t)-1],
    by the complex step over every parameter, input and initial-state entry at once.

    Only the forward is used (with a stack of n perturbed copies), never the backward.
    """
    cfg, T = case.config, case.T
    f = window_starts(scheme, T)
    names = list(case.params)
    blocks = [(k, case.params[k]) for k in names] + [("input", case.x)]
    h0 = case.h0 if case.h0 is not None else np.zeros((cfg.num_layers, case.B, cfg.output_size))
    blocks.append(("h0", h0))
    if cell_spec(cfg.cell).has_cell_state:
        blocks.append(("c0", case.c0 if case.c0 is not None else np.zeros((cfg.num_layers, case.B, cfg.hidden_size))))
    sizes = [b.size for _, b in blocks]
    n = sum(sizes)
    eye = np.eye(n) * (1j * h)
    stacked, i = {}, 0
    for (name, base), size in zip(blocks, sizes):
        stacked[name] = base[None] + eye[:, i : i + size].reshape((n,) + base.shape)
        i += size
    total = np.zeros(n, dtype=complex)
    for a in np.unique(f):
        losses = np.nonzero(f == a)[0]
        last = int(losses.max())
        if a == 0:
            hs, cs = stacked["h0"], stacked.get("c0")
        else:  # frozen: the real states entering step a, the same in every perturbed copy
            r = forward(cfg, case.params, case.x[:a], case.h0, case.c0)
            hs = np.broadcast_to(r.h_n, (n,) + r.h_n.shape)
            cs = None if r.c_n is None else np.broadcast_to(r.c_n, (n,) + r.c_n.shape)
        out = forward(cfg, {k: stacked[k] for k in names}, stacked["input"][:, a : last + 1], hs, cs).output
        for t in losses:
            total += np.einsum("nbp,bp->n", out[:, t - a], case.d_output[t])
    grad = total.imag / h
    result, i = {}, 0
    for (name, base), size in zip(blocks, sizes):
        result[name] = grad[i : i + size].reshape(base.shape)
        i += size
    return result


def check_against_surrogate(run, scheme, case) -> None:
    """The truncated gradient equals the complex-step gradient of the frozen-state surrogate."""
    expected = surrogate_complex_step(scheme, case)
    _check_grads(run, scheme, case, expected, "complex step of the surrogate loss (out-of-window states frozen)",
                 f"# compare reference_run({scheme!r}, case).grads with surrogate_complex_step({scheme!r}, case)")


# --- PyTorch detach loops ---

def torch_truncated(scheme, case, device: str = "cpu", xi=None) -> dict:
    """The same gradient from torch autograd written as users write it: a detach loop for the
    subsequence scheme, one detached recomputation per loss for windows, and a per-step
    gradient-scaling hook for randomized patterns. float64; TF32 off on CUDA."""
    torch = require_torch()
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    cfg, T = case.config, case.T
    m = torch_layer(cfg, case.params, device=device)
    tt = lambda a: None if a is None else torch.tensor(np.asarray(a), device=device, dtype=torch.float64, requires_grad=True)  # noqa: E731
    x, h0, c0 = tt(case.x), tt(case.h0), tt(case.c0)
    if h0 is None:
        h0 = torch.zeros(cfg.num_layers, case.B, cfg.output_size, dtype=torch.float64, device=device, requires_grad=True)
    carries_c = cell_spec(cfg.cell).has_cell_state
    if carries_c and c0 is None:
        c0 = torch.zeros(cfg.num_layers, case.B, cfg.hidden_size, dtype=torch.float64, device=device, requires_grad=True)
    G = torch.tensor(case.d_output, device=device)
    state = (lambda h, c: (h, c)) if carries_c else (lambda h, c: h)  # noqa: E731

    def run_from(h, c, lo, hi):
        out, s = m(x[lo:hi], state(h, c))
        return out, (s[0] if carries_c else s), (s[1] if carries_c else None)

    if xi is not None:  # randomized: scale the carried state's gradient by ξ_t on entering step t

        class Scale(torch.autograd.Function):
            @staticmethod
            def forward(ctx, a, w):
                ctx.w = w
                return a.view_as(a)

            @staticmethod
            def backward(ctx, g):
                return g * ctx.w, None

        h, c, loss = h0, c0, 0
        for t in range(T):
            h = Scale.apply(h, float(xi[t]))
            c = None if c is None else Scale.apply(c, float(xi[t]))
            out, h, c = run_from(h, c, t, t + 1)
            loss = loss + (out * G[t : t + 1]).sum()
        loss.backward()
    elif isinstance(scheme, Subsequence):
        h, c = h0, c0
        for lo in range(0, T, scheme.k):
            if lo > 0:  # the classic loop: detach at every chunk start
                h, c = h.detach(), (None if c is None else c.detach())
            out, h, c = run_from(h, c, lo, min(lo + scheme.k, T))
            (out * G[lo : lo + scheme.k]).sum().backward()
    else:
        f = window_starts(scheme, T)
        for t in range(T):
            a = int(f[t])
            if a == 0:
                h, c = h0, c0
            else:
                with torch.no_grad():
                    _, h, c = run_from(h0, c0, 0, a)
            out, _, _ = run_from(h, c, a, t + 1)
            (out[-1] * G[t]).sum().backward()
    grads = {n: p.grad.detach().cpu().numpy() for n, p in m.named_parameters()}
    grads["input"] = x.grad.detach().cpu().numpy()
    grads["h0"] = h0.grad.detach().cpu().numpy() if h0.grad is not None else np.zeros(h0.shape)
    if carries_c:
        grads["c0"] = c0.grad.detach().cpu().numpy() if c0.grad is not None else np.zeros(c0.shape)
    return grads


def check_against_torch(run, scheme, case, device: str = "cpu", xi=None) -> None:
    """The truncated (or randomized, for a pattern ``xi``) gradient equals a torch loop's."""
    expected = torch_truncated(scheme, case, device, xi)
    if xi is None:
        _check_grads(run, scheme, case, expected, f"torch detach loop on {device}", "")
        return
    got = run(scheme, case, xi=xi).grads
    key, comp = _first_mismatch(got, expected, case)
    if key is not None:
        _raise(key, comp, _context(scheme, case), [f"oracle: torch loop scaling the carried gradient by ξ on {device}",
                                                   f"xi = {np.round(xi, 4).tolist()}"], case, "")


def check_randomized_pattern(run, scheme, case, xi) -> None:
    """For a fixed pattern ξ (T,), ĝ(ξ) = Σ_{t ≥ s} Π_{j=s+1..t} ξ_j · C[t, s] (SPEC §4).

    On a mismatch, single-link patterns (every link kept with 1/π except link j) name the
    links the implementation mishandles.
    """
    pairs = pair_contributions(case.config, case.params, case.x, case.d_output, case.h0, case.c0)
    xi = np.asarray(xi, dtype=np.float64)
    expected = pairs.unflatten(pairs.weighted_sum(pattern_weights(xi[None]))[0])
    got = run(scheme, case, xi=xi).grads
    key, comp = _first_mismatch(got, expected, case)
    if key is None:
        return
    lines = ["oracle: pair contributions weighted by Π ξ over the links crossed", f"xi = {np.round(xi, 4).tolist()}"]
    pis = np.asarray(scheme.pis) if isinstance(scheme, Randomized) else np.full(case.T, 0.5)
    bad = []
    for j in range(case.T):
        probe = 1.0 / pis
        probe[j] = 0.0
        e = pairs.unflatten(pairs.weighted_sum(pattern_weights(probe[None]))[0])
        if _first_mismatch(run(scheme, case, xi=probe).grads, e, case)[0] is not None:
            bad.append(j)
    lines.append(f"patterns cutting only the link into step j disagree for j={bad}" if bad
                 else "every single-cut pattern agrees: the error is in how several ξ combine")
    _raise(key, comp, _context(scheme, case), lines, case, "")


def explain_convention(grads: dict, scheme, case) -> str | None:
    """If a sliding-window result matches the neighbouring convention, say so (SPEC §3)."""
    if not isinstance(scheme, SlidingWindow):
        return None
    for k, text in ((scheme.k + 1, "the seeds' convention f(t)=max(0, t-k) with k={k0}, i.e. SlidingWindow({k1})"),
                    (scheme.k - 1, "SlidingWindow({k1}): the window counts Jacobian factors, not steps")):
        if k < 1:
            continue
        e = pair_sum(case.config, case.params, case.x, case.d_output, SlidingWindow(k), case.h0, case.c0)
        if _first_mismatch(grads, e, case)[0] is None:
            return "convention: the result matches " + text.format(k0=scheme.k, k1=k) + " exactly"
    return None


# --- contractive regime: the geometric-tail bound (SPEC §6) ---

def error_bound(scheme, case) -> tuple[float, float, float]:
    """``(bound, envelope, rho)`` on ‖g_full − g_trunc‖₂ for a one-layer Elman RNN with
    ρ = γ·σ_max(W_hh) < 1.

    Loss t reaches H[s] through t-s Jacobians, each of norm ≤ ρ; the pre-activation adjoint
    is then ≤ γ ρ^(t-s) ‖G_t‖ and the pair C[t, s] ≤ that times
    M_s = √(‖x_s‖² + ‖h_{s-1}‖² + 2·bias + σ_max(W_ih)²); h0 gets ≤ ρ^(t+1) ‖G_t‖. Summing
    the pairs a window leaves out gives ``bound``. With w = the shortest window that cuts
    anything and M = max M_s, ``envelope`` = Σ‖G_t‖·(γM/(1−ρ) + ρ)·ρ^w ≥ bound: for a sliding
    window of k steps w = k, so the envelope shrinks by exactly ρ per extra step.
    """
    cfg = case.config
    if cfg.cell != "rnn" or cfg.num_layers != 1:
        raise InvalidArgument(f"config=({cfg.describe()}): expected a one-layer Elman RNN (cell='rnn', num_layers=1) for the SPEC §6 bound")
    gamma = GAMMA[cfg.nonlinearity]
    rho = gamma * np.linalg.svd(case.params["weight_hh_l0"], compute_uv=False)[0]
    if not rho < 1:
        fail("case", f"γ·σ_max(W_hh)={rho:.3g}", "a contractive case, γ·σ_max(W_hh) < 1")
    T = case.T
    f = window_starts(scheme, T)
    r = forward(cfg, case.params, case.x, case.h0)
    hprev = np.concatenate([np.zeros((1,) + r.h_n.shape[1:]) if case.h0 is None else case.h0[None, 0], r.output[:-1]])
    s_ih = np.linalg.svd(case.params["weight_ih_l0"], compute_uv=False)[0]
    M = np.sqrt((case.x**2).sum(-1) + (hprev**2).sum(-1) + (2.0 if cfg.bias else 0.0) + s_ih**2)  # (T, B)
    Gn = np.sqrt((case.d_output**2).sum(-1))  # (T, B)
    bound, cut_windows = 0.0, []
    for t in range(T):
        if f[t] == 0:
            continue
        s = np.arange(f[t])
        bound += float((Gn[t] * (gamma * (rho ** (t - s))[:, None] * M[s]).sum(0)).sum() + (Gn[t] * rho ** (t + 1)).sum())
        cut_windows.append(t - f[t] + 1)
    if not cut_windows:
        return 0.0, 0.0, float(rho)
    w = min(cut_windows)
    envelope = float(Gn.sum() * (gamma * M.max() / (1 - rho) + rho) * rho**w)
    return bound, envelope, float(rho)


def check_error_bound(scheme, case) -> tuple[float, float]:
    """‖g_full − g_trunc‖ ≤ bound ≤ envelope in the contractive regime; returns (error, bound)."""
    full = reference_run(Full(), case).grads
    trunc = reference_run(scheme, case).grads
    err = float(np.sqrt(sum(((full[k] - trunc[k]) ** 2).sum() for k in full)))
    bound, envelope, rho = error_bound(scheme, case)
    slack = implementation_tolerance("float64", T=case.T, scale=float(np.abs(_flat(full)).max())).atol
    if not err <= bound + slack or not bound <= envelope * (1 + 1e-12):
        raise Mismatch(
            f"BoundViolation: ‖g_full − g_trunc‖ = {err:.3e} exceeds the geometric-tail bound {bound:.3e} "
            f"(envelope {envelope:.3e}, ρ = γ·σ_max = {rho:.3f}) ({_context(scheme, case)})\n"
            f"  reproduce:\n" + "\n".join("    " + s for s in case.reproducer(f"# check_error_bound({scheme!r}, case)").splitlines()),
            None,
        )
    return err, bound


def truncation_bias(scheme, case) -> float:
    """‖g_trunc − g_full‖ / ‖g_full‖: standard truncation is biased in general."""
    full = _flat(reference_run(Full(), case).grads)
    trunc = _flat(reference_run(scheme, case).grads)
    return float(np.linalg.norm(trunc - full) / max(np.linalg.norm(full), 1e-300))
