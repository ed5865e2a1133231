"""``bpttcheck diagnose``: vanishing/exploding gradients as tables and pictures (issue 8).

For each chosen largest singular value σ of W_hh (contractive, critical, expansive) and each
cell (tanh RNN, LSTM, GRU) it measures, on the reference:

1. ‖∂h_{T-1}/∂h_{T-1-k}‖₂ against the lag k, with the Elman bound (γσ)^k and each cell's
   Π‖J_j‖₂ bound (``lag_norms.png``);
2. the share of ∂L/∂W_hh coming from each lag (``lag_contributions.png``);
3. gradient histograms over the SGD steps of a small model, coloured cool → warm as in
   seed 002 (``gradient_histograms.png``);
4. the hidden units' activations over an input sequence, blue = low, red = high, as in
   seed 004's visualisation (``activations.png``).

With ``--target mypkg.layers:MyLSTM`` (a drop-in for torch.nn.RNN/LSTM/GRU) the same pictures
are drawn for the user's layer: its lag norms through its own autograd, with the reference's
weights loaded, beside the reference's curve (and a line saying whether they agree); the
histograms and activations of the layer itself trained on the same task
(:mod:`bpttcheck.properties.oracle.target_diagnose`).

The numbers are printed as tables; matplotlib (``pip install 'bpttcheck[plot]'``) is imported
only to draw, and only when ``--out`` is given.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np

from bpttcheck.properties.oracle.target_diagnose import (resolve_module_target, target_activations, target_lag_norms,
                                                         train_target)
from bpttcheck.properties.oracle.targets import TargetError
from bpttcheck.reference.config import CELLS, RecurrentConfig, init_params
from bpttcheck.reference.jacobians import chain_jacobians, spectral_norm, step_jacobians, step_norm_bound
from bpttcheck.reference.losses import LossSpec
from bpttcheck.reference.network import forward
from bpttcheck.reference.profiles import history_statistics, profile_from_steps, train_sgd

__all__ = ["LagCurves", "add_arguments", "lag_curves", "run", "scaled_params"]

COLORS = {"rnn": "tab:blue", "lstm": "tab:orange", "gru": "tab:green"}
NAMES = {"rnn": "tanh RNN", "lstm": "LSTM", "gru": "GRU"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cell", dest="cells", default="rnn,lstm,gru",
                        help="comma-separated cells to compare (rnn = tanh Elman RNN; default: rnn,lstm,gru)")
    parser.add_argument("--sigma", default="0.5,1.0,2.0",
                        help="comma-separated σ_max(W_hh) values: contractive (<1), critical (=1), expansive (>1)")
    parser.add_argument("-T", "--steps", dest="T", type=int, default=60, help="sequence length (default 60)")
    parser.add_argument("--hidden", type=int, default=32, help="hidden size (default 32)")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights and inputs (default 0)")
    parser.add_argument("--train-steps", type=int, default=30, help="SGD steps for the histograms (default 30)")
    parser.add_argument("--out", default=None, help="directory for the PNG and SVG pictures (default: tables only)")
    parser.add_argument("--format", default="png,svg", help="picture formats (default png,svg)")
    parser.add_argument("--target", default=None, metavar="SPEC",
                        help="your own layer, 'package.module:Class', a drop-in for torch.nn.RNN/LSTM/GRU: its "
                             "curves beside the reference's (needs torch)")
    parser.add_argument("--kind", default=None, metavar="KIND",
                        help="module:rnn, module:lstm or module:gru when the class name does not say the cell")


def _floats(name, text):
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or not all(np.isfinite(v) and v > 0 for v in values):
        raise SystemExit(f"bpttcheck diagnose: {name}={text!r}: expected comma-separated positive numbers, e.g. 0.5,1.0,2.0")
    return values


def _cells(text):
    cells = [c.strip() for c in text.split(",") if c.strip()]
    bad = [c for c in cells if c not in CELLS]
    if not cells or bad:
        raise SystemExit(f"bpttcheck diagnose: --cell={text!r}: expected a comma-separated subset of {', '.join(CELLS)}")
    return cells


def scaled_params(config: RecurrentConfig, sigma: float, seed: int) -> dict:
    """torch-style initial weights with W_hh (the whole stacked matrix) rescaled to σ_max = σ."""
    params = init_params(config, np.random.default_rng(seed))
    W = params["weight_hh_l0"]
    params["weight_hh_l0"] = W * (sigma / spectral_norm(W))
    return params


@dataclass(frozen=True)
class LagCurves:
    """For one cell and σ: norms (T+1,) = ‖∂h_{T-1}/∂h_{T-1-k}‖₂, product bound (T+1,),
    lag shares (T,) = ‖lag-k share of ∂L/∂W_hh‖_F, hidden (T, H) activations."""

    cell: str
    sigma: float
    norms: np.ndarray
    product_bound: np.ndarray
    lag_shares: np.ndarray
    hidden: np.ndarray


def _lag_case(cell: str, sigma: float, T: int, hidden: int, seed: int):
    """``(config, params, x, rng)``: the weights and input sequence the lag curves are measured on
    (the reference's and a ``--target``'s alike); ``rng`` then draws the cotangents."""
    config = RecurrentConfig(cell, 4, hidden)
    params = scaled_params(config, sigma, seed)
    rng = np.random.default_rng(seed + 1)
    return config, params, rng.standard_normal((T, 1, 4)), rng


def lag_curves(cell: str, sigma: float, T: int, hidden: int, seed: int) -> LagCurves:
    """Measure one cell at one σ on a random input sequence (batch 1, h0 = 0)."""
    config, params, x, rng = _lag_case(cell, sigma, T, hidden, seed)
    step = step_jacobians(config, params, x)
    chain = chain_jacobians(step)
    norms = spectral_norm(step.hidden_block(chain))[:, 0]
    bound = step_norm_bound(step)[:, 0]
    d_out = rng.standard_normal((T, 1, config.output_size))
    shares = profile_from_steps(step, d_out).lag_norms
    return LagCurves(cell, sigma, norms, bound, shares, step.states[1:, 0, :hidden])


def _fmt(v):
    return f"{v:10.3e}"


def _table(title, header, rows, out):
    print(title, file=out)
    print("  " + " ".join(f"{h:>10}" for h in header), file=out)
    for row in rows:
        print("  " + " ".join(f"{c:>10}" if isinstance(c, str) else (f"{c:>10d}" if isinstance(c, (int, np.integer)) else _fmt(c)) for c in row), file=out)
    print(file=out)


def _lag_rows(T):
    ks = sorted({k for k in (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, T) if k <= T})
    return ks


def _regime(sigma, gamma=1.0):
    r = gamma * sigma
    return "contractive" if r < 1 - 1e-12 else ("critical" if r <= 1 + 1e-12 else "expansive")


def run(args) -> int:
    cells, sigmas = _cells(args.cells), _floats("--sigma", args.sigma)
    if args.T < 2 or args.hidden < 1 or args.train_steps < 1:
        print("bpttcheck diagnose: expected -T >= 2, --hidden >= 1 and --train-steps >= 1", file=sys.stderr)
        return 2
    out = sys.stdout
    target = _target(args)
    if target is not None:
        cells = [target[1]]
    curves = {(c, s): lag_curves(c, s, args.T, args.hidden, args.seed) for s in sigmas for c in cells}
    mine = {s: _target_norms(target, s, args) for s in sigmas} if target is not None else {}
    for s in sigmas:
        header = ["lag k"] + [NAMES[c] for c in cells] + (["yours"] if mine else []) + ["(γσ)^k"]
        rows = [[k] + [curves[c, s].norms[k] for c in cells] + ([mine[s][k]] if mine else []) + [s**k]
                for k in _lag_rows(args.T)]
        _table(f"‖∂h_T/∂h_(T-k)‖₂, σ_max(W_hh) = {s:g} ({_regime(s)} for the tanh RNN), T = {args.T}, H = {args.hidden}", header, rows, out)
        if mine:
            print(_agreement(target[2], curves[cells[0], s].norms, mine[s]), file=out)
            print(file=out)
    for s in sigmas:
        rows = [[k] + [curves[c, s].lag_shares[k] for c in cells] for k in _lag_rows(args.T - 2)]
        _table(f"‖lag-k share of ∂L/∂W_hh‖_F, σ_max(W_hh) = {s:g}{' (the reference)' if mine else ''}",
               ["lag k"] + [NAMES[c] for c in cells], rows, out)
    hist = _train_small_model(cells[0], args, target)
    stats = history_statistics(hist)
    rows = [[name, st["norm"][0], st["norm"][-1], st["percentiles"][-1][1], st["percentiles"][-1][3],
             st["percentiles"][-1][5], st["fraction_zero"][-1], st["spread"]] for name, st in stats.items()]
    who = f"your {target[2]} ({NAMES[cells[0]]})" if target is not None else f"a small {NAMES[cells[0]]}"
    _table(f"gradient statistics of {who} over {args.train_steps} SGD steps "
           f"(loss {hist.losses[0]:.3g} → {hist.losses[-1]:.3g})",
           ["parameter", "norm[0]", "norm[-1]", "p5[-1]", "p50[-1]", "p95[-1]", "zero[-1]", "max/min"], rows, out)
    if args.out is None:
        print("pictures: pass --out DIR to draw them (needs matplotlib: pip install 'bpttcheck[plot]')", file=out)
        return 0
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: never open a window
        import matplotlib.pyplot as plt
    except ImportError:
        print("pictures skipped: matplotlib is not installed; pip install 'bpttcheck[plot]'", file=out)
        return 0
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    written = _draw_all(plt, curves, cells, sigmas, hist, _activation_example(cells[0], hist, args, target), args,
                        formats, mine, None if target is None else target[2])
    for path in written:
        print(f"wrote {path}", file=out)
    return 0


def _sine_task(T, B, seed):
    """Next-value prediction on noisy sines of random phase and frequency: x (T,B,1), target (T,B,1)."""
    rng = np.random.default_rng(seed)
    t = np.arange(T + 1)[:, None]
    w = rng.uniform(0.2, 0.6, B)[None, :]
    phase = rng.uniform(0, 2 * np.pi, B)[None, :]
    s = np.sin(w * t + phase) + 0.05 * rng.standard_normal((T + 1, B))
    return s[:-1, :, None], s[1:, :, None]


def _train_small_model(cell, args, target=None):
    config = RecurrentConfig(cell, 1, 16)
    params = init_params(config, np.random.default_rng(args.seed))
    x, y = _sine_task(min(args.T, 40), 16, args.seed)
    rng = np.random.default_rng(args.seed + 2)
    readout = {"weight_hy": rng.uniform(-0.25, 0.25, (1, 16)), "bias_y": np.zeros(1)}
    if target is not None:
        return train_target(target[0], config, params, readout, x, y, lr=0.2, steps=args.train_steps)
    return train_sgd(config, params, x, y, loss=LossSpec("mse", reduction="mean"), readout=readout,
                     lr=0.2, steps=args.train_steps)


def _activation_example(cell, hist, args, target=None):
    """The trained small model's hidden states (T, 16) over one fresh sine sequence, and its input."""
    x, _ = _sine_task(min(args.T, 80), 1, args.seed + 7)
    config = RecurrentConfig(cell, 1, 16)
    if target is not None:
        return x[:, 0, 0], target_activations(target[0], config, hist.params, x)
    h = forward(config, hist.params, x).output[:, 0, :]
    return x[:, 0, 0], h


