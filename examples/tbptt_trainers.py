"""Truncated-BPTT trainers as bpttcheck ``tbptt`` targets (subsequence scheme).

A trainer steps its optimizer after every chunk, so on its own it never holds "the" truncated
gradient. Three pieces make it checkable without changing the trainer:

- :class:`RecordingOptimizer` — an optimizer whose ``step()`` adds each parameter's ``.grad``
  to a running sum and leaves the parameters as they are (held fixed, as the subsequence
  scheme assumes); ``zero_grad()`` is the usual one, so each chunk's gradient is recorded once;
- :class:`FirstState` — ``model(x) -> module(x, hx)``: the trainer calls the model without a
  state for the first chunk (ignite does), and the wrapper feeds the oracle's initial state;
- the loss ``Σ output·cotangent`` (``loss_fn(y_pred, y) = (y_pred * y).sum()`` with the
  cotangent as the target ``y``), whose gradient is what the oracle's pair-sum computes.

Then the sum over chunks is exactly the subsequence scheme (SPEC §3, §10). Verify:

    bpttcheck verify --target examples.tbptt_trainers:ignite_tbptt --kind tbptt --device cpu -k subsequence
    bpttcheck verify --target examples.tbptt_trainers:manual_tbptt --kind tbptt --device cpu -k subsequence

Other schemes are declined (``NotImplementedError`` -> unsupported): a trainer that detaches
every k steps computes the subsequence scheme only.
"""

from __future__ import annotations

import torch

__all__ = ["FirstState", "ManualTBPTT", "RecordingOptimizer", "cotangent_loss", "fresh_leaves", "ignite_tbptt", "manual_tbptt",
           "recorded_gradients"]


class RecordingOptimizer(torch.optim.Optimizer):
    """Records the sum of every ``step()``'s gradients in ``recorded[name]``; never moves a parameter."""

    def __init__(self, named_parameters):
        named = list(named_parameters)
        super().__init__([p for _, p in named], {})
        self.names = {id(p): n for n, p in named}
        self.recorded = {n: torch.zeros_like(p) for n, p in named}

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self.recorded[self.names[id(p)]] += p.grad


class FirstState(torch.nn.Module):
    """``model(x)`` runs ``module(x, hx)``; ``model(x, state)`` runs ``module(x, state)``."""

    def __init__(self, module, hx):
        super().__init__()
        self.module, self.hx = module, hx

    def forward(self, x, hx=None):
        return self.module(x, self.hx if hx is None else hx)


def fresh_leaves(x, hx):
    """x and the initial state as fresh leaves, so their gradients accumulate over the chunks."""
    x = x.detach().requires_grad_(True)
    if isinstance(hx, tuple):
        return x, tuple(h.detach().requires_grad_(True) for h in hx)
    return x, hx.detach().requires_grad_(True)


def recorded_gradients(opt, x, hx) -> dict:
    out = {n: g.clone() for n, g in opt.recorded.items()}
    states = hx if isinstance(hx, tuple) else (hx,)
    for key, t in zip(("input", "h0", "c0"), (x, *states)):
        out[key] = torch.zeros_like(t) if t.grad is None else t.grad
    return out


def _subsequence_only(scheme):
    if scheme != "subsequence":
        raise NotImplementedError(f"scheme {scheme!r}: a trainer that detaches every k steps computes the "
                                  "subsequence scheme only")


def cotangent_loss(y_pred, y):
    """``Σ output·cotangent``: the loss whose gradient the oracle's pair-sum gives."""
    return (y_pred * y).sum()


def ignite_tbptt(module, x, hx, cotangent, k, scheme):
    """pytorch-ignite's ``create_supervised_tbptt_trainer`` over one batch, checked as is."""
    from ignite.contrib.engines import create_supervised_tbptt_trainer

    _subsequence_only(scheme)
    x, hx = fresh_leaves(x, hx)
    opt = RecordingOptimizer(module.named_parameters())
    trainer = create_supervised_tbptt_trainer(FirstState(module, hx), opt, cotangent_loss, tbtt_step=k, dim=0)
    trainer.run([(x, cotangent)], max_epochs=1)
    return recorded_gradients(opt, x, hx)


class ManualTBPTT:
    """The shape of a Lightning module with ``automatic_optimization = False`` and the loop of
    Lightning's TBPTT guide: split the batch along time, and per chunk forward, backward
    (``self.manual_backward(loss)`` in Lightning), ``step()``, ``zero_grad()``, detach."""

    def __init__(self, module, optimizer, k, first_state=None):
        self.module, self.optimizer, self.k, self.first_state = module, optimizer, k, first_state

    def training_step(self, batch):
        x, y = batch
        # Lightning's guide steps then zeroes, so whatever .grad held before the batch would be
        # added to the first chunk's gradient (the oracle poisons .grad with NaN to catch that)
        self.optimizer.zero_grad()
        hiddens = self.first_state
        for x_t, y_t in zip(x.split(self.k), y.split(self.k)):
            out, hiddens = self.module(x_t, hiddens)
            loss = cotangent_loss(out, y_t)
            loss.backward()
            self.optimizer.step()
            self.optimizer.zero_grad()
            hiddens = tuple(h.detach() for h in hiddens) if isinstance(hiddens, tuple) else hiddens.detach()


def manual_tbptt(module, x, hx, cotangent, k, scheme):
    """The Lightning-style manual loop (:class:`ManualTBPTT`) over one batch."""
    _subsequence_only(scheme)
    x, hx = fresh_leaves(x, hx)
    opt = RecordingOptimizer(module.named_parameters())
    ManualTBPTT(module, opt, k, first_state=hx).training_step((x, cotangent))
    return recorded_gradients(opt, x, hx)
