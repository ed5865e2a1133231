"""Torch-free self-checks of the reference: identities that must hold between its own calls.

Padding, batch_first, stacking, bidirectionality and stacked parameter sets each have an
independent definition in terms of simpler calls; float32 must stay within the tolerance
policy of float64, and a complex dtype must give the complex step its derivative.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from bpttcheck.properties.compare import assert_close
from bpttcheck.properties.strategies import cases, configs, make_case
from bpttcheck.properties.tolerance import implementation_tolerance
from bpttcheck.properties.torch_checks import compare_results
from bpttcheck.reference import RecurrentConfig, backward, forward
from bpttcheck.reference.cells import CELLS, cell_spec


def _results(result, grads) -> dict:
    out = {"output": result.output, "h_n": result.h_n}
    if result.c_n is not None:
        out["c_n"] = result.c_n
    out.update(grads)
    return out


def _assert_same(got: dict, expected: dict, T: int, context: str, precision="float64"):
    for name, e in expected.items():
        scale = float(np.max(np.abs(e))) if np.size(e) else 1.0
        assert_close(name, got[name], e, implementation_tolerance(precision, T=T, scale=scale), context=context)


def _run(config, params, x, h0=None, c0=None, d_output=None, d_h_n=None, d_c_n=None, **kw):
    result = forward(config, params, x, h0, c0, **kw)
    return result, backward(params, result, d_output, d_h_n, d_c_n)


@given(cases(lengths=True, max_T=5))
def test_padding_never_changes_a_result(case):
    """Garbage in x's padded positions changes nothing; the output there is exactly 0."""
    if case.lengths is None:  # T = 1 draws no padding
        return
    x = case.x.copy()
    tx = x.swapaxes(0, 1) if case.batch_first else x  # time-major view
    for b, n in enumerate(case.lengths):
        tx[n:, b] = 1e3 * np.arange(1, tx.shape[0] - n + 1)[:, None]
    clean = _results(*case.reference())
    result, grads = _run(case.config, case.params, x, case.h0, case.c0, case.d_output, case.d_h_n,
                         case.d_c_n, lengths=case.lengths, batch_first=case.batch_first)
    dirty = _results(result, grads)
    _assert_same(dirty, clean, case.T, "garbage in padding; " + case.describe())
    out = result.output.swapaxes(0, 1) if case.batch_first else result.output
    for b, n in enumerate(case.lengths):
        assert not out[n:, b].any(), f"output is not 0 in the padding of sequence {b}"


@given(cases(batch_first=False))
def test_batch_first_is_the_transposed_time_major_call(case):
    tm = _results(*case.reference())
    t = lambda a: a.transpose(1, 0, 2).copy()  # noqa: E731
    result, grads = _run(case.config, case.params, t(case.x), case.h0, case.c0, t(case.d_output),
                         case.d_h_n, case.d_c_n, lengths=case.lengths, batch_first=True)
    bf = _results(result, grads)
    bf["output"], bf["input"] = t(bf["output"]), t(bf["input"])
    _assert_same(bf, tm, case.T, "batch_first vs time-major; " + case.describe())


def _single_layer(config: RecurrentConfig, layer: int, params: dict, bidirectional=None):
    """The config and parameters of one layer of ``config`` as a 1-layer network."""
    bidir = config.bidirectional if bidirectional is None else bidirectional
    one = RecurrentConfig(config.cell, config.layer_input_size(layer), config.hidden_size, 1,
                          config.nonlinearity, config.bias, bidir, config.proj_size)
    return one, {k.replace(f"_l{layer}", "_l0"): v for k, v in params.items() if f"_l{layer}" in k}


