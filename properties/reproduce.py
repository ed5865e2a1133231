"""Stand-alone reproducers: Python snippets that rebuild a failing case from its values."""

from __future__ import annotations

import numpy as np

from bpttcheck.reference.cells import cell_spec

__all__ = ["array_literal", "case_snippet", "torch_check_snippet"]


def array_literal(a) -> str:
    """``np.array([...], dtype=...)`` that round-trips ``a`` exactly (shortest repr floats)."""
    if a is None:
        return "None"
    a = np.asarray(a)
    body = repr(a.tolist())
    if a.dtype.kind in "iu":
        return f"np.array({body})"
    return f"np.array({body}, dtype=np.{a.dtype.name})"


def case_snippet(case, check: str = "") -> str:
    c = case.config
    lines = [
        "import numpy as np",
        "from bpttcheck.reference import RecurrentConfig, forward, backward",
        f"config = RecurrentConfig(cell={c.cell!r}, input_size={c.input_size}, hidden_size={c.hidden_size}, "
        f"num_layers={c.num_layers}, nonlinearity={c.nonlinearity!r}, bias={c.bias}, "
        f"bidirectional={c.bidirectional}, proj_size={c.proj_size})",
        "params = {",
    ]
    lines += [f"    {name!r}: {array_literal(v)}," for name, v in case.params.items()]
    lines.append("}")
    for name in ("x", "h0", "c0", "d_output", "d_h_n", "d_c_n"):
        lines.append(f"{name} = {array_literal(getattr(case, name))}")
    lengths = None if case.lengths is None else list(map(int, case.lengths))
    lines += [
        f"lengths = {lengths}",
        f"result = forward(config, params, x, h0, c0, lengths=lengths, batch_first={case.batch_first})",
        "grads = backward(params, result, d_output, d_h_n, d_c_n)",
    ]
    if check:
        lines.append(check.rstrip())
    return "\n".join(lines) + "\n"


def torch_check_snippet(case, device: str = "cpu") -> str:
    """The lines that run torch's built-in layer on the case and print each quantity's error."""
    c = case.config
    spec = cell_spec(c.cell)
    cls = spec.torch_module
    extra = f", nonlinearity={c.nonlinearity!r}" if spec.takes_nonlinearity else ""
    extra += f", proj_size={c.proj_size}" if c.proj_size else ""
    dt = f"torch.{case.dtype.name}"
    return f"""import torch
dev = {device!r}
m = torch.nn.{cls}({c.input_size}, {c.hidden_size}, num_layers={c.num_layers}, bias={c.bias}, batch_first={case.batch_first}, bidirectional={c.bidirectional}{extra}).to(dev, {dt})
with torch.no_grad():
    for n, p in m.named_parameters():
        p.copy_(torch.from_numpy(params[n]))
t = lambda a: None if a is None else torch.tensor(a, device=dev, requires_grad=True)
xt, h0t, c0t = t(x), t(h0), t(c0)
inp = xt if lengths is None else torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(lengths), batch_first={case.batch_first}, enforce_sorted=False)
hx = h0t if {not spec.has_cell_state} else (None if h0t is None else (h0t, c0t))
out, hn = m(inp, hx)
if lengths is not None:
    out = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first={case.batch_first}, total_length=x.shape[{1 if case.batch_first else 0}])[0]
hn, cn = hn if isinstance(hn, tuple) else (hn, None)
loss = (out * torch.tensor(d_output, device=dev)).sum() + (hn * torch.tensor(d_h_n, device=dev)).sum()
if cn is not None:
    loss = loss + (cn * torch.tensor(d_c_n, device=dev)).sum()
loss.backward()
print("output", abs(out.detach().cpu().numpy() - result.output).max())
for n, p in m.named_parameters():
    print(n, abs(p.grad.cpu().numpy() - grads[n]).max())
print("input", abs(xt.grad.cpu().numpy() - grads["input"]).max())
"""
