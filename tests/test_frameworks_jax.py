"""The jax kind on real JAX (skipped where jax is not installed; `tox -e frameworks` installs it):
a hand-written step with a mapping passes and a planted bug fails naming the quantity; each
library layout (flax, equinox, haiku) agrees with the reference on a fixed case, and a planted
layout error does not; the jit cache compiles once per target; x64 does not leak; bad JaxCell
arguments are refused in one line. The full checks of every adapter are slow-marked."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = jax.numpy

from bpttcheck.properties.oracle import TargetError, detect_kind, target_checks  # noqa: E402
from bpttcheck.properties.oracle.api import run_one  # noqa: E402
from bpttcheck.properties.oracle.jax_checks import _ENGINES, JaxCell, run_jax_cell  # noqa: E402
from bpttcheck.properties.oracle.numpy_checks import config_dict  # noqa: E402
from bpttcheck.properties.strategies import make_case  # noqa: E402
from bpttcheck.properties.judge import compare_results  # noqa: E402
from bpttcheck.reference import RecurrentConfig  # noqa: E402

pytestmark = pytest.mark.frameworks


def lstm_step(p, x, s):
    h, c = s
    i, f, g, o = jnp.split(x @ p["W"] + h @ p["U"] + p["b"], 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return h, (h, c)


def to_mine(t):
    return {"W": t["weight_ih"].T, "U": t["weight_hh"].T, "b": t.get("bias_ih", 0.0) + t.get("bias_hh", 0.0)}


def forgetful_step(p, x, s):  # planted: the cell state does not carry a gradient into the past
    h, c = s
    return lstm_step(p, x, (h, jax.lax.stop_gradient(c)))


MY_LSTM = JaxCell(lstm_step, cell="lstm", params=to_mine)
FORGETFUL = JaxCell(forgetful_step, cell="lstm", params=to_mine)


def _case(cell, nonlinearity="tanh", bias=True, T=4, B=3, D=2, H=3, seed=7):
    cfg = RecurrentConfig(cell=cell, input_size=D, hidden_size=H, num_layers=1, nonlinearity=nonlinearity, bias=bias,
                          bidirectional=False, proj_size=0)
    return make_case(cfg, T=T, B=B, seed=seed)


def _judge(target, case):
    got = run_jax_cell(target, config_dict(case.config), dict(case.params), case.x, case.h0, case.c0,
                       case.d_output, case.d_h_n, case.d_c_n if case.config.cell == "lstm" else None)
    return compare_results(case, got, raise_on_mismatch=False)


def test_hand_written_step_passes():
    (check,) = target_checks(MY_LSTM, "jax", dtypes=("float64",))
    r = run_one(check, "dev")
    assert r.status == "pass" and check.check_id == f"jax/lstm/gradients[{jax.default_backend()},float64]", r.message


def test_planted_stop_gradient_fails():
    bad = [c for c in _judge(FORGETFUL, _case("lstm", T=3)) if not c.ok]
    assert bad and {c.quantity for c in bad} >= {"c0", "weight_hh_l0"}


def _adapters():
    import equinox as eqx
    import flax.linen as fnn
    import haiku as hk

    from bpttcheck.properties.oracle.adapters.jax_cells import equinox_cell, flax_cell, haiku_cell

    return [("flax LSTMCell", flax_cell(fnn.LSTMCell), "lstm", "tanh"),
            ("flax OptimizedLSTMCell", flax_cell(fnn.OptimizedLSTMCell), "lstm", "tanh"),
            ("flax GRUCell", flax_cell(fnn.GRUCell), "gru", "tanh"),
            ("flax SimpleCell relu", flax_cell(fnn.SimpleCell, nonlinearity="relu"), "rnn", "relu"),
            ("equinox LSTMCell", equinox_cell(eqx.nn.LSTMCell), "lstm", "tanh"),
            ("equinox GRUCell", equinox_cell(eqx.nn.GRUCell), "gru", "tanh"),
            ("haiku LSTM", haiku_cell(hk.LSTM), "lstm", "tanh"),
            ("haiku VanillaRNN", haiku_cell(hk.VanillaRNN), "rnn", "relu"),
            ("haiku VanillaRNN single bias", haiku_cell(hk.VanillaRNN, double_bias=False), "rnn", "relu")]


@pytest.mark.parametrize("index", range(9))
def test_library_layouts_agree_with_the_reference(index):
    pytest.importorskip("flax"), pytest.importorskip("equinox"), pytest.importorskip("haiku")
    name, target, cell, phi = _adapters()[index]
    for bias in (True, False):
        comps = _judge(target, _case(cell, phi, bias=bias))
        assert all(c.ok for c in comps), (name, bias, [c.quantity for c in comps if not c.ok])


def test_planted_layout_error_fails():
    pytest.importorskip("flax")
    import flax.linen as fnn

    from bpttcheck.properties.oracle.adapters.jax_layouts import flax_params

    def swapped(t):  # planted: GRU blocks read as z, r, n (Keras' order) instead of torch's r, z, n
        H = t["weight_hh"].shape[1]
        perm = lambda a: jnp.concatenate([a[H:2 * H], a[:H], a[2 * H:]])  # noqa: E731
        return flax_params("gru", {k: perm(v) for k, v in t.items()})

    module = {}

    def make(D, H):
        module[H] = fnn.GRUCell(features=H)
        return lambda p, x, s: module[H].apply({"params": p}, s, x)[::-1]

    comps = _judge(JaxCell(make=make, cell="gru", params=swapped), _case("gru"))
    assert not all(c.ok for c in comps)


def test_one_compilation_per_target_and_x64_scoped():
    before = jax.config.jax_enable_x64
    target = JaxCell(lstm_step, cell="lstm", params=to_mine)
    for T, B, D, H in ((2, 1, 1, 2), (5, 3, 2, 3), (1, 2, 2, 2)):
        assert all(c.ok for c in _judge(target, _case("lstm", T=T, B=B, D=D, H=H)))
    assert sum(1 for key in _ENGINES if key[0] is target) == 1
    eng = _ENGINES[(target, None, None)]
    sizes = eng.both._cache_size()
    _judge(target, _case("lstm", T=6, B=1, D=2, H=3, seed=1))  # new T and B, same (D, H): no new compile
    assert eng.both._cache_size() == sizes
    assert jax.config.jax_enable_x64 == before
    assert jnp.zeros(1).dtype == (np.float64 if before else np.float32)


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(step=lstm_step, cell="lsmt"), "expected one of 'rnn', 'lstm', 'gru'.*cell registry"),
    (dict(cell="lstm"), "give exactly one"),
    (dict(step=lstm_step, make=lambda D, H: lstm_step), "give exactly one"),
    (dict(step=lstm_step, params="flaxx"), "one of torch, flax, equinox, haiku"),
    (dict(step=lstm_step, params=3), "layout name"),
    (dict(step=lstm_step, cell="rnn", nonlinearity="softplus"), "expected one of 'tanh', 'relu'"),
    (dict(step=lstm_step, cell="lstm", nonlinearity="relu"), "'tanh' \\(the LSTM takes no other\\)"),
])
def test_bad_jaxcell_arguments(kwargs, fragment):
    with pytest.raises(TargetError, match=fragment):
        JaxCell(**kwargs)


def test_kind_detected_and_loaded(monkeypatch):
    mod = types.ModuleType("fw_jax_targets")
    mod.MyLSTM = MY_LSTM
    mod.factory = lambda: MY_LSTM
    monkeypatch.setitem(sys.modules, "fw_jax_targets", mod)
    assert detect_kind(MY_LSTM) == "jax"
    assert [c.check_id.split("[")[0] for c in target_checks("fw_jax_targets:factory", "jax")] == \
        ["jax/lstm/gradients"] * 2
    with pytest.raises(TargetError, match="zero-argument factory"):
        target_checks("fw_jax_targets:MyLSTM.__class__.__name__", "jax")


@pytest.mark.slow
@pytest.mark.parametrize("index", range(9))
def test_every_adapter_passes_the_full_checks(index):
    name, target, cell, phi = _adapters()[index]
    for check in target_checks(target, "jax"):
        r = run_one(check, "dev")
        assert r.status == "pass", (name, check.check_id, r.message)


def _elman(phi):
    def step(p, x, h):
        pre = x @ p["weight_ih"].T + h @ p["weight_hh"].T + p.get("bias_ih", 0.0) + p.get("bias_hh", 0.0)
        h = phi(pre)
        return h, h
    return step


@pytest.mark.parametrize("nonlinearity, phi", [("identity", lambda a: a), ("sigmoid", jax.nn.sigmoid)])
def test_nonlinearities_come_from_the_cell_registry(nonlinearity, phi):
    # the registry's Elman nonlinearities beyond tanh/relu are judged too; a step computing tanh
    # while declaring another nonlinearity is caught (the planted side)
    good = JaxCell(_elman(phi), cell="rnn", nonlinearity=nonlinearity)
    wrong = JaxCell(_elman(jnp.tanh), cell="rnn", nonlinearity=nonlinearity)
    case = _case("rnn", nonlinearity=nonlinearity)
    assert all(c.ok for c in _judge(good, case))
    assert {c.quantity for c in _judge(wrong, case) if not c.ok} >= {"output", "weight_ih_l0"}


def test_default_nonlinearity_is_the_registrys_first():
    assert JaxCell(_elman(jnp.tanh), cell="rnn").nonlinearity == "tanh"
    assert JaxCell(lstm_step, cell="lstm", params=to_mine).nonlinearity == "tanh"
