"""``bpttcheck diagnose --target``: the vanishing/exploding-gradient measurements on a user's own
layer (a drop-in for ``torch.nn.RNN/LSTM/GRU``), next to the reference's with the same weights.

:func:`target_lag_norms` runs the target one step at a time from the weights the reference uses
(σ_max(W_hh) rescaled), adds a zero leaf z_s to each hidden state it carries, and takes
∂h_{T-1}/∂z_s = ∂h_{T-1}/∂h_s (every path, through c too) by one backward per hidden unit: the
target's own autograd, compared with the reference's hand-written chain. A curve that leaves the
reference's says at which lag the target's gradient flow differs — e.g. an LSTM whose c is
detached between steps keeps only the h path.

:func:`train_target` trains the target with plain SGD on the same next-value task as the
reference's histograms (torch autograd, the same start weights, a linear readout) and records
every gradient as a :class:`~bpttcheck.reference.profiles.TrainingHistory`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bpttcheck.reference.cells import TORCH_CELLS, cell_spec
from bpttcheck.reference.config import RecurrentConfig
from bpttcheck.reference.profiles import TrainingHistory
from bpttcheck.reference.validation import InvalidArgument

from .kinds import parse_kind
from .targets import TargetError, cell_of, is_torch_module_class, load_target
from ..torch_adapter import build_module, load_weights, require_torch

__all__ = ["TargetLag", "resolve_module_target", "target_activations", "target_lag_norms", "train_target"]


def resolve_module_target(spec: str, kind: str | None = None):
    """``(class, cell, name)`` for ``--target SPEC`` (``--kind module:lstm`` names the cell)."""
    obj = load_target(spec)
    require_torch()
    if not is_torch_module_class(obj):
        raise TargetError(f"target={spec!r}: diagnose takes a module target, a class constructed like "
                          "torch.nn.RNN/LSTM/GRU; got " + type(obj).__name__)
    named = ", ".join(f"module:{c}" for c in TORCH_CELLS)
    base, cell = parse_kind(kind) if kind else ("module", None)  # the kinds' one parser and its errors
    if base != "module" or (cell is not None and cell not in TORCH_CELLS):
        raise TargetError(f"kind={kind!r}: diagnose takes --kind {named}")
    cell = cell or cell_of(obj)
    if cell is None:
        raise TargetError(f"target={spec!r}: cannot tell the cell from the name {obj.__name__!r}; "
                          f"say it with --kind ({named})")
    return obj, cell, spec


@dataclass(frozen=True)
class TargetLag:
    """norms (T+1,): ‖∂h_{T-1}/∂h_{T-1-k}‖₂ of the target for k = 0 … T (k = T: the initial state)."""

    norms: np.ndarray


def _loaded(cls, config: RecurrentConfig, params: dict):
    """The target built for one-layer ``config`` in float64, holding ``params``."""
    module = build_module(cls, config, dtype="float64")
    load_weights(module, params)
    return module


def target_lag_norms(cls, config: RecurrentConfig, params: dict, x: np.ndarray) -> TargetLag:
    """The target's ‖∂h_{T-1}/∂h_s‖₂ for every s, through its own autograd, with ``params``
    (torch's names, one layer) loaded into it and ``x`` (T, 1, D)."""
    torch = require_torch()
    if config.num_layers != 1 or x.ndim != 3 or x.shape[1] != 1:
        raise InvalidArgument(f"config.num_layers={config.num_layers}, x.shape={x.shape}: expected one layer "
                              "and x of shape (T, 1, D)")
    module = _loaded(cls, config, params)
    T, H = x.shape[0], config.hidden_size
    carries_c = cell_spec(config.cell).has_cell_state
    xt = torch.as_tensor(x, dtype=torch.float64)
    zs = [torch.zeros(1, 1, H, dtype=torch.float64, requires_grad=True) for _ in range(T + 1)]
    h = torch.zeros(1, 1, H, dtype=torch.float64) + zs[0]  # z_0 perturbs h_{-1} = h0
    c = torch.zeros(1, 1, H, dtype=torch.float64) if carries_c else None
    for t in range(T):
        _, state = module(xt[t:t + 1], (h, c) if carries_c else h)
        h, c = state if carries_c else (state, None)
        h = h + zs[t + 1]  # z_{t+1} perturbs h_t
    jac = np.zeros((T + 1, H, H))
    for i in range(H):
        grads = torch.autograd.grad(h[0, 0, i], zs, retain_graph=i < H - 1, allow_unused=True)
        for s, g in enumerate(grads):
            if g is not None:
                jac[s, i] = g[0, 0].numpy()
    # jac[s] = ∂h_{T-1}/∂h_{s-1}; lag k = T-1-(s-1) = T-s
    norms = np.array([np.linalg.norm(jac[T - k], 2) for k in range(T + 1)])
    return TargetLag(norms)


def train_target(cls, config: RecurrentConfig, params: dict, readout: dict, x, target, *, lr: float,
                 steps: int) -> TrainingHistory:
    """Plain SGD on the target (torch autograd) with a linear readout and the mean squared error,
    from ``params``/``readout``; every gradient recorded before its step, like the reference's
    :func:`~bpttcheck.reference.profiles.train_sgd`."""
    torch = require_torch()
    module = _loaded(cls, config, params)
    named = dict(module.named_parameters())
    w = torch.tensor(readout["weight_hy"], dtype=torch.float64, requires_grad=True)
    b = torch.tensor(readout["bias_y"], dtype=torch.float64, requires_grad=True)
    xt, yt = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(target, dtype=torch.float64)
    losses, history = [], []
    leaves = [*named.values(), w, b]
    for _ in range(steps):
        out, _ = module(xt)
        loss = ((out @ w.T + b - yt) ** 2).mean()
        grads = torch.autograd.grad(loss, leaves)
        record = {n: g.detach().numpy().copy() for n, g in zip([*named, "weight_hy", "bias_y"], grads)}
        losses.append(float(loss.detach()))
        history.append(record)
        with torch.no_grad():
            for p, g in zip(leaves, grads):
                p -= lr * g
    final = {n: p.detach().numpy().copy() for n, p in named.items()}
    return TrainingHistory(np.array(losses), history, final,
                           {"weight_hy": w.detach().numpy().copy(), "bias_y": b.detach().numpy().copy()})


def target_activations(cls, config: RecurrentConfig, params: dict, x) -> np.ndarray:
    """The target's output (T, H) over ``x`` (T, 1, D) with ``params`` loaded."""
    torch = require_torch()
    module = _loaded(cls, config, params)
    with torch.no_grad():
        out, _ = module(torch.as_tensor(x, dtype=torch.float64))
    return out[:, 0, :].numpy()
