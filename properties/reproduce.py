"""Stand-alone reproducers: Python snippets that rebuild a failing case from its values."""

from __future__ import annotations

import numpy as np

from bpttcheck.reference.cells import cell_spec

__all__ = ["JUDGE_LINES", "array_literal", "case_snippet", "run_snippet", "torch_check_snippet"]


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
    """Lines that rebuild ``case`` (``config``, ``params``, the arrays, ``case`` itself) and its
    reference results ``result`` and ``grads`` (in the case's dtype); then ``check``."""
    c = case.config
    lines = [
        "import numpy as np",
        "from bpttcheck.reference import RecurrentConfig, forward, backward",
        "from bpttcheck.properties.strategies import Case",
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
        "case = Case(config=config, params=params, x=x, h0=h0, c0=c0, "
        "lengths=None if lengths is None else np.array(lengths), "
        f"batch_first={case.batch_first}, d_output=d_output, d_h_n=d_h_n, d_c_n=d_c_n, seed={int(case.seed)}"
        + "".join(f", {k}={getattr(case, k)!r}" for k in ("magnitude", "unbatched", "enforce_sorted")
                  if getattr(case, k, None) not in (None, False, "unit")) + ")",
    ]
    if check:
        lines.append(check.rstrip())
    return "\n".join(lines) + "\n"


#: The judging tail every printed reproducer ends with: print each quantity's worst error,
#: then fail (AssertionError with the oracle's report) if the bug is there.
JUDGE_LINES = """for c in comparisons:
    print(c.quantity.split()[0], c.worst_abs)
failed = [c for c in comparisons if not c.ok]
assert not failed, failed[0].message()"""


def run_snippet(target: str, case, *, kind: str = "module", device: str = "cpu", precision: str = "float64",
                imports: str = "") -> str:
    """The lines that run ``target`` (a Python expression naming the class; None for torch's
    own) through the torch adapter on ``case`` and assert it agrees with the reference."""
    head = (imports + "\n") if imports else ""
    return (f"""{head}from bpttcheck.properties.judge import compare_results
from bpttcheck.properties.torch_adapter import run_target
got = run_target({target}, case, kind={kind!r}, device={device!r}, precision={precision!r})
comparisons = compare_results(case, got, precision={precision!r}, raise_on_mismatch=False)
""" + JUDGE_LINES)


def _class_expression(cls, cell: str) -> tuple[str, str]:
    """(expression, import line) naming ``cls`` in a stand-alone snippet."""
    if cls is None:
        return f"torch.nn.{cell_spec(cell).torch_module}", "import torch"
    qual = getattr(cls, "__qualname__", getattr(cls, "__name__", "cls"))
    mod = getattr(cls, "__module__", "")
    if "<" in qual or not mod or mod == "__main__":
        return qual, f"# {qual}: defined in the caller's code; define or import it here"
    return qual, f"from {mod} import {qual.split('.')[0]}"


def torch_check_snippet(case, device: str = "cpu", cls=None, precision: str | None = None) -> str:
    """The lines that run torch's built-in layer (or the drop-in ``cls``) on the case through
    the torch adapter and assert every quantity agrees with the reference."""
    expr, imp = _class_expression(cls, case.config.cell)
    return run_snippet(expr, case, kind="module", device=device, precision=precision or case.dtype.name,
                       imports=imp)
