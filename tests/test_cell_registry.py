"""The cell registry: every CellSpec is complete and true to its cell, every cell has a SymPy
transcription that agrees with its NumPy layer, and caches are named."""

from __future__ import annotations

import dataclasses
import pathlib
import re
import warnings

import numpy as np
import pytest

from bpttcheck.reference import InvalidArgument, RecurrentConfig, backward, forward, init_params
from bpttcheck.reference.cells import CELLS, TORCH_CELLS, CellSpec, cell_spec, cell_specs
from bpttcheck.reference.cellspec import CACHE_FIELDS
from bpttcheck.reference.truncation import frozen_states

SPECS = {s.name: s for s in cell_specs()}


def _case(cell, T=3, B=2, D=2, H=3, seed=0, **kw):
    config = RecurrentConfig(cell, D, H, **kw)
    rng = np.random.default_rng(seed)
    params = init_params(config, rng)
    x = rng.standard_normal((T, B, D))
    return config, params, x


def test_the_three_cells_come_first_in_their_order():
    assert CELLS[:3] == ("rnn", "lstm", "gru")
    assert set(TORCH_CELLS) <= set(CELLS) and TORCH_CELLS[:3] == ("rnn", "lstm", "gru")
    assert [s.name for s in cell_specs()] == list(CELLS)


@pytest.mark.parametrize("name", CELLS)
def test_every_spec_is_complete(name):
    spec = cell_spec(name)
    assert isinstance(spec, CellSpec) and spec.name == name and spec.title
    for f in dataclasses.fields(CellSpec):
        value = getattr(spec, f.name)
        if f.name not in ("torch_module", "torch_cell"):
            assert value is not None and value != "", f"{name}: {f.name} is empty"
    assert spec.gates and len(set(spec.gates)) == len(spec.gates)
    assert spec.nonlinearities[0] in spec.nonlinearities
    needed = CACHE_FIELDS + (("cell_states",) if spec.has_cell_state else ())
    assert all(f in spec.cache_type._fields for f in needed)


@pytest.mark.parametrize("name", CELLS)
def test_spec_matches_what_the_cell_computes(name):
    spec = cell_spec(name)
    config, params, x = _case(name)
    H = config.hidden_size
    assert params["weight_ih_l0"].shape[0] == len(spec.gates) * H == config.gates * H
    result = forward(config, params, x)
    cache = result.layer_cache(0)
    assert type(cache) is spec.cache_type
    assert cache.states.shape == (x.shape[0] + 1, x.shape[1], config.output_size)
    np.testing.assert_array_equal(cache.states[1:], result.output)
    assert (result.c_n is not None) == spec.has_cell_state
    if spec.has_cell_state:
        np.testing.assert_array_equal(cache.cell_states[-1], result.c_n[0])
    assert type(spec.magnitude_cache(cache)) is spec.cache_type
    grads = backward(params, result, np.ones_like(result.output))
    assert ("c0" in grads) == spec.has_cell_state
    for other in ACTIVATION_NAMES:
        ok = other in spec.nonlinearities
        if ok:
            RecurrentConfig(name, 2, 3, nonlinearity=other)
        else:
            with pytest.raises(InvalidArgument, match=f"nonlinearity={other!r}"):
                RecurrentConfig(name, 2, 3, nonlinearity=other)
    if not spec.projection:
        with pytest.raises(InvalidArgument, match="proj_size=1"):
            RecurrentConfig(name, 2, 3, proj_size=1)


ACTIVATION_NAMES = ("tanh", "relu", "identity", "sigmoid")


@pytest.mark.parametrize("name", TORCH_CELLS)
def test_torch_names_exist_and_give_the_mode(name):
    torch = pytest.importorskip("torch")
    spec = cell_spec(name)
    module = getattr(torch.nn, spec.torch_module)(2, 3)
    assert module.mode == RecurrentConfig(name, 2, 3).torch_mode
    assert spec.torch_cell is not None and issubclass(getattr(torch.nn, spec.torch_cell), torch.nn.Module)