def _target(args):
    """``(class, cell, spec)`` for ``--target``, or None; a bad target is a usage error (exit 2)."""
    spec = getattr(args, "target", None)
    if spec is None:
        if getattr(args, "kind", None):
            raise SystemExit("bpttcheck diagnose: --kind needs --target")
        return None
    try:
        return resolve_module_target(spec, getattr(args, "kind", None))
    except (TargetError, ImportError) as exc:
        raise SystemExit(f"bpttcheck diagnose: {exc}") from None


def _target_norms(target, sigma, args):
    """The target's ‖∂h_T/∂h_(T-k)‖₂ with the weights and inputs of :func:`lag_curves`."""
    config, params, x, _ = _lag_case(target[1], sigma, args.T, args.hidden, args.seed)
    return target_lag_norms(target[0], config, params, x).norms


#: relative difference above which the target's lag curve is said to leave the reference's
AGREE = 1e-6


def _agreement(name, reference, yours) -> str:
    """One line: the target's curve agrees with the reference's, or from which lag it leaves it."""
    ref, got = np.asarray(reference), np.asarray(yours)
    live = ref > 1e-250  # below, both are underflow noise
    rel = np.where(live, np.abs(got - ref) / np.where(live, ref, 1.0), 0.0)
    if np.all(rel <= AGREE):
        return (f"  {name} agrees with the reference at every lag (worst relative difference {rel.max():.1e}): "
                "its gradient flows back in time as the reference's does")
    k = int(np.argmax(rel > AGREE))
    return (f"  {name} differs from the reference from lag {k} on: ‖∂h_T/∂h_(T-{k})‖₂ = {got[k]:.6g}, the reference "
            f"{ref[k]:.6g} (relative {rel[k]:.1e}; worst {rel.max():.1e} at lag {int(np.argmax(rel))}) — its "
            "gradient does not travel back in time as the cell's equations say (bpttcheck verify finds the case)")


