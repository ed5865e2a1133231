"""Drop-ins for torch.nn.RNN / LSTM / GRU with bugs that live in the wider case space, or that
follow a neighbouring convention the oracle diagnoses (issue 12 items 3, 4 and 6).

``make_module(cell, bug=None)`` returns a class constructed and called like torch's layer: every
input form torch accepts (batched, ``batch_first``, unbatched (T, D) with (L·dirs, H) states,
PackedSequence sorted or not, hx given or not). Written from the equations with torch ops, so
autograd gives the gradients; with ``bug=None`` it agrees with torch.

torch is imported when this module is: import it only after ``pytest.importorskip("torch")``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

__all__ = ["BUGS", "DIAGNOSED", "make_module"]

#: bug -> (cells it applies to, what it is, where it shows)
BUGS = {
    # conventions the oracle names (diagnoses)
    "gate_order_fiog": ("lstm", "reads its blocks as f, i, g, o (a permutation of torch's i, f, g, o)"),
    "gate_order_zrn": ("gru", "reads its blocks as z, r, n (Keras' GRU kernel order)"),
    "gru_reset_before": ("gru", "applies r to h before the matmul (Keras reset_after=False, the 2014 paper)"),
    "forget_bias_plus_one": ("lstm", "adds 1 to the forget gate's pre-activation (haiku's convention)"),
    "detach_h": ("rnn gru lstm", "detaches h between steps (h0 too): every gradient through time is cut"),
    "detach_c": ("lstm", "detaches c between steps"),
    "float32_matmul": ("rnn gru lstm", "computes its matmuls in float32 inside a float64 layer"),
    "h_n_one_step_early": ("rnn gru lstm", "returns the state one step before each sequence's end as h_n"),
    "h_n_from_output": ("rnn gru lstm", "returns output[-1] split per direction as the last layer's h_n "
                                        "(the reverse direction's first step)"),
    "h_n_directions_swapped": ("rnn gru lstm", "stacks h_n with the two directions swapped"),
    # bugs that live only in the wider space (no diagnosis: caught by the coverage phases)
    "deep_input_from_first_layer": ("rnn gru lstm", "layer k >= 2 takes layer 0's output instead of layer "
                                                    "k-1's: invisible with fewer than 3 layers"),
    "unbatched_drops_hx": ("rnn gru lstm", "unbatched (T, D) input runs from a zero state, ignoring hx"),
    "unsorted_h_n_in_sorted_order": ("rnn gru lstm", "for a PackedSequence, h_n is returned in the packed "
                                                     "(longest first) order: invisible with sorted lengths"),
    "tanh_by_exp": ("rnn gru lstm", "tanh as (e^2a - 1)/(e^2a + 1): NaN once e^2a overflows (|a| > 355, "
                                    "inputs ~1e3)"),
    "clamp_preactivation_10": ("rnn gru lstm", "clamps every pre-activation to [-10, 10] before its "
                                               "nonlinearity: invisible unless |a| > 10"),
    "detach_every_64": ("rnn gru lstm", "detaches the state every 64 steps (chunked processing): invisible "
                                        "for T <= 64"),
}

#: bug -> a fragment of the diagnosis the oracle must give
DIAGNOSED = {
    "gate_order_fiog": "order (f, i, g, o)",
    "gate_order_zrn": "Keras' GRU kernel order",
    "gru_reset_before": "reset_after=False",
    "forget_bias_plus_one": "+1 offset on the forget gate",
    "detach_h": "h detached between steps (no gradient",
    "detach_c": "c detached between steps",
    "float32_matmul": "computes in float32 inside a float64 model",
    "h_n_one_step_early": "one step before each sequence's end",
    "h_n_from_output": "output at the last time index",
    "h_n_directions_swapped": "directions swapped",
}


def _tanh(a, bug):
    if bug == "tanh_by_exp":
        e = torch.exp(2 * a)
        return (e - 1) / (e + 1)
    return torch.tanh(a)


class _Layer(nn.Module):
    mode = "rnn"
    bug = None

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        if dropout:
            raise NotImplementedError("dropout")
        self.hidden_size, self.num_layers, self.nonlinearity = hidden_size, num_layers, nonlinearity
        self.bias, self.batch_first, self.bidirectional, self.proj_size = bias, batch_first, bidirectional, proj_size
        G = {"rnn": 1, "lstm": 4, "gru": 3}[self.mode] * hidden_size
        dirs, P = 2 if bidirectional else 1, proj_size or hidden_size
        k = 1 / math.sqrt(hidden_size)
        for layer in range(num_layers):
            for d in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                shapes = [("weight_ih", (G, input_size if layer == 0 else dirs * P)), ("weight_hh", (G, P))]
                shapes += [("bias_ih", (G,)), ("bias_hh", (G,))] if bias else []
                shapes += [("weight_hr", (P, hidden_size))] if proj_size else []
                for name, shape in shapes:
                    self.register_parameter(name + sfx, nn.Parameter(
                        torch.empty(shape, device=device, dtype=dtype).uniform_(-k, k)))

    def _mm(self, a, w):
        if self.bug == "float32_matmul" and a.dtype == torch.float64:
            return (a.float() @ w.float().T).double()
        return a @ w.T

    def _act(self, a, kind):
        if self.bug == "clamp_preactivation_10":
            a = a.clamp(-10, 10)
        if kind == "sigmoid":
            return torch.sigmoid(a)
        if kind == "relu":
            return torch.relu(a)
        return _tanh(a, self.bug)

    def _step(self, x, h, c, p):
        H = self.hidden_size
        gi, gh = self._mm(x, p["weight_ih"]), self._mm(h, p["weight_hh"])
        if self.bias:
            gi, gh = gi + p["bias_ih"], gh + p["bias_hh"]
        if self.mode == "rnn":
            return self._act(gi + gh, self.nonlinearity), None
        if self.mode == "gru":
            blocks = (1, 0, 2) if self.bug == "gate_order_zrn" else (0, 1, 2)
            part = lambda a, k: a[..., blocks[k] * H:(blocks[k] + 1) * H]  # noqa: E731
            r = self._act(part(gi, 0) + part(gh, 0), "sigmoid")
            z = self._act(part(gi, 1) + part(gh, 1), "sigmoid")
            if self.bug == "gru_reset_before":
                hn = self._mm(r * h, p["weight_hh"][2 * H:]) + (p["bias_hh"][2 * H:] if self.bias else 0)
                n = self._act(part(gi, 2) + hn, "tanh")
            else:
                n = self._act(part(gi, 2) + r * part(gh, 2), "tanh")
            return (1 - z) * n + z * h, None
        a = gi + gh
        blocks = (1, 0, 2, 3) if self.bug == "gate_order_fiog" else (0, 1, 2, 3)
        i, f, g, o = (a[..., k * H:(k + 1) * H] for k in blocks)
        if self.bug == "forget_bias_plus_one":
            f = f + 1
        c = self._act(f, "sigmoid") * c + self._act(i, "sigmoid") * self._act(g, "tanh")
        h = self._act(o, "sigmoid") * _tanh(c, self.bug)
        return (h @ p["weight_hr"].T if self.proj_size else h), c

    def _direction(self, x, h, c, p, mask):
        ys, hs = [], [h]
        for t in range(x.shape[0]):
            if self.bug == "detach_h" or (self.bug == "detach_every_64" and t and t % 64 == 0):
                h = h.detach()
                if c is not None and self.bug == "detach_every_64":
                    c = c.detach()
            if self.bug == "detach_c" and c is not None:
                c = c.detach()
            hn, cn = self._step(x[t], h, c, p)
            ys.append(torch.where(mask[t], hn, torch.zeros_like(hn)))
            h = torch.where(mask[t], hn, h)
            c = None if c is None else torch.where(mask[t], cn, c)
            hs.append(h)
        return torch.stack(ys), h, c, hs

    def forward(self, input, hx=None):
        packed, unbatched = isinstance(input, PackedSequence), False
        if packed:
            x, lengths = pad_packed_sequence(input)
            lengths = lengths.to(x.device)
        else:
            unbatched = input.dim() == 2
            x = input.unsqueeze(1) if unbatched else (input.transpose(0, 1) if self.batch_first else input)
            lengths = torch.full((x.shape[1],), x.shape[0], device=x.device)
        h0, c0 = (hx if isinstance(hx, tuple) else (hx, None)) if hx is not None else (None, None)
        if unbatched:
            h0 = None if h0 is None or self.bug == "unbatched_drops_hx" else h0.unsqueeze(1)
            c0 = None if c0 is None or self.bug == "unbatched_drops_hx" else c0.unsqueeze(1)
        T, B = x.shape[:2]
        dirs = 2 if self.bidirectional else 1
        P, H = self.proj_size or self.hidden_size, self.hidden_size
        h0 = x.new_zeros(self.num_layers * dirs, B, P) if h0 is None else h0
        if self.mode == "lstm" and c0 is None:
            c0 = x.new_zeros(self.num_layers * dirs, B, H)
        t = torch.arange(T, device=x.device)[:, None]
        mask = (t < lengths[None, :])[..., None]
        rev = torch.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)
        gather = lambda a: torch.gather(a, 0, rev[..., None].expand_as(a))  # noqa: E731 (an involution)
        inp, first, h_n, c_n = x, None, [], []
        for layer in range(self.num_layers):
            outs = []
            src = first if self.bug == "deep_input_from_first_layer" and layer >= 2 else inp
            for d in range(dirs):
                k = layer * dirs + d
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                p = {n: getattr(self, n + sfx, None) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")}
                y, hT, cT, hs = self._direction(src if d == 0 else gather(src), h0[k], None if c0 is None else c0[k],
                                                p, mask)
                if self.bug == "h_n_one_step_early":
                    hT = torch.stack(hs)[(lengths - 1).clamp(min=0), torch.arange(B)]
                outs.append(y if d == 0 else gather(y))
                h_n.append(hT)
                c_n.append(cT)
            inp = torch.cat(outs, dim=-1)
            first = inp if layer == 0 else first
        h_n = torch.stack(h_n)
        if self.bug == "h_n_from_output" and self.bidirectional:
            last = inp[-1]  # (B, 2P): the reverse half is the reverse direction's first step
            h_n = torch.cat([h_n[:-2], torch.stack([last[:, :P], last[:, P:]])])
        if self.bug == "h_n_directions_swapped" and self.bidirectional:
            h_n = h_n.reshape(self.num_layers, 2, B, P).flip(1).reshape(-1, B, P)
        c_n = torch.stack(c_n) if self.mode == "lstm" else None
        out = inp
        if packed:
            if self.bug == "unsorted_h_n_in_sorted_order" and input.sorted_indices is not None:
                h_n = h_n[:, input.sorted_indices]
                c_n = None if c_n is None else c_n[:, input.sorted_indices]
            out = pack_padded_sequence(out, lengths.cpu(), enforce_sorted=False)
        elif unbatched:
            out, h_n, c_n = out[:, 0], h_n[:, 0], None if c_n is None else c_n[:, 0]
        elif self.batch_first:
            out = out.transpose(0, 1)
        return (out, (h_n, c_n)) if self.mode == "lstm" else (out, h_n)


def make_module(cell: str, bug: str | None = None) -> type:
    """A drop-in for ``torch.nn.{RNN,LSTM,GRU}`` (``cell`` rnn/lstm/gru) with ``bug`` planted."""
    if bug is not None and (bug not in BUGS or cell not in BUGS[bug][0].split()):
        raise ValueError(f"bug={bug!r} for cell={cell!r}: expected None or one of "
                         f"{sorted(b for b, (cells, _) in BUGS.items() if cell in cells.split())}")
    name = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}[cell] + (f"[{bug}]" if bug else "")
    return type(name, (_Layer,), {"mode": cell, "bug": bug})
