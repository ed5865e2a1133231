"""The numpy kind's protocol as documented (docs/frameworks.md): ``numpy:lstm`` names the cell,
a target's ``cells`` attribute does too, adapters say their kind, and the float64 probe tells a
float64 target that computes below float64 from one that does not (a planted rounding on each
side of the threshold)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bpttcheck.properties.oracle import TargetError, detect_kind, target_checks
from bpttcheck.properties.oracle.adapters.precision import BELOW_FLOAT64_RATIO, float64_probe
from bpttcheck.properties.oracle.builtins import reference_numpy
from bpttcheck.properties.oracle.kinds import parse_kind

SPEC = "bpttcheck.properties.oracle.builtins:reference_numpy"


def test_numpy_kind_names_its_cell():
    assert parse_kind("numpy:lstm") == ("numpy", "lstm")
    ids = [c.check_id for c in target_checks(SPEC, "numpy:lstm")]
    assert ids and all(i.startswith("numpy/lstm/") for i in ids)
    every = {c.check_id.split("/")[1] for c in target_checks(SPEC, "numpy")}
    assert every == {"rnn", "lstm", "gru"}  # without a cell: called for every cell type


@pytest.mark.parametrize("kind, fragment", [("numpy:lsmt", "one of rnn, lstm, gru"), ("clip:lstm", "numpy:lstm")])
def test_bad_cell_in_kind(kind, fragment):
    with pytest.raises(TargetError, match=fragment):
        parse_kind(kind)


def _gru_only(config, params, x, h0, c0, d_output, d_h_n, d_c_n):
    return reference_numpy(config, params, x, h0, c0, d_output, d_h_n, d_c_n)


_gru_only.cells = ("gru",)
_gru_only.bpttcheck_kind = "numpy"


def test_cells_attribute_and_declared_kind(monkeypatch):
    import sys
    import types

    mod = types.ModuleType("fw_numpy_targets")
    mod.gru_only = _gru_only
    monkeypatch.setitem(sys.modules, "fw_numpy_targets", mod)
    assert detect_kind(_gru_only) == "numpy"
    ids = [c.check_id for c in target_checks("fw_numpy_targets:gru_only")]
    assert ids and all(i.startswith("numpy/gru/") for i in ids)


def _rounded(bits):
    """The reference with every result rounded to ``bits`` significant bits (a planted precision loss)."""
    def fn(*args):
        out = reference_numpy(*args)
        m, e = {}, {}
        for k, v in out.items():
            mant, ex = np.frexp(np.asarray(v, dtype=np.float64))
            m[k] = np.ldexp(np.round(mant * 2.0**bits) / 2.0**bits, ex).astype(np.asarray(v).dtype)
        return m
    return fn


def test_float64_probe_passes_a_float64_target():
    r = float64_probe(reference_numpy, "lstm")
    assert not r["below_float64"] and r["ratio"] < 1e-6, r


def test_float64_probe_flags_float32_arithmetic():
    def via_float32(*args):
        return {k: np.asarray(v).astype(np.float32).astype(np.asarray(v).dtype)
                for k, v in reference_numpy(*args).items()}
    r = float64_probe(via_float32, "gru")
    assert r["below_float64"] and r["ratio"] > 0.05, r


@pytest.mark.parametrize("bits, flagged", [(30, True), (36, False)])
def test_float64_probe_threshold_is_sharp(bits, flagged):
    # 2^-30 relative rounding is ~5e-3 of the float32 error: flagged; 2^-36 (~1e-4) is not
    r = float64_probe(_rounded(bits), "rnn")
    assert r["below_float64"] is flagged, (r, BELOW_FLOAT64_RATIO)


def test_probe_does_not_warn_by_itself():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        float64_probe(reference_numpy, "rnn")


def test_every_listing_of_kinds_comes_from_the_registry():
    import argparse

    from bpttcheck.commands.verify import add_arguments
    from bpttcheck.properties.oracle.kinds import KINDS, describe

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert "jax" in KINDS and "  jax " in parser.epilog and "jax" in describe()
    # the kinds that may name a cell are the registry's names_cell rows, numpy among them
    assert "module, cell and numpy may name the cell" in parser.epilog
    assert "module, cell and numpy may add the cell" in describe()
