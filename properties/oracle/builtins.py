"""Correct torch implementations of the tbptt and randomized protocols, written the way users
write them; ``bpttcheck verify`` with no target checks them beside PyTorch's built-ins, and
the README uses them as worked examples of each protocol.

Both compute gradients with ``torch.autograd.grad`` (never through ``.grad``), for a seq-first,
unidirectional ``nn.RNN``/``nn.LSTM``/``nn.GRU`` (stacks allowed): keys are the module's
parameter names, "input", "h0" and, for an LSTM, "c0".
"""

from __future__ import annotations

from bpttcheck.reference import RecurrentConfig, backward, forward

__all__ = ["detach_loop_tbptt", "hook_randomized", "reference_numpy"]


def _split(hx):
    return (hx[0], hx[1]) if isinstance(hx, tuple) else (hx, None)


def _join(h, c):
    return h if c is None else (h, c)


def _grads(module, loss_terms, x, h0, c0):
    import torch

    names = [n for n, _ in module.named_parameters()]
    inputs = [p for _, p in module.named_parameters()] + [x, h0] + ([c0] if c0 is not None else [])
    total = [torch.zeros_like(t) for t in inputs]
    for loss in loss_terms:  # one backward per detached piece: exactly what the loop does
        got = torch.autograd.grad(loss, inputs, allow_unused=True)
        total = [a if g is None else a + g for a, g in zip(total, got)]
    out = dict(zip(names, total[: len(names)]))
    out["input"], out["h0"] = total[len(names)], total[len(names) + 1]
    if c0 is not None:
        out["c0"] = total[-1]
    return out


def _run(module, x, h, c, lo, hi):
    out, s = module(x[lo:hi], _join(h, c))
    h, c = _split(s)
    return out, h, c


def detach_loop_tbptt(module, x, hx, cotangent, k, scheme):
    """Truncated BPTT gradients of ``L = Σ output·cotangent`` (SPEC §3).

    ``"subsequence"``: detach the state every k steps. ``"k"``: each loss t back-propagates
    through its last k steps (f(t) = max(0, t-k+1)): the state entering its window is
    recomputed without a graph. ``"williams-peng"``, k = (h, h'): at each block end e inject the
    last h' losses and go back to the state entering step e-h+1.
    """
    import torch

    x = x.detach().requires_grad_(True)
    h0, c0 = (t.detach().requires_grad_(True) if t is not None else None for t in _split(hx))
    T = x.shape[0]

    def state_before(a):
        if a == 0:
            return h0, c0
        with torch.no_grad():
            _, h, c = _run(module, x, h0, c0, 0, a)
        return h, c

    terms = []
    if scheme == "subsequence":
        h, c = h0, c0
        for lo in range(0, T, k):
            if lo > 0:
                h, c = h.detach(), None if c is None else c.detach()
            out, h, c = _run(module, x, h, c, lo, min(lo + k, T))
            terms.append((out * cotangent[lo:lo + k]).sum())
    elif scheme == "k":
        for t in range(T):
            a = max(0, t - k + 1)
            out, _, _ = _run(module, x, *state_before(a), a, t + 1)
            terms.append((out[-1] * cotangent[t]).sum())
    elif scheme == "williams-peng":
        h_back, h_prime = k
        ends = list(range(h_prime - 1, T, h_prime))
        if not ends or ends[-1] != T - 1:
            ends.append(T - 1)
        for e in ends:
            a = max(0, e - h_back + 1)
            first = h_prime * (e // h_prime)  # the losses whose block ends at e
            out, _, _ = _run(module, x, *state_before(a), a, e + 1)
            terms.append((out[first - a:] * cotangent[first:e + 1]).sum())
    else:
        raise NotImplementedError(f"scheme {scheme!r}")
    return _grads(module, terms, x, h0, c0)


def hook_randomized(module, x, hx, cotangent, pis, rng):
    """One draw of randomized truncation (SPEC §4): for t = 0..T-1 in order, one
    ``rng.random()``; the link into step t is kept iff it is < pis[t], and the carried state's
    gradient is then multiplied by 1/pis[t] (else cut), in every layer."""
    import torch

    x = x.detach().requires_grad_(True)
    h0, c0 = (t.detach().requires_grad_(True) if t is not None else None for t in _split(hx))

    def scaled(a, xi):  # value unchanged exactly (a + 0), gradient multiplied by xi
        return None if a is None else a.detach() + (a - a.detach()) * xi

    h, c = h0, c0
    loss = x.new_zeros(())
    for t in range(x.shape[0]):
        xi = 1.0 / pis[t] if rng.random() < pis[t] else 0.0
        out, h, c = _run(module, x, scaled(h, xi), scaled(c, xi), t, t + 1)
        loss = loss + (out * cotangent[t:t + 1]).sum()
    return _grads(module, [loss], x, h0, c0)


def reference_numpy(config, params, x, h0, c0, d_output, d_h_n, d_c_n):
    """The NumPy reference itself in the numpy protocol (the README's worked example)."""
    cfg = RecurrentConfig(**config)
    result = forward(cfg, params, x, h0, c0)
    out = {"output": result.output, "h_n": result.h_n}
    if result.c_n is not None:
        out["c_n"] = result.c_n
    out.update(backward(params, result, d_output, d_h_n, d_c_n))
    return out