@given(cases(configs(max_layers=3), batch_first=False))
def test_a_stack_is_its_layers_composed_by_hand(case):
    c = case.config
    D, L = c.num_directions, c.num_layers
    sl = lambda a, k: None if a is None else a[k * D:(k + 1) * D]  # noqa: E731
    x, layers, h_n, c_n = case.x, [], [], []
    for k in range(L):
        one, p = _single_layer(c, k, case.params)
        result = forward(one, p, x, sl(case.h0, k), sl(case.c0, k), lengths=case.lengths)
        layers.append((one, p, result))
        x = result.output
        h_n.append(result.h_n)
        c_n.append(result.c_n)
    got = {"output": x, "h_n": np.concatenate(h_n)}
    if cell_spec(c.cell).has_cell_state:
        got["c_n"] = np.concatenate(c_n)
    d_out = case.d_output
    for k in range(L - 1, -1, -1):
        one, p, result = layers[k]
        g = backward(p, result, d_out, sl(case.d_h_n, k), sl(case.d_c_n, k))
        got.update({n.replace("_l0", f"_l{k}"): v for n, v in g.items() if n.startswith(("weight", "bias"))})
        for s in ("h0", "c0"):
            if s in g:
                got.setdefault(s, [None] * L)[k] = g[s]
        d_out = g["input"]
    got["input"] = d_out
    for s in ("h0", "c0"):
        if s in got:
            got[s] = np.concatenate(got[s])
    expected = _results(*case.reference())
    if case.h0 is None:
        expected.pop("h0", None), expected.pop("c0", None)
    _assert_same(got, expected, case.T, "stack vs layers composed by hand; " + case.describe())


def _reverse_within_lengths(a, lengths):
    """a (T, B, F) with each sequence reversed within its length (padding stays put)."""
    out = a.copy()
    for b in range(a.shape[1]):
        n = a.shape[0] if lengths is None else int(lengths[b])
        out[:n, b] = a[:n, b][::-1]
    return out


@given(cases(configs(max_layers=1, bidirectional=True), batch_first=False))
def test_bidirectional_is_forward_and_reversed_backward(case):
    c = case.config
    P = c.output_size
    one, p = _single_layer(c, 0, case.params, bidirectional=False)
    p_rev = {k.replace("_reverse", ""): v for k, v in case.params.items() if k.endswith("_reverse")}
    p_fwd = {k: v for k, v in p.items() if not k.endswith("_reverse")}
    at = lambda a, d: None if a is None else a[d:d + 1]  # noqa: E731
    rev = lambda a: _reverse_within_lengths(a, case.lengths)  # noqa: E731
    fw, gf = _run(one, p_fwd, case.x, at(case.h0, 0), at(case.c0, 0), case.d_output[..., :P],
                  at(case.d_h_n, 0), at(case.d_c_n, 0), lengths=case.lengths)
    bw, gb = _run(one, p_rev, rev(case.x), at(case.h0, 1), at(case.c0, 1), rev(case.d_output[..., P:]),
                  at(case.d_h_n, 1), at(case.d_c_n, 1), lengths=case.lengths)
    got = {"output": np.concatenate([fw.output, rev(bw.output)], axis=-1),
           "h_n": np.concatenate([fw.h_n, bw.h_n]), "input": gf["input"] + rev(gb["input"])}
    if cell_spec(c.cell).has_cell_state:
        got["c_n"] = np.concatenate([fw.c_n, bw.c_n])
    got.update({k: v for k, v in gf.items() if k.startswith(("weight", "bias"))})
    got.update({k + "_reverse": v for k, v in gb.items() if k.startswith(("weight", "bias"))})
    got["h0"] = np.concatenate([gf["h0"], gb["h0"]])
    if cell_spec(c.cell).has_cell_state:
        got["c0"] = np.concatenate([gf["c0"], gb["c0"]])
    expected = _results(*case.reference())
    if case.h0 is None:
        expected.pop("h0", None), expected.pop("c0", None)
    _assert_same(got, expected, case.T, "bidirectional vs forward ⊕ reversed backward; " + case.describe())


