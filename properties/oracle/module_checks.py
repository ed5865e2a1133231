"""Checks of ``module`` and ``cell`` targets: drop-ins for torch.nn.RNN/LSTM/GRU and their cells.

module: constructed with torch's arguments over generated configurations, loaded with the
reference weights, and compared on outputs, final states and every gradient (parameters,
input, initial states) — one check per option group (plain stacks, bidirectional, proj_size,
PackedSequence, bidirectional and packed), so a target that declines an option is "unsupported" for that group only.
cell: unrolled by the oracle over T steps and compared with a one-layer network.
"""

from __future__ import annotations

from functools import partial

from bpttcheck.reference.cells import cell_spec

from ..case_space import CaseSpace
from ..reproduce import run_snippet
from ..runner import PropertyCheck
from ..torch_adapter import build_cell, build_module, load_weights, run_cell, run_module
from .common import Guarded, call_target, check_id, devices_for, dtype_variant, precision_mode
from .diagnoses import judged

__all__ = ["case_space", "cell_checks", "module_checks", "variant_case"]

#: option group -> (what it needs from the configuration/case, a description for a decline)
_GROUPS = {
    "gradients": dict(bidirectional=False, proj=False, lengths=False),
    "bidirectional": dict(bidirectional=True, proj=False, lengths=False),
    "proj_size": dict(bidirectional=False, proj=True, lengths=False),
    "packed": dict(bidirectional=False, proj=False, lengths=True),
    # the reverse direction of a padded batch starts at each sequence's last valid step: its
    # own group, so a target that declines PackedSequence still has its bidirectional checked
    "bidirectional_packed": dict(bidirectional=True, proj=False, lengths=True),
}


def variant_case(case, variant):
    """The case with its values rounded to the variant's storage precision (the reference then
    runs in float64 on exactly the values the target sees)."""
    return case.rounded(variant)


def _snippet(spec, kind, case, device, variant) -> str:
    return case.reproducer(run_snippet(f"load_target({spec!r})", case, kind=kind, device=device,
                                       precision=variant.name, imports="from bpttcheck.properties.oracle import load_target"))


def _context(spec, case, device, variant) -> str:
    return f"{spec} on {device}, {variant.name}; {case.describe()}"


def _options(case) -> str:
    c = case.config
    parts = [f"num_layers={c.num_layers}", f"bias={c.bias}"]
    if c.bidirectional:
        parts.append("bidirectional=True")
    if c.proj_size:
        parts.append(f"proj_size={c.proj_size}")
    if case.batch_first:
        parts.append("batch_first=True")
    if case.lengths is not None:
        parts.append("PackedSequence input" + (" (enforce_sorted=True)" if case.enforce_sorted else ""))
    if case.unbatched:
        parts.append("unbatched input")
    if cell_spec(c.cell).takes_nonlinearity:
        parts.append(f"nonlinearity={c.nonlinearity!r}")
    return ", ".join(parts)


def _body(kind, cls, spec, device, variant, case):
    case = variant_case(case, variant)
    ctx = _context(spec, case, device, variant)
    rep = lambda: _snippet(spec, kind, case, device, variant)  # noqa: E731
    call = partial(call_target, context=ctx, reproducer=rep)
    opts = dict(device=device, dtype=variant.dtype, call=call)
    with precision_mode(device, variant):
        if kind == "module":
            m = build_module(cls, case.config, batch_first=case.batch_first, option=_options(case), **opts)
            load_weights(m, case.params, context=ctx, reproducer=rep)
            got = run_module(m, case, context=ctx, reproducer=rep, out_dtype=_out_dtype(variant), **opts)
        else:
            m = build_cell(cls, case.config, option=_options(case), **opts)
            load_weights(m, case.params, cell=True, context=ctx, reproducer=rep)
            got = run_cell(m, case, context=ctx, reproducer=rep, out_dtype=_out_dtype(variant), **opts)
    return judged(case, got, precision=variant.precision, context=ctx, reproducer=rep)


def _out_dtype(variant):
    """Under autocast a layer returns the autocast dtype; otherwise its storage dtype."""
    if not variant.autocast:
        return None
    import torch

    return getattr(torch, variant.autocast)


def case_space(cell, group, variant, kind):
    """The cases of one check (:class:`~bpttcheck.properties.case_space.CaseSpace`): a group
    draws only its own options (the packed groups always pack), float32 and coarser stay
    contractive, and the coverage phases add deep, saturated, overflow-prone, expansive,
    unbatched and long cases."""
    float64 = variant.precision == "float64"
    if kind == "cell":
        return CaseSpace(cell, bidirectional=False, proj=False, packed=False, unbatched=True, max_layers=1,
                         deep=False, float64=float64, batch_first=False)
    g = _GROUPS[group]
    return CaseSpace(cell, bidirectional=g["bidirectional"], proj=g["proj"], packed=g["lengths"], unbatched=True,
                     float64=float64)


def module_checks(target, options) -> list[PropertyCheck]:
    spec, cls, cell, device, dtypes = target.spec, target.obj, target.cell, options.device, tuple(options.dtypes)
    groups = [g for g in _GROUPS if g != "proj_size" or cell_spec(cell).projection]
    return _checks("module", spec, cls, cell, groups, partial(_body, "module"), device, dtypes)


def cell_checks(target, options) -> list[PropertyCheck]:
    spec, cls, cell, device, dtypes = target.spec, target.obj, target.cell, options.device, tuple(options.dtypes)
    return _checks("cell", spec, cls, cell, ["gradients"], partial(_body, "cell"), device, dtypes)


def _checks(kind, spec, cls, cell, groups, body, device, dtypes):
    out = []
    for dev, skip in devices_for(device):
        for name in dtypes:
            variant = dtype_variant(name)
            reason = skip or ("needs CUDA" if variant.cuda_only and dev == "cpu" else "")
            if reason == "needs CUDA":
                continue  # half precisions and TF32 are CUDA paths: not listed on the CPU
            for group in groups:
                cid = check_id(kind, cell, group, dev, name)
                space = case_space(cell, group, variant, kind)
                out.append(PropertyCheck(
                    name=f"{spec} ({kind}, {cell}) {group} on {dev}, {name}",
                    strategy=space.main(),
                    coverage=space.coverage,
                    body=Guarded(partial(body, cls, spec, dev, variant)),
                    skip=reason,
                    id=cid,
                ))
    return out
