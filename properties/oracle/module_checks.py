"""Checks of ``module`` and ``cell`` targets: drop-ins for torch.nn.RNN/LSTM/GRU and their cells.

module: constructed with torch's arguments over generated configurations, loaded with the
reference weights, and compared on outputs, final states and every gradient (parameters,
input, initial states) — one check per option group (plain stacks, bidirectional, proj_size,
PackedSequence, bidirectional and packed), so a target that declines an option is "unsupported" for that group only.
cell: unrolled by the oracle over T steps and compared with a one-layer network.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np

from bpttcheck.reference.cells import cell_spec

from ..runner import PropertyCheck
from .common import Guarded, check_id, devices_for, dtype_variant, precision_mode, round_to

__all__ = ["cell_checks", "module_checks", "variant_case"]


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
    if variant.dtype in ("float64", "float32"):
        return case.astype(np.dtype(variant.dtype))
    r = partial(round_to, variant=variant)
    return replace(case, params={k: r(v) for k, v in case.params.items()}, x=r(case.x), h0=r(case.h0), c0=r(case.c0))


def _snippet(spec, kind, case, device, variant) -> str:
    run = "run_module" if kind == "module" else "run_cell"
    build = (f"m = build(cls, (config.input_size, config.hidden_size), dict(num_layers=config.num_layers, bias=config.bias, "
             f"batch_first={case.batch_first}, bidirectional=config.bidirectional"
             + (", nonlinearity=config.nonlinearity" if cell_spec(case.config.cell).takes_nonlinearity else "")
             + (", proj_size=config.proj_size" if case.config.proj_size else "")
             + f"), device={device!r}, dtype={variant.dtype!r}, option='', context='')"
             if kind == "module" else
             f"m = build(cls, (config.input_size, config.hidden_size), dict(bias=config.bias"
             + (", nonlinearity=config.nonlinearity" if cell_spec(case.config.cell).takes_nonlinearity else "")
             + f"), device={device!r}, dtype={variant.dtype!r}, option='', context='')")
    rename = "" if kind == "module" else ", rename=lambda n: n[:-3]"
    return case.reproducer(f"""from bpttcheck.properties.oracle import load_target
from bpttcheck.properties.oracle.torch_run import build, load_weights, {run}
from bpttcheck.properties.strategies import Case
cls = load_target({spec!r})
{build}
load_weights(m, params{rename})
case = Case(config, params, x, h0, c0, None if lengths is None else np.array(lengths), {case.batch_first}, d_output, d_h_n, d_c_n)
got = {run}(m, case, device={device!r}, dtype={variant.dtype!r})
for name, want in [("output", result.output), ("h_n", result.h_n)] + list(grads.items()):
    if want is not None and name in got:
        print(name, abs(got[name] - want).max())""")


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
        parts.append("PackedSequence input")
    if cell_spec(c.cell).takes_nonlinearity:
        parts.append(f"nonlinearity={c.nonlinearity!r}")
    return ", ".join(parts)


def _module_body(cls, spec, device, variant, case):
    from ..torch_checks import compare_results
    from .torch_run import build, load_weights, run_module

    case = variant_case(case, variant)
    cfg = case.config
    ctx = _context(spec, case, device, variant)
    rep = lambda: _snippet(spec, "module", case, device, variant)  # noqa: E731
    kwargs = dict(num_layers=cfg.num_layers, bias=cfg.bias, batch_first=case.batch_first,
                  bidirectional=cfg.bidirectional)
    if cell_spec(cfg.cell).takes_nonlinearity:
        kwargs["nonlinearity"] = cfg.nonlinearity
    if cfg.proj_size:
        kwargs["proj_size"] = cfg.proj_size
    with precision_mode(device, variant):
        m = build(cls, (cfg.input_size, cfg.hidden_size), kwargs, device=device, dtype=variant.dtype,
                  option=_options(case), context=ctx)
        load_weights(m, case.params, context=ctx, reproducer=rep)
        got = run_module(m, case, device=device, dtype=variant.dtype, context=ctx, reproducer=rep)
    return compare_results(case, got, precision=variant.precision, context=ctx, reproducer=rep)


def _cell_body(cls, spec, device, variant, case):
    from ..torch_checks import compare_results
    from .torch_run import build, load_weights, run_cell

    case = variant_case(case, variant)
    cfg = case.config
    ctx = _context(spec, case, device, variant)
    rep = lambda: _snippet(spec, "cell", case, device, variant)  # noqa: E731
    kwargs = dict(bias=cfg.bias)
    if cell_spec(cfg.cell).takes_nonlinearity:
        kwargs["nonlinearity"] = cfg.nonlinearity
    with precision_mode(device, variant):
        m = build(cls, (cfg.input_size, cfg.hidden_size), kwargs, device=device, dtype=variant.dtype,
                  option=_options(case), context=ctx)
        load_weights(m, case.params, rename=lambda n: n[:-3], context=ctx, reproducer=rep)
        got = run_cell(m, case, device=device, dtype=variant.dtype, context=ctx, reproducer=rep)
    return compare_results(case, got, precision=variant.precision, context=ctx, reproducer=rep)


def _strategy(cell, group, variant, kind):
    from ..strategies import cases, configs

    acts = ("tanh", "relu")
    if kind == "cell":
        conf = configs(cells=(cell,), activations=acts, max_layers=1, bidirectional=False, proj=False)
        extra = dict(lengths=False, batch_first=False)
    else:
        g = _GROUPS[group]
        conf = configs(cells=(cell,), activations=acts, bidirectional=g["bidirectional"], proj=g["proj"])
        extra = dict(lengths=g["lengths"])
    if variant.precision != "float64":  # float32 and below: contractive weights (SPEC §8)
        return cases(conf, regime="contractive", max_T=8, **extra)
    return cases(conf, **extra)


def module_checks(spec, cls, cell, *, device="cpu", dtypes=("float64", "float32")) -> list[PropertyCheck]:
    groups = [g for g in _GROUPS if g != "proj_size" or cell_spec(cell).projection]
    return _checks("module", spec, cls, cell, groups, _module_body, device, dtypes)


def cell_checks(spec, cls, cell, *, device="cpu", dtypes=("float64", "float32")) -> list[PropertyCheck]:
    return _checks("cell", spec, cls, cell, ["gradients"], _cell_body, device, dtypes)


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
                out.append(PropertyCheck(
                    name=f"{spec} ({kind}, {cell}) {group} on {dev}, {name}",
                    strategy=_strategy(cell, group, variant, kind),
                    body=Guarded(partial(body, cls, spec, dev, variant)),
                    skip=reason,
                    id=cid,
                ))
    return out