@given(cases(), st.integers(2, 3))
def test_stacked_parameter_sets_equal_separate_calls(case, S):
    rng = np.random.default_rng(case.seed)
    sets = [case.params] + [{k: v + 0.1 * rng.standard_normal(v.shape) for k, v in case.params.items()}
                            for _ in range(S - 1)]
    stacked = {k: np.stack([s[k] for s in sets]) for k in case.params}
    kw = dict(lengths=case.lengths, batch_first=case.batch_first)
    together = forward(case.config, stacked, case.x, case.h0, case.c0, **kw)
    for i, params in enumerate(sets):
        alone = forward(case.config, params, case.x, case.h0, case.c0, **kw)
        got = {"output": together.output[i], "h_n": together.h_n[i]}
        exp = {"output": alone.output, "h_n": alone.h_n}
        if alone.c_n is not None:
            got["c_n"], exp["c_n"] = together.c_n[i], alone.c_n
        _assert_same(got, exp, case.T, f"parameter set {i} of a stack of {S}; " + case.describe())


@given(cases(regime="contractive", max_T=12))
def test_float32_stays_within_the_policy_of_float64(case):
    """The reference run in float32 is an implementation under test against float64."""
    c32 = case.astype(np.float32)
    result, grads = c32.reference()
    assert result.output.dtype == np.float32
    compare_results(c32, _results(result, grads), precision="float32",
                    context="reference in float32 vs float64; " + c32.describe())


@pytest.mark.parametrize("cell", CELLS)
def test_complex_dtype_gives_the_complex_step_derivative(cell):
    """Im L(θ + i·h·v)/h = ⟨∇L, v⟩ to rounding: the reference stays holomorphic."""
    config = RecurrentConfig(cell, 3, 4, num_layers=2, bidirectional=True, proj_size=2 if cell_spec(cell).projection else 0)
    case = make_case(config, T=5, B=2, seed=3, lengths=[5, 3])
    result, grads = case.reference()
    rng = np.random.default_rng(7)
    v = {k: rng.standard_normal(p.shape) for k, p in case.params.items()}
    vx = rng.standard_normal(case.x.shape)
    h = 1e-30
    params = {k: p + 1j * h * v[k] for k, p in case.params.items()}
    cx = lambda a: None if a is None else a.astype(np.complex128)  # noqa: E731
    res = forward(config, params, case.x + 1j * h * vx, cx(case.h0), cx(case.c0), lengths=case.lengths)
    assert res.output.dtype == np.complex128
    loss = (res.output * case.d_output).sum() + (res.h_n * case.d_h_n).sum()
    if res.c_n is not None:
        loss = loss + (res.c_n * case.d_c_n).sum()
    directional = sum(float((grads[k] * v[k]).sum()) for k in v) + float((grads["input"] * vx).sum())
    terms = sum(float(np.abs(grads[k] * v[k]).sum()) for k in v) + float(np.abs(grads["input"] * vx).sum())
    assert_close("directional derivative", loss.imag / h, directional,
                 implementation_tolerance("float64", T=case.T, scale=terms), context=case.describe())
    # The real part is the real computation, untouched by the imaginary perturbation.
    assert_close("output", res.output.real, result.output, implementation_tolerance("float64", T=case.T))


def test_params_as_lists_and_copies_give_the_same_result():
    """A params value given as a (nested) list is converted like x; backward accepts equal
    copies of the forward's params (it refuses different values: tests/test_bad_input.py)."""
    config = RecurrentConfig("lstm", 2, 3, proj_size=2)
    case = make_case(config, T=4, B=2, seed=0)
    result, grads = case.reference()
    listed = {k: v.tolist() for k, v in case.params.items()}
    again = forward(config, listed, case.x.tolist(), case.h0, case.c0)
    np.testing.assert_array_equal(again.output, result.output)
    for params in (listed, {k: v.copy() for k, v in case.params.items()}):
        g = backward(params, again, case.d_output, case.d_h_n, case.d_c_n)
        for k in grads:
            np.testing.assert_array_equal(g[k], grads[k])
