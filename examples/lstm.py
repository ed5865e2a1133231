"""A small hand-written LSTM: a drop-in for ``torch.nn.LSTM`` that the oracle verifies.

It takes torch's constructor arguments and parameter names (``weight_ih_l0``, ``weight_hh_l0``,
``bias_ih_l0``, ``bias_hh_l0``, ``..._reverse``) and ``forward(input, hx=None) ->
(output, (h_n, c_n))``. It supports stacks, ``bias=False``, ``batch_first`` and bidirectional
layers; it declines ``proj_size``, ``dropout``, ``PackedSequence`` and unbatched (T, D) input by raising
``NotImplementedError``, which the oracle reports as "unsupported" rather than as a failure.

    bpttcheck verify --target examples.lstm:LSTM --kind module --device cpu

torch is required (this is a user's torch module, not part of the oracle).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["LSTM"]


class LSTM(nn.Module):
    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        if dropout:
            raise NotImplementedError("dropout is not implemented")
        if proj_size:
            raise NotImplementedError("proj_size is not implemented")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.bidirectional = bias, batch_first, bidirectional
        self.suffixes = ("", "_reverse") if bidirectional else ("",)
        bound = 1.0 / math.sqrt(hidden_size)  # torch's default initialisation range
        for layer in range(num_layers):
            width = input_size if layer == 0 else hidden_size * len(self.suffixes)
            for sfx in self.suffixes:
                shapes = {"weight_ih": (4 * hidden_size, width), "weight_hh": (4 * hidden_size, hidden_size)}
                if bias:
                    shapes.update(bias_ih=(4 * hidden_size,), bias_hh=(4 * hidden_size,))
                for name, shape in shapes.items():
                    value = torch.empty(shape, device=device, dtype=dtype).uniform_(-bound, bound)
                    self.register_parameter(f"{name}_l{layer}{sfx}", nn.Parameter(value))

    def cell(self, x_t, h, c, w_ih, w_hh, b_ih, b_hh):
        """One step. x_t (B, D), h and c (B, H) -> h, c (B, H); gate blocks in torch's order i, f, g, o."""
        gates = x_t @ w_ih.T + h @ w_hh.T
        if b_ih is not None:
            gates = gates + b_ih + b_hh
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c

    def _run(self, x, h, c, layer, sfx):
        """x (T, B, D) in the direction's own order -> outputs (T, B, H), h_T, c_T."""
        weights = [getattr(self, f"{n}_l{layer}{sfx}", None) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        outputs = []
        for t in range(x.shape[0]):
            h, c = self.cell(x[t], h, c, *weights)
            outputs.append(h)
        return torch.stack(outputs), h, c

    def forward(self, input, hx=None):
        """input (T, B, D) or (B, T, D) with batch_first; hx = (h0, c0), each (layers·dirs, B, H)."""
        if isinstance(input, nn.utils.rnn.PackedSequence):
            raise NotImplementedError("PackedSequence input is not implemented")
        if input.dim() == 2:
            raise NotImplementedError("unbatched (T, D) input is not implemented")
        x = input.transpose(0, 1) if self.batch_first else input
        dirs = len(self.suffixes)
        if hx is None:
            zeros = x.new_zeros(self.num_layers * dirs, x.shape[1], self.hidden_size)
            hx = (zeros, zeros)
        h0, c0 = hx
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for d, sfx in enumerate(self.suffixes):
                k = layer * dirs + d  # torch's layout of h0/h_n: layer-major, then direction
                seq = x if d == 0 else x.flip(0)
                y, h, c = self._run(seq, h0[k], c0[k], layer, sfx)
                outs.append(y if d == 0 else y.flip(0))
                h_n.append(h)
                c_n.append(c)
            x = torch.cat(outs, dim=-1)
        output = x.transpose(0, 1) if self.batch_first else x
        return output, (torch.stack(h_n), torch.stack(c_n))