@pytest.mark.symbolic
@pytest.mark.parametrize("name", CELLS)
def test_every_cell_has_a_symbolic_transcription_that_agrees(name):
    """One step of the SymPy transcription, evaluated at the case's numbers, equals the layer."""
    pytest.importorskip("sympy")
    from bpttcheck.symbolic.cells import param_symbols, state_sizes, transcription, vector_symbols

    fn = transcription(name)
    assert callable(fn) and fn.__name__ == cell_spec(name).symbolic.rsplit(".", 1)[1]
    config, params, x = _case(name, T=1, B=1, D=2, H=2)
    rng = np.random.default_rng(1)
    P, Hc = state_sizes(config)
    h0 = rng.standard_normal((1, 1, P))
    c0 = rng.standard_normal((1, 1, Hc)) if Hc else None
    result = forward(config, params, x, h0, c0)
    syms = param_symbols(config)
    xs, hs = vector_symbols("x", 2), vector_symbols("h", P)
    cs = vector_symbols("c", Hc) if Hc else None
    h_new, c_new = fn(config, syms, xs, hs, cs)
    values = {s: float(v) for n, m in syms.items() for s, v in zip(m, np.asarray(params[n]).reshape(-1))}
    values.update({s: float(v) for s, v in zip(xs, x[0, 0])})
    values.update({s: float(v) for s, v in zip(hs, h0[0, 0])})
    if Hc:
        values.update({s: float(v) for s, v in zip(cs, c0[0, 0])})
    got = np.array([float(e.evalf(30, subs=values)) for e in h_new])
    np.testing.assert_allclose(got, result.output[0, 0], rtol=1e-13, atol=1e-15)
    assert (c_new is not None) == cell_spec(name).has_cell_state
    if c_new is not None:
        np.testing.assert_allclose([float(e.evalf(30, subs=values)) for e in c_new], result.c_n[0, 0], rtol=1e-13, atol=1e-15)


def test_unknown_cell_names_the_registry():
    with pytest.raises(InvalidArgument, match="cell='transformer' \\(type=str\\): expected one of 'rnn', 'lstm', 'gru'"):
        cell_spec("transformer")
    with pytest.raises(InvalidArgument, match="cell=3 \\(type=int\\)"):
        cell_spec(3)


def test_an_incomplete_spec_is_refused():
    good = cell_spec("rnn")
    with pytest.raises(InvalidArgument, match="cache_type="):
        dataclasses.replace(good, cache_type=tuple)
    with pytest.raises(InvalidArgument, match="gates="):
        dataclasses.replace(good, gates=())
    with pytest.raises(InvalidArgument, match="nonlinearities="):
        dataclasses.replace(good, nonlinearities=("gelu",))
    with pytest.raises(InvalidArgument, match="symbolic="):
        dataclasses.replace(good, symbolic="")
    with pytest.raises(InvalidArgument, match="backward="):
        dataclasses.replace(good, backward=None)


def test_layer_cache_accessor_validates():
    config, params, x = _case("gru", num_layers=2, bidirectional=True)
    result = forward(config, params, x)
    assert result.layer_cache(1, 1) is result.layer_cache(layer=1, direction=1)
    with pytest.raises(InvalidArgument, match="layer=2 \\(type=int\\): expected an integer <= 1"):
        result.layer_cache(2)
    with pytest.raises(InvalidArgument, match="direction=-1"):
        result.layer_cache(0, -1)
    light = forward(config, params, x, keep_cache=False)
    with pytest.raises(InvalidArgument, match="keep_cache=False"):
        light.layer_cache(0)


def test_frozen_states_are_the_forwards_own_states():
    config, params, x = _case("lstm", T=5, num_layers=2)
    c0 = np.random.default_rng(3).standard_normal((2, 2, 3))
    result = forward(config, params, x, None, c0)
    Hs, Cs = frozen_states(config, params, result, x, c0)
    for layer in range(2):
        np.testing.assert_array_equal(Hs[:, layer], result.layer_cache(layer).states)
        np.testing.assert_array_equal(Cs[:, layer], result.layer_cache(layer).cell_states)
    np.testing.assert_array_equal(Cs[-1], result.c_n)
    assert frozen_states(*_case("gru")[:2], forward(*_case("gru")), None)[1] is None


_ROOT = pathlib.Path(__file__).resolve().parents[1]
_NAME_TEST = re.compile(r"""\bcell\s*[!=]=\s*["'](lstm|gru)["']""")


@pytest.mark.parametrize("layer", ["reference", "symbolic"])
def test_no_module_tests_a_gated_cells_name(layer):
    """What a cell is (a cell state, gates, a projection) is asked of the registry."""
    hits = [f"{p.relative_to(_ROOT)}:{i}" for p in sorted((_ROOT / layer).rglob("*.py"))
            for i, line in enumerate(p.read_text().splitlines(), 1) if _NAME_TEST.search(line)]
    assert not hits, hits


def test_symbolic_checks_alias_warns_and_forwards():
    pytest.importorskip("sympy")
    from bpttcheck.properties import symbolic_checks
    import bpttcheck.symbolic.checks as old

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn = old.check_against_oracle
    assert fn is symbolic_checks.check_against_oracle
    assert any(issubclass(w.category, DeprecationWarning) and "properties.symbolic_checks" in str(w.message) for w in caught)