# ---------------------------------------------------------------- pictures (matplotlib passed in)


def _save(plt, fig, out_dir, stem, formats):
    import os

    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for fmt in formats:
        path = os.path.join(out_dir, f"{stem}.{fmt}")
        fig.savefig(path, dpi=130, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def _draw_all(plt, curves, cells, sigmas, hist, activation, args, formats, mine=None, name=None):
    written = []
    written += _save(plt, _lag_figure(plt, curves, cells, sigmas, args, mine, name), args.out, "lag_norms", formats)
    written += _save(plt, _share_figure(plt, curves, cells, sigmas, args), args.out, "lag_contributions", formats)
    written += _save(plt, _histogram_figure(plt, hist, cells[0]), args.out, "gradient_histograms", formats)
    written += _save(plt, _activation_figure(plt, *activation, cells[0]), args.out, "activations", formats)
    return written


def _lag_figure(plt, curves, cells, sigmas, args, mine=None, name=None):
    fig, axes = plt.subplots(1, len(sigmas), figsize=(4.6 * len(sigmas), 4.2), squeeze=False)
    lags = np.arange(args.T + 1)
    floor = 1e-300
    for ax, s in zip(axes[0], sigmas):
        for c in cells:
            cv = curves[c, s]
            ax.semilogy(lags, np.maximum(cv.norms, floor), color=COLORS[c], lw=2, label=f"{NAMES[c]}: ‖∂h_T/∂h_(T−k)‖₂")
            ax.semilogy(lags, np.maximum(cv.product_bound, floor), color=COLORS[c], lw=1, ls=":",
                        label=f"{NAMES[c]}: Π‖J_j‖₂ bound")
        if mine:
            ax.semilogy(lags, np.maximum(mine[s], floor), color="crimson", lw=1.5, ls="--", marker=".", ms=3,
                        label=f"yours ({name}): ‖∂h_T/∂h_(T−k)‖₂")
        if "rnn" in cells:
            ax.semilogy(lags, np.maximum(s ** lags.astype(float), floor), color="black", lw=1.5, ls="--",
                        label="(γ·σ_max)^k bound, tanh RNN")
        ax.set_title(f"σ_max(W_hh) = {s:g}  ({_regime(s)})")
        ax.set_xlabel("lag k = t − s (steps back in time)")
        ax.grid(True, which="major", alpha=0.3)
        lo = min(np.min(np.maximum(curves[c, s].norms, 1e-40)) for c in cells)
        if mine:
            lo = min(lo, float(np.min(np.maximum(mine[s], 1e-40))))
        hi = max(np.max(curves[c, s].product_bound) for c in cells)
        if "rnn" in cells:
            hi = max(hi, s ** args.T)
        ax.set_ylim(max(lo / 10, 1e-40), min(hi * 10, 1e40))  # each panel its own range: they differ by 10^30
    axes[0][0].set_ylabel("Jacobian norm ‖∂h_t/∂h_s‖₂ (log scale)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, -0.08 - 0.04 * (len(labels) > 4)))
    fig.suptitle(f"Vanishing and exploding gradients: H = {args.hidden}, T = {args.T}, random inputs")
    fig.tight_layout()
    return fig


def _share_figure(plt, curves, cells, sigmas, args):
    fig, axes = plt.subplots(1, len(sigmas), figsize=(4.6 * len(sigmas), 4.0), squeeze=False)
    lags = np.arange(args.T - 1)  # lag T−1 would use W_hh on h0 = 0: exactly zero, not drawn
    for ax, s in zip(axes[0], sigmas):
        for c in cells:
            ax.semilogy(lags, np.maximum(curves[c, s].lag_shares[:-1], 1e-300), color=COLORS[c], lw=2, label=NAMES[c])
        ax.set_title(f"σ_max(W_hh) = {s:g}  ({_regime(s)})")
        ax.set_xlabel("lag k = t − s")
        ax.grid(True, alpha=0.3)
        lo = min(np.min(np.maximum(curves[c, s].lag_shares[:-1], 1e-40)) for c in cells)
        hi = max(np.max(curves[c, s].lag_shares) for c in cells)
        ax.set_ylim(max(lo / 10, 1e-40), hi * 10)
    axes[0][0].set_ylabel("‖lag-k share of ∂L/∂W_hh‖_F")
    axes[0][0].legend(fontsize=9)
    fig.suptitle("Where ∂L/∂W_hh comes from: Σ_t C[t, t−k] for each lag k (loss at every step)")
    fig.tight_layout()
    return fig


def _histogram_figure(plt, hist, cell):
    names = [n for n in ("weight_ih_l0", "weight_hh_l0", "bias_hh_l0", "weight_hy") if n in hist.grads[0]]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), squeeze=False, layout="constrained")
    cmap = plt.get_cmap("coolwarm")
    steps = len(hist.grads)
    for ax, name in zip(axes.ravel(), names):
        values = np.array([np.ravel(g[name]) for g in hist.grads])
        lim = np.percentile(np.abs(values), 99.5) or 1.0
        bins = np.linspace(-lim, lim, int(np.clip(values.shape[1] // 2, 9, 41)))  # ~2 entries a bin at least
        for i in range(steps):
            counts, edges = np.histogram(np.clip(values[i], -lim, lim), bins=bins)
            centers = 0.5 * (edges[1:] + edges[:-1])
            ax.plot(centers, counts, color=cmap(i / max(steps - 1, 1)), lw=1.2, alpha=0.85)
        ax.set_title(name)
        ax.set_xlabel("gradient value")
        ax.set_ylabel("count (entries per bin)")
        ax.grid(True, alpha=0.3)
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, steps - 1))
    fig.colorbar(sm, ax=axes.ravel().tolist(), label="SGD step (cool = early, warm = late)")
    fig.suptitle(f"Gradient histograms over training: {NAMES[cell]}, H = 16, next-value prediction of sines "
                 f"(loss {hist.losses[0]:.3g} → {hist.losses[-1]:.3g})")
    return fig


def _activation_figure(plt, signal, hidden, cell):
    fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True, gridspec_kw={"height_ratios": [1, 3]},
                                   layout="constrained")
    T = len(signal)
    ax0.plot(np.arange(T), signal, color="black", lw=1.5)
    ax0.set_ylabel("input x_t")
    ax0.grid(True, alpha=0.3)
    vmax = float(np.max(np.abs(hidden))) or 1.0
    im = ax1.imshow(hidden.T, aspect="auto", cmap="coolwarm", vmin=-vmax, vmax=vmax, interpolation="nearest",
                    extent=(-0.5, T - 0.5, hidden.shape[1] - 0.5, -0.5))
    ax1.set_xlabel("time step t")
    ax1.set_ylabel("hidden unit")
    fig.colorbar(im, ax=[ax0, ax1], label="activation h_t (blue = low, red = high)")
    fig.suptitle(f"Hidden-unit activations of the trained {NAMES[cell]} over an input sequence")
    return fig
