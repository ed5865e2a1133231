"""Argument validation as one table: each bad input, the exception it raises, and a fragment of
the message. Every message names the argument, echoes its value (or shape and dtype) and says
what was expected, so a caller never has to read a NumPy traceback.

A row is ``bad(call, fragment, exc, id)``, appended to :data:`BAD_INPUTS` (or :data:`BAD_OPTIONS`
for the oracle's keyword options). The fragment must name the argument and say what was
expected, so that a row cannot pass on an unrelated error.

Completeness: ``test_every_public_callable_has_a_bad_input_row`` enumerates the public API — the
``__all__`` of each module in :data:`PUBLIC_MODULES`, one entry per object — and fails when a
public callable has no row and no :data:`EXEMPT` entry (each exemption says why). A row covers
the callable its **id prefix** names: the text before the first ``-``, either a public name
itself (case-insensitive: ``lossspec-kind`` covers ``LossSpec``) or an abbreviation listed in
:data:`ID_PREFIXES` (``config-cell`` covers ``RecurrentConfig``). A prefix that names nothing,
or two different objects (``pair_sum``), fails the test until ID_PREFIXES says which is meant.
The replacements README.md's "Deprecated names" table points to are covered too (a deprecated
alias forwards to its replacement, so the replacement's rows cover it).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from bpttcheck.properties.strategies import make_case, scale_recurrent_weights, sigma_for_regime
from bpttcheck.properties.tolerance import finite_difference_tolerance, implementation_tolerance, precision_of
from bpttcheck.reference import (
    InvalidArgument, LossSpec, RecurrentConfig, backward, forward, init_params, loss_and_grad,
)
from bpttcheck import reference as ref

RNN = RecurrentConfig("rnn", 2, 3)
LSTM = RecurrentConfig("lstm", 2, 3)
P = init_params(RNN, np.random.default_rng(0))
X = np.random.default_rng(1).standard_normal((4, 2, 2))  # (T=4, B=2, D=2)
RES = forward(RNN, P, X)  # output (4, 2, 3)
Y = RES.output


def _without(d, key):
    return {k: v for k, v in d.items() if k != key}


def bad(call, fragment, exc=InvalidArgument, id=None, marks=()):
    return pytest.param(call, exc, fragment, id=id, marks=marks)


BAD_INPUTS = [
    # RecurrentConfig
    bad(lambda: RecurrentConfig("transformer", 2, 3), "cell='transformer' (type=str): expected one of 'rnn', 'lstm', 'gru'", id="config-cell"),
    bad(lambda: RecurrentConfig("rnn", 0, 3), "input_size=0 (type=int): expected an integer >= 1", id="config-input_size"),
    bad(lambda: RecurrentConfig("rnn", 2, 3.0), "hidden_size=3.0 (type=float): expected an integer", id="config-hidden_size-float"),
    bad(lambda: RecurrentConfig("rnn", 2, 3, num_layers=True), "num_layers=True (type=bool): expected an integer", id="config-num_layers-bool"),
    bad(lambda: RecurrentConfig("rnn", 2, 3, nonlinearity="gelu"), "nonlinearity='gelu' (type=str): expected one of", id="config-nonlinearity"),
    bad(lambda: RecurrentConfig("gru", 2, 3, nonlinearity="relu"), "nonlinearity='relu' (type=str): expected 'tanh' for cell='gru'", id="config-gru-relu"),
    bad(lambda: RecurrentConfig("rnn", 2, 3, bias="yes"), "bias='yes' (type=str): expected True or False", id="config-bias"),
    bad(lambda: RecurrentConfig("rnn", 2, 3, proj_size=1), "proj_size=1 (type=int): expected 0 for cell='rnn'", id="config-proj-rnn"),
    bad(lambda: RecurrentConfig("lstm", 2, 3, proj_size=3), "proj_size=3 (type=int): expected a value smaller than hidden_size=3", id="config-proj-too-big"),
    # init_params
    bad(lambda: init_params(RNN, 0), "rng=0 (type=int): expected a numpy.random.Generator", id="init-rng"),
    bad(lambda: init_params("rnn", np.random.default_rng(0)), "config='rnn' (type=str): expected a RecurrentConfig", id="init-config"),
    bad(lambda: init_params(RNN, np.random.default_rng(0), dtype=np.int32), "dtype=<class 'numpy.int32'> (type=type): expected a floating-point or complex dtype", id="init-dtype"),
    bad(lambda: init_params(RNN, np.random.default_rng(0), scale=-1.0), "scale=-1.0 (type=float): expected a finite number >= 0", id="init-scale"),
    # forward
    bad(lambda: forward("rnn", P, X), "config='rnn' (type=str): expected a RecurrentConfig", id="forward-config"),
    bad(lambda: forward(RNN, [1], X), "params=[1] (type=list): expected a dict of parameter name -> array", id="forward-params-type"),
    bad(lambda: forward(RNN, _without(P, "bias_hh_l0"), X), "missing ['bias_hh_l0']", id="forward-params-missing"),
    bad(lambda: forward(RNN, dict(P, weight_hh_l0=np.zeros((3, 4))), X), "weight_hh_l0=array(shape=(3, 4), dtype=float64): expected shape (3, 3)", id="forward-param-shape"),
    bad(lambda: forward(RNN, P, X[0]), "x=array(shape=(2, 2), dtype=float64): expected shape (T, B, input_size=2)", id="forward-x-ndim"),
    bad(lambda: forward(RNN, P, X[..., :1]), "x=array(shape=(4, 2, 1), dtype=float64): expected shape (T, B, input_size=2)", id="forward-x-width"),
    bad(lambda: forward(RNN, P, np.ones((4, 2, 2), dtype=np.int64)), "x=array(shape=(4, 2, 2), dtype=int64): expected a floating-point or complex array", id="forward-x-int"),
    bad(lambda: forward(RNN, P, np.where(X > 0, np.nan, X)), "x=array(shape=(4, 2, 2), dtype=float64): expected finite values (found nan at index", id="forward-x-nan"),
    bad(lambda: forward(RNN, P, np.zeros((0, 2, 2))), "x=array(shape=(0, 2, 2), dtype=float64): expected at least one time step", id="forward-x-empty"),
    bad(lambda: forward(RNN, P, X, np.zeros((1, 3, 3))), "h0=array(shape=(1, 3, 3), dtype=float64): expected shape (layers*directions=1, B=2, P=3)", id="forward-h0-shape"),
    bad(lambda: forward(RNN, P, X, None, np.zeros((1, 2, 3))), "c0=array(shape=(1, 2, 3), dtype=float64): expected None, only the LSTM has a cell state", id="forward-c0-rnn"),
    bad(lambda: forward(RNN, P, X, lengths=[5, 1]), "lengths=[5, 1] (type=list): expected every length in [1, T=4], found 5", id="forward-lengths-long"),
    bad(lambda: forward(RNN, P, X, lengths=[0, 1]), "lengths=[0, 1] (type=list): expected every length in [1, T=4], found 0", id="forward-lengths-zero"),
    bad(lambda: forward(RNN, P, X, lengths=[1, 1, 1]), "lengths=[1, 1, 1] (type=list): expected 2 integers (one per batch element)", id="forward-lengths-count"),
    bad(lambda: forward(RNN, P, X, lengths=[1.0, 2.0]), "lengths=[1.0, 2.0] (type=list): expected 2 integers", id="forward-lengths-float"),
    bad(lambda: forward(RNN, P, X.astype(np.float32)), "mismatched dtypes ['float32', 'float64']", id="forward-mixed-dtypes"),
    bad(lambda: forward(RNN, P, X, batch_first="yes"), "batch_first='yes' (type=str): expected True or False", id="forward-batch_first"),
    # backward
    bad(lambda: backward(P, RES), "d_output, d_h_n and d_c_n are all None: expected at least one cotangent", id="backward-no-cotangent"),
    bad(lambda: backward(P, RES, np.zeros((4, 2, 2))), "d_output=array(shape=(4, 2, 2), dtype=float64): expected shape (T=4, B=2, P=3)", id="backward-d_output-shape"),
    bad(lambda: backward(P, RES, None, np.zeros((2, 2, 3))), "d_h_n=array(shape=(2, 2, 3), dtype=float64): expected shape (layers*directions=1, B=2, P=3)", id="backward-d_h_n-shape"),
    bad(lambda: backward(P, RES, None, None, np.zeros((1, 2, 3))), "d_c_n=array(shape=(1, 2, 3), dtype=float64): expected None, only the LSTM", id="backward-d_c_n-rnn"),
    bad(lambda: backward(P, "result", Y), "result='result' (type=str): expected the ForwardResult of forward()", id="backward-result"),
    # losses
    bad(lambda: LossSpec(kind="hinge"), "kind='hinge' (type=str): expected one of 'cotangent', 'mse', 'cross_entropy'", id="lossspec-kind"),
    bad(lambda: LossSpec(steps="first"), "steps='first' (type=str): expected one of 'all', 'last'", id="lossspec-steps"),
    bad(lambda: LossSpec(reduction="max"), "reduction='max' (type=str): expected one of 'sum', 'mean'", id="lossspec-reduction"),
    bad(lambda: loss_and_grad("mse", Y, Y), "spec='mse' (type=str): expected a LossSpec", id="loss-spec"),
    bad(lambda: loss_and_grad(LossSpec(), np.zeros((4, 2)), np.zeros((4, 2))), "output=array(shape=(4, 2), dtype=float64): expected shape (T, B, F)", id="loss-output"),
    bad(lambda: loss_and_grad(LossSpec(), Y, np.zeros((4, 2, 2))), "target=array(shape=(4, 2, 2), dtype=float64): expected shape (T=4, B=2, F=3)", id="loss-target"),
    bad(lambda: loss_and_grad(LossSpec("cross_entropy"), Y, np.full((4, 2), 7)), "target=array(shape=(4, 2), dtype=int64): expected integer class labels of shape (T=4, B=2) in [0, 3)", id="loss-labels"),
    bad(lambda: loss_and_grad(LossSpec("mse"), Y, np.zeros((4, 2, 2)), readout={"weight_hy": np.zeros((2, 5))}), "readout['weight_hy']=array(shape=(2, 5), dtype=float64): expected shape (K, F=3)", id="loss-readout"),
    bad(lambda: loss_and_grad(LossSpec(), Y, Y, lengths=[9, 9]), "lengths=[9, 9] (type=list): expected every length in [1, T=4], found 9", id="loss-lengths"),
    # tolerance policy
    bad(lambda: implementation_tolerance("float128"), "precision='float128' (type=str): expected one of 'float64', 'float32'", id="tolerance-precision"),
    bad(lambda: implementation_tolerance(T=0), "T=0 (type=int): expected an integer >= 1", id="tolerance-T"),
    bad(lambda: implementation_tolerance(amplification=-1), "amplification=-1: expected a finite number >= 0", id="tolerance-amplification"),
    bad(lambda: implementation_tolerance(amplification=float("nan")), "amplification=nan: expected a finite number >= 0", id="tolerance-amplification-nan"),
    bad(lambda: implementation_tolerance(scale=-1.0), "scale=-1.0 (type=float): expected a number >= 0", id="tolerance-scale"),
    bad(lambda: implementation_tolerance(scale="x"), "scale='x' (type=str): expected a number >= 0", id="tolerance-scale-str"),
    bad(lambda: precision_of(np.int32), "dtype=<class 'numpy.int32'>: expected a floating-point or complex dtype", id="precision_of-int"),
    bad(lambda: finite_difference_tolerance(np.ones(3), factor=-1), "factor=-1 (type=int): expected a number > 0", id="fd-tolerance-factor"),
    # strategies helpers
    bad(lambda: scale_recurrent_weights(RNN, P, 0.0), "sigma_max=0.0 (type=float): expected a finite number > 0", id="scale_recurrent-sigma"),
    bad(lambda: scale_recurrent_weights(RNN, P, "1"), "sigma_max='1' (type=str): expected a real number", id="scale_recurrent-sigma-str"),
    bad(lambda: scale_recurrent_weights(RNN, None, 1.0), "params=None (type=NoneType): expected a dict", id="scale_recurrent-params"),
    bad(lambda: sigma_for_regime("chaotic", 1.0, np.random.default_rng(0)), "regime='chaotic' (type=str): expected one of 'contractive', 'critical', 'expansive'", id="sigma_for_regime-regime"),
    bad(lambda: sigma_for_regime("critical", 0.0, np.random.default_rng(0)), "gamma=0.0 (type=float): expected a finite number > 0", id="sigma_for_regime-gamma"),
    bad(lambda: make_case(RNN, T=0, B=1), "T=0 (type=int): expected an integer >= 1", id="make_case-T"),
    bad(lambda: make_case(RNN, T=2, B=-1), "B=-1 (type=int): expected an integer >= 1", id="make_case-B"),
    bad(lambda: make_case(RNN, T=2, B=2, lengths=[3, 1]), "lengths=[3, 1] (type=list): expected every length in [1, T=2], found 3", id="make_case-lengths"),
    bad(lambda: make_case(RNN, T=2, B=2, dtype=np.int64), "dtype=<class 'numpy.int64'> (type=type): expected a floating-point or complex dtype", id="make_case-dtype"),
    bad(lambda: make_case("rnn", T=2, B=2), "config='rnn' (type=str): expected a RecurrentConfig", id="make_case-config"),
]

# The reference's public functions (issue 13): params checked against the forward they go with,
# then one row per class of bad input (types, shapes, finiteness, ranges, keys, consistency).
_G = {k: v for k, v in backward(P, RES, Y).items() if k.startswith(("weight", "bias"))}
_STEP = ref.step_jacobians(RNN, P, X)
_D4 = np.ones((4, 2, 3))
_RO = {"weight_hy": np.ones((2, 3)), "bias_y": np.zeros(2)}
_GEN = ref.free_running(RNN, P, _RO, np.zeros((2, 2)), 3)
_HALF = ref.Randomized((0.5,) * 4)
_sq = lambda t: (t ** 2).sum(axis=1)  # noqa: E731
BAD_INPUTS += [
    # backward(params, result, …): the params must be those the forward ran with
    bad(lambda: backward(_without(P, "bias_hh_l0"), RES, Y), "params has keys ['bias_ih_l0', 'weight_hh_l0', 'weight_ih_l0']: expected exactly", id="backward-params-missing"),
    bad(lambda: backward(dict(P, weight_hh_l0=np.full((3, 3), np.nan)), RES, Y), "weight_hh_l0=array(shape=(3, 3), dtype=float64): expected finite values (found nan at index (0, 0))", id="backward-params-nan"),
    bad(lambda: backward(init_params(LSTM, np.random.default_rng(0)), RES, Y), "weight_ih_l0=array(shape=(12, 2), dtype=float64): expected shape (3, 2)", id="backward-params-other-config"),
    bad(lambda: backward(init_params(RNN, np.random.default_rng(5)), RES, Y), "params['weight_ih_l0']=array(shape=(3, 2), dtype=float64) differs from the values forward() ran with", id="backward-params-not-the-forwards"),
    bad(lambda: backward([1], RES, Y), "params=[1] (type=list): expected a dict of parameter name -> array", id="backward-params-type"),
    bad(lambda: backward(P, RES, Y, crossing="cut"), "crossing='cut' (type=str): expected None or a rule (t, dh, dc) -> (dh, dc)", id="backward-crossing"),
    bad(lambda: backward(P, RES, Y, magnitudes="yes"), "magnitudes='yes' (type=str): expected True or False", id="backward-magnitudes"),
    bad(lambda: backward(P, RES, [[[1.0]], [[1.0, 2.0]]]), "d_output=[[[1.0]], [[1.0, 2.0]]] (type=list): expected a rectangular array", id="backward-d_output-ragged"),
    # forward and init_params
    bad(lambda: forward(RNN, P, [[[True, False]] * 2] * 4), "expected a floating-point array (got booleans)", id="forward-x-bool-list"),
    bad(lambda: forward(RNN, P, [[[1.0, 2.0]], [[1.0]]]), "x=[[[1.0, 2.0]], [[1.0]]] (type=list): expected a rectangular array of shape (T, B, input_size=2)", id="forward-x-ragged"),
    bad(lambda: forward(RNN, P, X, keep_cache=1), "keep_cache=1 (type=int): expected True or False", id="forward-keep_cache"),
    bad(lambda: forward(RNN, P, X, lengths=[[1], [1, 2]]), "lengths=[[1], [1, 2]] (type=list): expected 2 integers", id="forward-lengths-ragged"),
    bad(lambda: init_params(RNN, np.random.default_rng(0), dtype="float99"), "dtype='float99' (type=str): expected a floating-point or complex dtype", id="init-dtype-unknown"),
    bad(lambda: init_params(RNN, np.random.default_rng(0), dtype=True), "dtype=True (type=bool): expected a floating-point or complex dtype", id="init-dtype-bool"),
    # truncation and randomized truncation
    bad(lambda: ref.truncated_backward(RNN, P, X, _D4, _HALF, xi=np.array([2.0, -2.0, 2.0, 0.0])), "expected finite multipliers >= 0 (each ξ_t is 0 or 1/π_t; xi[1] = -2.0)", id="truncated-xi-negative"),
    bad(lambda: ref.truncated_backward(RNN, P, X, _D4, _HALF, xi=[[1, 1], [1]]), "xi=[[1, 1], [1]] (type=list): expected real multipliers of shape (T=4,)", id="truncated-xi-ragged"),
    bad(lambda: ref.truncated_backward(RNN, P, X, _D4, ref.Full(), method=np.ones(2)), "method=array(shape=(2,), dtype=float64): expected one of 'auto', 'sweep', 'windows'", id="truncated-method-array"),
    bad(lambda: ref.truncated_backward(RNN, P, X, _D4, object()), "expected a truncation scheme: an object with window(T), crossing(T) and describe()", id="truncated-scheme-protocol"),
    bad(lambda: ref.Window(None), "f=None (type=NoneType): expected a callable t -> f(t) or a sequence of T integers", id="window-none"),
    bad(lambda: ref.Window((0, 0), name=3), "name=3 (type=int): expected a string naming the window", id="window-name"),
    bad(lambda: ref.Randomized("abc"), "pis='abc' (type=str): expected a sequence of probabilities in (0, 1]", id="randomized-str"),
    bad(lambda: ref.Randomized((0.5, 1 + 0j)), "pis[1]=(1+0j) (type=complex): expected a probability in (0, 1]", id="randomized-complex"),
    bad(lambda: ref.RandomizedHistory([[0.5], [0.5, 0.5]]), "run_probs=[[0.5], [0.5, 0.5]] (type=list): expected a sequence of probabilities", id="randomizedhistory-ragged"),
    bad(lambda: ref.randomized_backward(RNN, P, X[0], _D4[0], _HALF, rng=np.random.default_rng(0)), "x=array(shape=(2, 2), dtype=float64): expected shape (T, B, input_size=2)", id="randomized_backward-2d-x"),
    bad(lambda: ref.sample_xi(ref.Subsequence(2), np.random.default_rng(0), 4), "expected a randomized scheme (keep_probability(t, kept_before) and describe()", id="sample_xi-deterministic"),
    bad(lambda: ref.exact_moments(RNN, P, X, _D4, _HALF, pairs="pairs"), "pairs='pairs' (type=str): expected None or the PairContributions of pair_contributions()", id="exact_moments-pairs"),
    bad(lambda: ref.independent_moments([1.0], (0.5,) * 4), "pairs=[1.0] (type=list): expected the PairContributions of pair_contributions()", id="independent_moments-pairs"),
    bad(lambda: ref.pair_sum(RNN, P, X, _D4, np.zeros(4)), "f=f (array): f(0)=0.0 (type=float): expected an integer 0 <= f(t) <= t", id="pair_sum-float-window"),
    # finite differences
    bad(lambda: ref.central_difference(lambda t: np.where(t[:, 0] > 1, np.inf, t.sum(axis=1)), np.ones(2)), "f returned inf at theta with element 0 moved by +3.81e-06 (row 0 of the batch): expected finite values of f near theta", id="central-f-nonfinite"),
    bad(lambda: ref.directional_derivative(lambda t: np.where(t[:, 0] < 0, np.nan, t.sum(axis=1)), np.array([0.0, 1.0]), np.eye(2)), "f returned nan at theta moved -3.81e-06 along directions[0] (row 1 of the batch)", id="directional-f-nan"),
    bad(lambda: ref.central_difference(_sq, np.ones(2), truncation_estimate="yes"), "truncation_estimate='yes' (type=str): expected True or False", id="central-truncation_estimate"),
    bad(lambda: ref.directional_derivative(_sq, np.ones(2), np.eye(2), f_scale=-1.0), "f_scale=-1.0 (type=float): expected a finite number >= 0", id="directional-f_scale"),
    bad(lambda: ref.central_difference(_sq, np.ones(2), f_scale=True), "f_scale=True (type=bool): expected a finite number >= 0", id="central-f_scale-bool"),
    bad(lambda: ref.central_difference(_sq, np.ones(2), step=[[1e-3], [1e-3, 1e-3]]), "expected a positive number or 2 positive numbers", id="central-step-ragged"),
    bad(lambda: ref.complex_step(_sq, [[1.0], [1.0, 2.0]]), "theta=[[1.0], [1.0, 2.0]] (type=list): expected a rectangular array", id="complex-theta-ragged"),
    bad(lambda: ref.NetworkLoss(RNN, P, X, d_output=Y, target=Y), "target=array(shape=(4, 2, 3), dtype=float64): expected None without a loss", id="networkloss-target-without-loss"),
    bad(lambda: ref.NetworkLoss(RNN, P, X, d_output=Y, wrt=3), "wrt=3 (type=int): expected a sequence of names among", id="networkloss-wrt-int"),
    # clipping
    bad(lambda: ref.tensor_norm(np.array([1, 2])), "g=array(shape=(2,), dtype=int64): expected a real floating-point NumPy array", id="tensor_norm-int"),
    bad(lambda: ref.tensor_norm([1.0, 2.0]), "g=[1.0, 2.0] (type=list): expected a real floating-point NumPy array", id="tensor_norm-list"),
    bad(lambda: ref.tensor_norm(np.ones(2), float("nan")), "norm_type=nan (type=float): expected a real number", id="tensor_norm-nan-p"),
    bad(lambda: ref.clip_by_global_norm(_G, 1.0, error_if_nonfinite="no"), "error_if_nonfinite='no' (type=str): expected True or False", id="clip-error_if_nonfinite"),
    bad(lambda: ref.adjoint_clipping(1.0, per=np.ones(2)), "per=array(shape=(2,), dtype=float64): expected one of 'sample', 'batch'", id="adjoint_clipping-per-array"),
    # Jacobians and profiles
    bad(lambda: ref.chain_jacobians("step"), "step='step' (type=str): expected the StepJacobians of step_jacobians()", id="chain_jacobians-step"),
    bad(lambda: ref.step_norm_bound(None), "step=None (type=NoneType): expected the StepJacobians of step_jacobians()", id="step_norm_bound-step"),
    bad(lambda: ref.chain_jacobians(_STEP, end=4), "end=4 (type=int): expected an integer <= 3", id="chain_jacobians-end"),
    bad(lambda: ref.recurrent_sigma_max(P, name=["weight_hh_l0"]), "name=['weight_hh_l0'] (type=list): expected a key of params", id="sigma_max-name"),
    bad(lambda: ref.recurrent_sigma_max([P]), "params=[{", id="sigma_max-params"),
    bad(lambda: ref.singular_values(np.ones(3)), "m=array(shape=(3,), dtype=float64): expected a stack of matrices", id="singular_values-1d"),
    bad(lambda: ref.elman_bound(RNN, P, [[0], [1, 2]]), "lags=[[0], [1, 2]] (type=list): expected integers >= 0", id="elman_bound-lags-ragged"),
    bad(lambda: ref.gradient_statistics(_G, percentiles=(50, 101)), "percentiles=(50, 101) (type=tuple): expected percentiles in [0, 100] (found 101)", id="gradient_statistics-percentiles"),
    bad(lambda: ref.gradient_statistics(_G, percentiles=5), "percentiles=5 (type=int): expected a sequence of percentiles in [0, 100]", id="gradient_statistics-percentiles-scalar"),
    bad(lambda: ref.history_statistics({"losses": []}), "expected a TrainingHistory (from train_sgd)", id="history_statistics-type"),
    bad(lambda: ref.train_sgd(RNN, None, X, Y), "params=None (type=NoneType): expected a dict of parameter name -> array", id="train_sgd-params"),
    bad(lambda: ref.train_sgd(RNN, P, X, Y, loss="mse"), "loss='mse' (type=str): expected a LossSpec", id="train_sgd-loss"),
    # architectures and stateful training
    bad(lambda: ref.residual_forward(RNN, None, X), "params=None (type=NoneType): expected a dict of parameter name -> array", id="residual_forward-params"),
    bad(lambda: ref.residual_forward(RNN, P, X, h0=0.5), "h0=array(shape=(), dtype=float64): expected shape (layers*directions=1, B=2, P=3)", id="residual_forward-h0"),
    bad(lambda: ref.residual_backward(P, ref.residual_forward(RNN, P, X), Y, d_h_n=np.ones(3)), "d_h_n=array(shape=(3,), dtype=float64): expected shape (layers*directions=1, B=2, P=3)", id="residual_backward-d_h_n"),
    bad(lambda: ref.residual_backward(init_params(RNN, np.random.default_rng(5)), ref.residual_forward(RNN, P, X), Y), "differs from the values forward() ran with", id="residual_backward-params-not-the-forwards"),
    bad(lambda: ref.pseudo_matrix_forward(RNN, {}, X), "params has keys []: expected exactly ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0']", id="pseudo_matrix-params"),
    bad(lambda: ref.generation_backward("params", _RO, _GEN, np.ones((3, 2, 2))), "params='params' (type=str): expected a dict of parameter name -> array", id="generation_backward-params"),
    bad(lambda: ref.generation_backward(P, dict(_RO, weight_hy=np.zeros((2, 3))), _GEN, np.ones((3, 2, 2))), "readout['weight_hy']=array(shape=(2, 3), dtype=float64) differs from the readout the generation ran with", id="generation_backward-readout-differs"),
    bad(lambda: ref.generation_backward(P, _RO, _GEN, np.ones((3, 2, 2)), feedback="yes"), "feedback='yes' (type=str): expected True or False", id="generation_backward-feedback"),
    bad(lambda: ref.encoder_decoder_backward(init_params(RNN, np.random.default_rng(5)), P, ref.encoder_decoder_forward(RNN, P, RNN, P, X, X), Y), "differs from the values forward() ran with", id="encoder_decoder-params-not-the-forwards"),
    bad(lambda: ref.stateful_backward("rnn", P, X, Y, 2), "config='rnn' (type=str): expected a RecurrentConfig", id="stateful-config"),
    bad(lambda: ref.stateful_backward(RNN, P, [[1.0], [1.0, 2.0]], Y, 2), "X=[[1.0], [1.0, 2.0]] (type=list): expected a rectangular array", id="stateful-X-ragged"),
]


# Rows for the rest of the reference's public functions (completeness, issue 13).
_SUB2 = ref.Subsequence(2)
BAD_INPUTS += [
    bad(lambda: ref.SlidingWindow(0), "k=0 (type=int): expected an integer >= 1", id="slidingwindow-k-zero"),
    bad(lambda: ref.Subsequence("2"), "k='2' (type=str): expected an integer >= 1", id="subsequence-k-str"),
    bad(lambda: ref.WilliamsPeng(0, 1), "h=0 (type=int): expected an integer >= 1", id="williamspeng-h-zero"),
    bad(lambda: ref.WilliamsPeng(1, 3), "h=1 (type=int): expected h >= h_prime=3", id="williamspeng-h-below-h_prime"),
    bad(lambda: ref.cell_spec("transformer"), "cell='transformer' (type=str): expected one of 'rnn', 'lstm', 'gru'", id="cell_spec-name"),
    bad(lambda: ref.cell_spec(3), "cell=3 (type=int): expected one of 'rnn', 'lstm', 'gru'", id="cell_spec-int"),
    bad(lambda: ref.clip_after_backward(_G, float("nan")), "max_norm=nan (type=float): expected a finite real number > 0", id="clip_after_backward-max_norm-nan"),
    bad(lambda: ref.clip_after_backward([1.0], 1.0), "grads=[1.0] (type=list): expected the dict of gradients that backward() returns", id="clip_after_backward-grads"),
    bad(lambda: ref.clip_by_value(_G, -1.0), "clip_value=-1.0 (type=float): expected a finite real number > 0", id="clip_by_value-negative"),
    bad(lambda: ref.clip_by_value(None, 1.0), "grads=None (type=NoneType): expected a NumPy array, a list/tuple of arrays", id="clip_by_value-grads"),
    bad(lambda: ref.clip_layerwise(_G, 1.0, groups=3), "groups=3 (type=int): expected a non-empty dict group -> pattern", id="clip_layerwise-groups-int"),
    bad(lambda: ref.clip_layerwise(_G, 1.0, groups={"a": ["nope"]}), "groups={'a': ['nope']} (type=dict): names ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0'] match no group; expected a pattern matching each of them", id="clip_layerwise-groups-unmatched"),
    bad(lambda: ref.clip_layerwise(_G, -1.0), "max_norm['l0']=-1.0 (type=float): expected a finite real number > 0", id="clip_layerwise-max_norm"),
    bad(lambda: ref.clip_per_tensor(_G, 1.0, norm_type="l2"), "norm_type='l2' (type=str): expected a real number p > 0 or 'inf'", id="clip_per_tensor-norm_type"),
    bad(lambda: ref.clip_per_tensor(_G, -2.0), "max_norm=-2.0 (type=float): expected a finite real number > 0", id="clip_per_tensor-max_norm"),
    bad(lambda: ref.global_norm(_G, 0.0), "norm_type=0.0 (type=float): expected a real number p > 0 or inf", id="global_norm-norm_type"),
    bad(lambda: ref.global_norm({}), "grads={} (type=dict): expected at least one gradient that is not None", id="global_norm-empty"),
    bad(lambda: ref.compose_crossings("cut"), "crossings[0]='cut' (type=str): expected None or a rule (t, dh, dc) -> (dh, dc)", id="compose_crossings-str"),
    bad(lambda: ref.compose_crossings(None, 3), "crossings[1]=3 (type=int): expected None or a rule", id="compose_crossings-int"),
    bad(lambda: ref.encoder_decoder_forward(RNN, P, RNN, P, X, X[0]), "x=array(shape=(2, 2), dtype=float64): expected shape (T, B, input_size=2)", id="encoder_decoder_forward-x_dec"),
    bad(lambda: ref.encoder_decoder_forward(RNN, P, "rnn", P, X, X), "config='rnn' (type=str): expected a RecurrentConfig", id="encoder_decoder_forward-config"),
    bad(lambda: ref.free_running(RNN, P, _RO, np.zeros((2, 2)), 0), "T=0 (type=int): expected an integer >= 1", id="free_running-T"),
    bad(lambda: ref.free_running(RNN, P, {}, np.zeros((2, 2)), 3), "readout['weight_hy']=None (type=NoneType): expected a NumPy array of shape (K=input_size=2, P=3)", id="free_running-readout-missing"),
    bad(lambda: ref.teacher_forced(RNN, P, _RO, np.zeros((2, 2)), np.ones((3, 2))), "targets=array(shape=(3, 2), dtype=float64): expected shape (T, B=2, K=2)", id="teacher_forced-targets-shape"),
    bad(lambda: ref.teacher_forced(RNN, P, _RO, np.zeros((2, 2)), np.full((3, 2, 2), np.nan)), "targets=array(shape=(3, 2, 2), dtype=float64): expected finite values", id="teacher_forced-targets-nan"),
    bad(lambda: ref.teacher_forced(RNN, P, None, np.zeros((2, 2)), np.ones((3, 2, 2))), "readout=None (type=NoneType): expected a dict with 'weight_hy' (K, P) and 'bias_y' (K,)", id="teacher_forced-readout"),
    bad(lambda: ref.from_stateful_batches(np.ones((4, 2)), 2), "X=array(shape=(4, 2), dtype=float64): expected shape (n*B, m, D)", id="from_stateful_batches-X"),
    bad(lambda: ref.to_stateful_batches(X, 3), "m=3 (type=int): expected a divisor of T=4", id="to_stateful_batches-m"),
    bad(lambda: ref.to_stateful_batches(X[0], 2), "x=array(shape=(2, 2), dtype=float64): expected shape (T, B, D)", id="to_stateful_batches-x"),
    bad(lambda: ref.gradient_profile(RNN, P, X, np.ones((4, 2, 2))), "d_output=array(shape=(4, 2, 2), dtype=float64): expected shape (T=4, B=2, P=3)", id="gradient_profile-d_output"),
    bad(lambda: ref.gradient_profile("rnn", P, X, _D4), "config='rnn' (type=str): expected a RecurrentConfig", id="gradient_profile-config"),
    bad(lambda: ref.pair_contributions(RNN, P, X, np.full((4, 2, 3), np.nan)), "d_output=array(shape=(4, 2, 3), dtype=float64): expected finite values", id="pair_contributions-nan"),
    bad(lambda: ref.richardson(_sq, np.ones(2), step=-1.0), "step=-1.0 (type=float): expected finite steps > 0", id="richardson-step"),
    bad(lambda: ref.richardson("f", np.ones(2)), "f='f' (type=str): expected a callable taking thetas (K, P) and returning (K,)", id="richardson-f"),
    bad(lambda: ref.richardson(_sq, np.array([np.nan, 1.0])), "theta=array(shape=(2,), dtype=float64): expected finite values", id="richardson-theta-nan"),
    bad(lambda: ref.spectral_norm(np.full((2, 2), np.nan)), "m=array(shape=(2, 2), dtype=float64): expected finite values", id="spectral_norm-nan"),
    bad(lambda: ref.spectral_norm(np.ones(3)), "m=array(shape=(3,), dtype=float64): expected a stack of matrices", id="spectral_norm-1d"),
    bad(lambda: ref.step_jacobians(RNN, P, X, np.zeros(3)), "h0=array(shape=(3,), dtype=float64): expected shape (layers*directions=1, B=2, P=3)", id="step_jacobians-h0"),
    bad(lambda: ref.step_jacobians(None, P, X), "config=None (type=NoneType): expected a RecurrentConfig", id="step_jacobians-config"),
    bad(lambda: ref.window_starts(_HALF, 4), "expected a deterministic scheme; a randomized one has no fixed window", id="window_starts-randomized"),
    bad(lambda: ref.window_starts(_SUB2, 0), "T=0 (type=int): expected an integer >= 1", id="window_starts-T"),
]


# The property layer's public functions (completeness, issue 13). Rows that need torch refuse
# their argument before torch is imported, so they also run where torch is not installed.
import importlib  # noqa: E402

from bpttcheck import properties as props  # noqa: E402
from bpttcheck.properties import oracle as _oracle  # noqa: E402
from bpttcheck.properties.oracle import TargetError  # noqa: E402

_cmp = importlib.import_module("bpttcheck.properties.compare")  # props.compare is shadowed by the submodule
_TOL = implementation_tolerance()
_CASE = make_case(RNN, T=3, B=2)
_HIST = ref.RandomizedHistory((0.5,) * 3)
_noop = lambda *a, **k: None  # noqa: E731


def _a_check(**kw):
    return props.PropertyCheck(**dict(dict(name="n", strategy=None, body=lambda case: []), **kw))


BAD_INPUTS += [
    bad(lambda: props.Tolerance(-1.0, 0.0, "why"), "atol=-1.0 (type=float): expected a real number >= 0", id="tolerance_cls-atol-negative"),
    bad(lambda: props.Tolerance(1e-12, float("nan"), "why"), "rtol=nan (type=float): expected a real number >= 0", id="tolerance_cls-rtol-nan"),
    bad(lambda: props.Tolerance("1", 0.0, "why"), "atol='1' (type=str): expected a real number >= 0", id="tolerance_cls-atol-str"),
    bad(lambda: props.Tolerance(0.0, 0.0, 3), "why=3 (type=int): expected a string saying where the allowance comes from", id="tolerance_cls-why"),
    bad(lambda: props.Tolerance(0.0, 0.0, "w", precision="float99"), "precision='float99': expected one of float64, float32", id="tolerance_cls-precision"),
    bad(lambda: _cmp.compare("q", np.ones(3), np.ones(3), 1e-6), "tolerance=1e-06 (type=float): expected a Tolerance", id="compare-tolerance-float"),
    bad(lambda: _cmp.assert_close("q", np.ones(3), np.ones(3), None), "tolerance=None (type=NoneType): expected a Tolerance", id="assert_close-tolerance-none"),
    bad(lambda: props.builtin_checks("tpu"), "device='tpu': expected 'cpu', 'cuda' or 'all'", TargetError, id="builtin_checks-device"),
    bad(lambda: props.builtin_checks(0), "device=0: expected 'cpu', 'cuda' or 'all'", TargetError, id="builtin_checks-device-int"),
    bad(lambda: props.cases(max_T=0), "max_T=0 (type=int): expected an integer >= 1", id="cases-max_T"),
    bad(lambda: props.cases(regime="chaotic"), "regime='chaotic' (type=str): expected one of 'contractive', 'critical', 'expansive'", id="cases-regime"),
    bad(lambda: props.cases(regime=(None, "hot")), "regime[1]='hot' (type=str): expected one of 'contractive'", id="cases-regime-tuple"),
    bad(lambda: props.cases(magnitude="huge"), "magnitude='huge' (type=str): expected one of 'unit', 'saturated', 'overflow'", id="cases-magnitude"),
    bad(lambda: props.cases(dtype=np.int32), "dtype=<class 'numpy.int32'> (type=type): expected a floating-point or complex dtype", id="cases-dtype"),
    bad(lambda: props.cases(RNN), "config_strategy=RecurrentConfig(cell='rnn'", id="cases-config-not-a-strategy"),
    bad(lambda: props.cases(lengths="yes"), "lengths='yes' (type=str): expected True or False", id="cases-lengths"),
    bad(lambda: props.configs(cells=("transformer",)), "cells[0]='transformer' (type=str): expected one of 'rnn', 'lstm', 'gru'", id="configs-cells"),
    bad(lambda: props.configs(cells="rnn"), "cells='rnn' (type=str): expected a non-empty tuple of names among 'rnn', 'lstm', 'gru'", id="configs-cells-str"),
    bad(lambda: props.configs(activations=("gelu",)), "activations[0]='gelu' (type=str): expected one of 'tanh', 'relu', 'identity', 'sigmoid'", id="configs-activations"),
    bad(lambda: props.configs(max_layers=0), "max_layers=0 (type=int): expected an integer >= 1", id="configs-max_layers"),
    bad(lambda: props.configs(bidirectional="no"), "bidirectional='no' (type=str): expected True or False", id="configs-bidirectional"),
    bad(lambda: make_case(RNN, T=2, B=2, dtype="float99"), "dtype='float99' (type=str): expected a floating-point or complex dtype", id="make_case-dtype-unknown"),
    bad(lambda: props.check_gradients(RNN, P, X, amplification=-1), "amplification=-1: expected a finite number >= 0", id="check_gradients-amplification-negative"),
    bad(lambda: props.check_gradients(RNN, P, X, amplification=float("inf")), "amplification=inf: expected a finite number >= 0", id="check_gradients-amplification-inf"),
    bad(lambda: props.check_gradients(RNN, P, X, backward_fn=lambda *a: {}), "backward_fn returned a dict with keys []: expected the keys ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0', 'input', 'h0'] (missing", id="check_gradients-backward_fn-empty-dict"),
    bad(lambda: props.check_gradients(RNN, P, X, backward_fn=_noop), "backward_fn returned None (type=NoneType): expected a dict of gradients name -> array", id="check_gradients-backward_fn-none"),
    bad(lambda: props.check_gradients(RNN, P, X, backward_fn=lambda *a: {n: "g" for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "input", "h0")}), "backward_fn returned weight_ih_l0='g' (type=str): expected a numeric array", id="check_gradients-backward_fn-str"),
    bad(lambda: props.check_gradients(RNN, P, X, backward_fn=3), "backward_fn=3 (type=int): expected a callable with the signature of the reference's backward()", id="check_gradients-backward_fn-not-callable"),
    bad(lambda: props.check_gradients(RNN, P, X, forward_fn="f"), "forward_fn='f' (type=str): expected a callable with the signature of the reference's forward()", id="check_gradients-forward_fn-not-callable"),
    bad(lambda: props.check_gradients("rnn", P, X), "config='rnn' (type=str): expected a RecurrentConfig", id="check_gradients-config"),
    bad(lambda: props.check_gradients(RNN, P, X, method="fd"), "method='fd' (type=str): expected one of 'complex', 'central', 'richardson', 'direction'", id="check_gradients-method"),
    bad(lambda: props.check_gradients(RNN, P, X, wrt=["nope"]), "wrt=('nope',) (type=tuple): expected distinct names among", id="check_gradients-wrt"),
    bad(lambda: props.check_gradients(RNN, P, np.full_like(X, np.nan)), "x=array(shape=(4, 2, 2), dtype=float64): expected finite values", id="check_gradients-x-nan"),
    bad(lambda: props.check_gradients(RNN, P, X, method="direction", n_directions=0), "n_directions=0 (type=int): expected an integer >= 1", id="check_gradients-n_directions"),
    bad(lambda: props.check_case_gradients("case"), "case='case' (type=str): expected a Case (from make_case() or the cases() strategy)", id="check_case_gradients-case"),
    bad(lambda: props.check_case_gradients(_CASE, method="x"), "method='x' (type=str): expected one of 'complex', 'central', 'richardson', 'direction'", id="check_case_gradients-method"),
    bad(lambda: props.check_clipping("f", [np.ones(2)], 1.0), "clip_fn='f' (type=str): expected a callable clip_fn(grads, max_norm, norm_type)", id="check_clipping-clip_fn"),
    bad(lambda: props.check_clipping(_noop, None, 1.0), "grads=None (type=NoneType): expected a list of NumPy arrays or scalars (None entries allowed)", id="check_clipping-grads"),
    bad(lambda: props.check_clipping(_noop, [np.ones(2)], -1.0), "max_norm=-1.0 (type=float): expected a finite real number > 0", id="check_clipping-max_norm"),
    bad(lambda: props.check_clipping(_noop, [np.ones(2)], 1.0, "l2"), "norm_type='l2' (type=str): expected a real number", id="check_clipping-norm_type"),
    bad(lambda: props.check_clipping(_noop, [np.ones(2)], 1.0), "clip_fn returned None (type=NoneType): expected a pair (clipped grads, total norm)", id="check_clipping-returns-none"),
    bad(lambda: props.check_loss_gradient("f", P), "loss_and_grad='f' (type=str): expected a callable loss_and_grad(params) -> (loss, grads)", id="check_loss_gradient-fn"),
    bad(lambda: props.check_loss_gradient(_noop, None), "params=None (type=NoneType): expected a dict of parameter name -> NumPy array", id="check_loss_gradient-params"),
    bad(lambda: props.check_loss_gradient(_noop, P), "loss_and_grad(params) returned None (type=NoneType): expected a pair (loss, grads)", id="check_loss_gradient-returns-none"),
    bad(lambda: props.check_loss_gradient(lambda p: (0.0, {}), P), "loss_and_grad(params) returned grads with keys []: expected every parameter name (missing", id="check_loss_gradient-returns-no-grads"),
    bad(lambda: props.gradient_lists(max_tensors=0), "max_tensors=0 (type=int): expected an integer >= 1", id="gradient_lists-max_tensors"),
    bad(lambda: props.gradient_lists(nonfinite="yes"), "nonfinite='yes' (type=str): expected True or False", id="gradient_lists-nonfinite"),
    bad(lambda: props.statistical_test(_HALF, _CASE, 1, 0), "n_samples=1 (type=int): expected an integer >= 2", id="statistical_test-n_samples"),
    bad(lambda: props.statistical_test(_SUB2, _CASE, 10, 0), "scheme=Subsequence(k=2) (type=Subsequence): expected Randomized or RandomizedHistory", id="statistical_test-scheme"),
    bad(lambda: props.statistical_test(_HIST, _CASE, 10, 0, alpha=2.0), "alpha=2.0 (type=float): expected a probability in (0, 1)", id="statistical_test-alpha"),
    bad(lambda: props.statistical_test(_HIST, "case", 10, 0), "case='case' (type=str): expected a Case", id="statistical_test-case"),
    bad(lambda: props.statistical_test(_HIST, _CASE, 10, 0, sampler="uniform"), "sampler='uniform' (type=str): expected None or a callable sampler(rng, n, T)", id="statistical_test-sampler"),
    bad(lambda: props.check_exactly_unbiased("run", _HIST, _CASE), "run='run' (type=str): expected a callable run(scheme, case, xi=...)", id="check_exactly_unbiased-run"),
    bad(lambda: props.check_exactly_unbiased(_noop, "s", _CASE), "scheme='s' (type=str): expected Randomized or RandomizedHistory", id="check_exactly_unbiased-scheme"),
    bad(lambda: props.check_exactly_unbiased(_noop, _HIST, None), "case=None (type=NoneType): expected a Case", id="check_exactly_unbiased-case"),
    bad(lambda: props.check_exactly_unbiased(_noop, _HALF, _CASE), "pis has length 4: expected T=3 probabilities", id="check_exactly_unbiased-scheme-length"),
    bad(lambda: _a_check(body="body"), "body='body' (type=str): expected None or a callable", id="propertycheck-body"),
    bad(lambda: _a_check(name=3), "name=3 (type=int): expected a non-empty string naming the property", id="propertycheck-name"),
    bad(lambda: _a_check(max_examples=0), "max_examples=0 (type=int): expected an integer >= 1", id="propertycheck-max_examples"),
    bad(lambda: _a_check(skip=True), "skip=True (type=bool): expected a string: the reason to skip, or ''", id="propertycheck-skip"),
    bad(lambda: props.run_check("check"), "check='check' (type=str): expected a PropertyCheck (e.g. from builtin_checks() or target_checks())", id="run_check-check"),
    bad(lambda: props.run_check(_a_check(), profile="fast"), "profile='fast': expected one of dev, ci, thorough", ValueError, id="run_check-profile"),
    bad(lambda: props.run_check(_a_check(), seed="x"), "seed='x' (type=str): expected an integer", id="run_check-seed"),
    bad(lambda: props.verify("checks"), "checks='checks' (type=str): expected a list of PropertyCheck", id="verify_list-checks-str"),
    bad(lambda: props.verify([_a_check(), 1]), "checks[1]=1 (type=int): expected a PropertyCheck", id="verify_list-checks-entry"),
    bad(lambda: props.verify([], profile="fast"), "profile='fast': expected one of dev, ci, thorough", ValueError, id="verify_list-profile"),
    bad(lambda: props.compare_results(_CASE, {}, precision="float99"), "precision='float99' (type=str): expected one of 'float64'", id="compare_results-precision"),
    bad(lambda: props.compare_with_torch("case"), "case='case' (type=str): expected a Case (from make_case() or the cases() strategy)", id="compare_with_torch-case"),
    bad(lambda: props.torch_layer("rnn", P), "config='rnn' (type=str): expected a RecurrentConfig", id="torch_layer-config"),
    bad(lambda: props.run_torch_layer("m", _CASE), "module='m' (type=str): expected a torch module, e.g. from torch_layer()", id="run_torch_layer-module"),
    bad(lambda: _oracle.load_target("torch.nn.GRU"), "target='torch.nn.GRU': expected 'module.path:attribute'", TargetError, id="load_target-no-colon"),
    bad(lambda: _oracle.load_target(3), "target=3: expected 'module.path:attribute'", TargetError, id="load_target-int"),
    bad(lambda: _oracle.target_checks("torch.nn:GRU", dtypes=("float99",)), "dtype='float99': expected one of float64, float32", TargetError, id="target_checks-dtypes-unknown"),
    bad(lambda: _oracle.target_checks("torch.nn:GRU", device="tpu"), "device='tpu': expected 'cpu', 'cuda' or 'all'", TargetError, id="target_checks-device"),
    bad(lambda: _oracle.target_checks("torch.nn:GRU", dtypes="float64"), "dtypes='float64' (type=str): expected a tuple of precision names", TargetError, id="target_checks-dtypes-str"),
]

_needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
BAD_INPUTS += [
    bad(lambda: props.compare_with_torch(_CASE, device="tpu"), "device='tpu' (type=str): expected a torch device such as 'cpu' or 'cuda'", id="compare_with_torch-device", marks=_needs_torch),
    bad(lambda: props.torch_layer(RNN, P, dtype="float99"), "dtype='float99' (type=str): expected the name of a torch floating-point dtype", id="torch_layer-dtype", marks=_needs_torch),
    bad(lambda: props.torch_layer(RNN, P, device="tpu"), "device='tpu' (type=str): expected a torch device such as 'cpu' or 'cuda'", id="torch_layer-device", marks=_needs_torch),
    bad(lambda: props.run_torch_layer(props.torch_layer(RNN, _CASE.params), "case"), "case='case' (type=str): expected a Case", id="run_torch_layer-case", marks=_needs_torch),
    bad(lambda: _oracle.target_checks("torch.nn:GRU", kind="cnn"), "kind='cnn': expected one of module, cell, step, clip, tbptt, randomized, numpy, jax", TargetError, id="target_checks-kind", marks=_needs_torch),
]


# The symbolic layer's documented functions (docs/symbolic.md). SymPy is imported when a row
# runs, not when this module is collected.
def _sym(module):
    return importlib.import_module(f"bpttcheck.symbolic.{module}")


def _m(*values):
    return importlib.import_module("sympy").Matrix(values)


_R1 = RecurrentConfig("rnn", 1, 2)
_L1 = RecurrentConfig("lstm", 1, 2)
_P1 = init_params(_R1, np.random.default_rng(0))
_X1 = np.random.default_rng(1).standard_normal((2, 1, 1))  # (T=2, B=1, D=1)
_CT1 = np.ones((2, 1, 2))
_BI = RecurrentConfig("rnn", 1, 2, bidirectional=True)
_sym_params = lambda c: _sym("cells").param_symbols(c)  # noqa: E731
BAD_INPUTS += [
    bad(lambda: _sym("oracle").pair_sum("rnn", _P1, _X1, _CT1), "config='rnn' (type=str): expected a RecurrentConfig", id="sym_pair_sum-config"),
    bad(lambda: _sym("oracle").pair_sum(_R1, _P1, _X1, np.ones((2, 1, 3))), "cotangent=array(shape=(2, 1, 3), dtype=float64): expected shape (T=2, B=1, P=2)", id="sym_pair_sum-cotangent"),
    bad(lambda: _sym("oracle").pair_sum(_R1, _P1, np.full_like(_X1, np.nan), _CT1), "x=array(shape=(2, 1, 1), dtype=float64): expected finite values", id="sym_pair_sum-x-nan"),
    bad(lambda: _sym("oracle").pair_sum(_R1, {}, _X1, _CT1), "params={} (type=dict): expected exactly the keys ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0']", id="sym_pair_sum-params"),
    bad(lambda: _sym("oracle").pair_sum(_R1, _P1, _X1, _CT1, dps=10), "dps=10 (type=int): expected an integer >= 50", id="sym_pair_sum-dps"),
    bad(lambda: _sym("oracle").pair_sum(_R1, _P1, _X1, _CT1, weights="w"), "weights='w' (type=str): expected shape (T+1=3 columns, T=2 rows)", id="sym_pair_sum-weights"),
    bad(lambda: _sym("oracle").pair_sum(_BI, init_params(_BI, np.random.default_rng(0)), _X1, np.ones((2, 1, 4))), "expected bidirectional=False; the symbolic layer transcribes unidirectional stacks", id="sym_pair_sum-bidirectional"),
    bad(lambda: _sym("oracle").unrolled_gradients(_R1, _P1, _X1, _CT1, dps=0), "dps=0 (type=int): expected an integer >= 50", id="unrolled_gradients-dps"),
    bad(lambda: _sym("oracle").unrolled_gradients(_R1, _P1, _X1, _CT1, h0=np.ones(5)), "h0=array(shape=(5,), dtype=float64): expected shape (num_layers=1, B=1, P=2)", id="unrolled_gradients-h0"),
    bad(lambda: _sym("oracle").rounded_gradients(_R1, _P1, _X1, _CT1, bits=0), "bits=0 (type=int): expected an integer >= 8", id="rounded_gradients-bits"),
    bad(lambda: _sym("oracle").rounded_gradients(_R1, _P1, _X1, _CT1, bits="53"), "bits='53' (type=str): expected an integer >= 8", id="rounded_gradients-bits-str"),
    bad(lambda: _sym("oracle").error_in_eps(np.ones(3), np.ones(4), np.ones(4)), "actual (3,), expected (4,), scale (4,): expected one shape", id="error_in_eps-shapes"),
    bad(lambda: _sym("oracle").error_in_eps("a", np.ones(3), np.ones(3)), "actual='a' (type=str): expected an array of float64 gradients", id="error_in_eps-actual-str"),
    bad(lambda: _sym("oracle").flatten_params("rnn", _P1), "config='rnn' (type=str): expected a RecurrentConfig", id="flatten_params-config"),
    bad(lambda: _sym("oracle").flatten_params(_R1, dict(_P1, weight_hh_l0=np.ones((3, 3)))), "weight_hh_l0=array(shape=(3, 3), dtype=float64): expected shape (2, 2)", id="flatten_params-shape"),
    bad(lambda: _sym("oracle").check_data(_R1, _X1[0], None, None, _CT1), "x=array(shape=(1, 1), dtype=float64): expected shape (T, B, input_size=1)", id="check_data-x"),
    bad(lambda: _sym("oracle").check_data(_R1, _X1, None, None, None), "cotangent=None (type=NoneType): expected a NumPy array of shape (T=2, B=1, P=2)", id="check_data-cotangent"),
    bad(lambda: _sym("oracle").step_model(_R1, "exact"), "field='exact' (type=str): expected a Field, e.g. field_for(60) or Field(exact=True)", id="step_model-field"),
    bad(lambda: _sym("oracle").step_model(_BI, _sym("precision").Field(exact=True)), "expected num_layers=1 and bidirectional=False", id="step_model-config"),
    bad(lambda: _sym("derive").derivation(cell="cnn"), "cell='cnn' (type=str): expected one of 'rnn', 'lstm', 'gru'", id="derivation-cell"),
    bad(lambda: _sym("derive").derivation(nonlinearity="gelu"), "nonlinearity='gelu' (type=str): expected one of 'tanh', 'relu', 'identity', 'sigmoid'", id="derivation-nonlinearity"),
    bad(lambda: _sym("derive").derivation(T=0), "T=0 (type=int): expected an integer >= 1", id="derivation-T"),
    bad(lambda: _sym("derive").derivation(fmt="html"), "fmt='html' (type=str): expected one of 'latex', 'markdown'", id="derivation-fmt"),
    bad(lambda: _sym("derive").derivation(inputs="1"), "inputs='1' (type=str): expected an integer >= 1", id="derivation-inputs"),
    bad(lambda: _sym("derive").equations(cell="cnn"), "cell='cnn' (type=str): expected one of 'rnn', 'lstm', 'gru'", id="equations-cell"),
    bad(lambda: _sym("derive").equations(cell="gru", nonlinearity="relu"), "nonlinearity='relu' (type=str): expected 'tanh' for cell='gru'", id="equations-gru-relu"),
    bad(lambda: _sym("derive").equations(hidden=0), "hidden=0 (type=int): expected an integer >= 1", id="equations-hidden"),
    bad(lambda: _sym("cells").check_single_layer("rnn"), "config='rnn' (type=str): expected a RecurrentConfig", id="check_single_layer-type"),
    bad(lambda: _sym("cells").check_single_layer(RecurrentConfig("rnn", 1, 2, num_layers=2)), "expected num_layers=1 and bidirectional=False", id="check_single_layer-layers"),
    bad(lambda: _sym("cells").param_symbols("rnn"), "config='rnn' (type=str): expected a RecurrentConfig", id="param_symbols-config"),
    bad(lambda: _sym("cells").state_sizes(None), "config=None (type=NoneType): expected a RecurrentConfig", id="state_sizes-config"),
    bad(lambda: _sym("cells").transcription("cnn"), "cell='cnn' (type=str): expected one of 'rnn', 'lstm', 'gru'", id="transcription-cell"),
    bad(lambda: _sym("cells").vector_symbols(3, 2), "prefix=3 (type=int): expected a non-empty string naming the symbols", id="vector_symbols-prefix"),
    bad(lambda: _sym("cells").vector_symbols("x", "2"), "n='2' (type=str): expected an integer >= 0", id="vector_symbols-n"),
    bad(lambda: _sym("cells").step("rnn", {}, _m(1), _m(1, 1)), "config='rnn' (type=str): expected a RecurrentConfig", id="step-config"),
    bad(lambda: _sym("cells").step(_R1, {}, _m(1), _m(1, 1)), "params={} (type=dict): expected a dict with exactly the keys ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0']", id="step-params"),
    bad(lambda: _sym("cells").step(_R1, _sym_params(_R1), _m(1, 2), _m(1, 1)), "x=Matrix of shape (2, 1): expected a SymPy Matrix of shape (1, 1)", id="step-x"),
    bad(lambda: _sym("cells").step(_R1, _sym_params(_R1), _m(1), _m(1)), "h=Matrix of shape (1, 1): expected a SymPy Matrix of shape (2, 1)", id="step-h"),
    bad(lambda: _sym("cells").elman_step(_R1, _sym_params(_R1), np.ones(1), _m(1, 1)), "x=array(shape=(1,), dtype=float64): expected a SymPy Matrix of shape (1, 1)", id="elman_step-x-numpy"),
    bad(lambda: _sym("cells").elman_step(_L1, _sym_params(_L1), _m(1), _m(1, 1), _m(1, 1)), "expected cell='rnn', the one cell this function transcribes", id="elman_step-cell"),
    bad(lambda: _sym("cells").gru_step(_R1, _sym_params(_R1), _m(1), _m(1, 1)), "expected cell='gru', the one cell this function transcribes", id="gru_step-cell"),
    bad(lambda: _sym("cells").lstm_step(_L1, _sym_params(_L1), _m(1), _m(1, 1), None), "c=None (type=NoneType): expected a SymPy Matrix of shape (2, 1)", id="lstm_step-c"),
    bad(lambda: _sym("cells").lstm_step(_R1, _sym_params(_R1), _m(1), _m(1, 1), _m(1, 1)), "expected cell='lstm', the one cell this function transcribes", id="lstm_step-cell"),
]


# A second pass over the reference (issue 13): NaN/inf where finite values are needed, integer
# arrays, parameters or results that do not belong together, and what a user's rule returns.
_PL = init_params(LSTM, np.random.default_rng(0))
_RESL = forward(LSTM, _PL, X)
_PAIRS = ref.pair_contributions(RNN, P, X, _D4)
BAD_INPUTS += [
    bad(lambda: forward(RNN, P, X, np.full((1, 2, 3), np.nan)), "h0=array(shape=(1, 2, 3), dtype=float64): expected finite values (found nan at index (0, 0, 0))", id="forward-h0-nan"),
    bad(lambda: forward(RNN, dict(P, bias_ih_l0=np.full(3, np.inf)), X), "bias_ih_l0=array(shape=(3,), dtype=float64): expected finite values (found inf at index (0,))", id="forward-param-inf"),
    bad(lambda: forward(RNN, dict(P, bias_ih_l0=np.ones(3, dtype=int)), X), "bias_ih_l0=array(shape=(3,), dtype=int64): expected a floating-point or complex array", id="forward-param-int"),
    bad(lambda: forward(RNN, dict(P, extra=np.ones(3)), X), "expected exactly ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0'] for rnn/tanh, D=2, H=3 (missing [], unexpected ['extra'])", id="forward-params-extra-key"),
    bad(lambda: backward(P, RES, np.full((4, 2, 3), np.nan)), "d_output=array(shape=(4, 2, 3), dtype=float64): expected finite values", id="backward-d_output-nan"),
    bad(lambda: backward(P, RES, np.ones((4, 2, 3), dtype=int)), "d_output=array(shape=(4, 2, 3), dtype=int64): expected a floating-point or complex array", id="backward-d_output-int"),
    bad(lambda: backward(_PL, _RESL, None, None, np.ones((1, 2, 4))), "d_c_n=array(shape=(1, 2, 4), dtype=float64): expected shape (layers*directions=1, B=2, hidden_size=3)", id="backward-d_c_n-lstm-shape"),
    bad(lambda: backward(P, RES, Y, crossing=_noop), "crossing returned None (type=NoneType) at t=3: expected a pair (dh, dc) shaped like its inputs (dh (2, 3), dc None)", id="backward-crossing-returns-none"),
    bad(lambda: backward(P, RES, Y, crossing=lambda t, dh, dc: (dh[:1], dc)), "at t=3: expected a pair (dh, dc) shaped like its inputs (dh (2, 3), dc None)", id="backward-crossing-returns-wrong-shape"),
    bad(lambda: ref.truncated_backward(RNN, P, X, np.ones((4, 2, 2)), _SUB2), "d_output=array(shape=(4, 2, 2), dtype=float64): expected shape (T=4, B=2, P=3)", id="truncated-d_output-shape"),
    bad(lambda: ref.truncated_backward(RNN, P, X, _D4, _HALF, xi=np.ones(3)), "expected real multipliers of shape (T=4,) or (N >= 1, T=4)", id="truncated-xi-length"),
    bad(lambda: ref.randomized_backward(RNN, P, X, _D4, _HALF, rng=0), "rng=0 (type=int): expected a numpy.random.Generator, e.g. numpy.random.default_rng(0)", id="randomized_backward-rng"),
    bad(lambda: ref.randomized_backward(RNN, P, X, _D4, ref.Randomized((0.5,) * 3), rng=np.random.default_rng(0)), "pis has length 3: expected T=4 probabilities", id="randomized_backward-pis-length"),
    bad(lambda: ref.randomized_backward(RNN, P, X, _D4, _SUB2, rng=np.random.default_rng(0)), "scheme=Subsequence(k=2) (type=Subsequence): expected a randomized scheme", id="randomized_backward-deterministic"),
    bad(lambda: ref.sample_xi(_HALF, None, 4), "rng=None (type=NoneType): expected a numpy.random.Generator", id="sample_xi-rng"),
    bad(lambda: ref.sample_xi(_HALF, np.random.default_rng(0), 4, n=0), "n=0 (type=int): expected an integer >= 1", id="sample_xi-n"),
    bad(lambda: ref.exact_moments(RNN, P, X, _D4, _SUB2), "scheme=Subsequence(k=2) (type=Subsequence): expected a randomized scheme", id="exact_moments-deterministic"),
    bad(lambda: ref.independent_moments(_PAIRS, (0.5,) * 3), "pis has length 3: expected T=4 probabilities", id="independent_moments-pis-length"),
    bad(lambda: ref.independent_moments(_PAIRS, (0.0,) * 4), "pis[0]=0.0 (type=float): expected a probability in (0, 1]", id="independent_moments-pis-zero"),
    bad(lambda: ref.pair_sum(RNN, P, X, _D4, np.zeros(3, dtype=int)), "expected a window function or a sequence of T=4 integers (got 3)", id="pair_sum-window-length"),
    bad(lambda: ref.Window((0, -1, 0, 0)).window(4), "f(1)=-1: expected 0 <= f(t) <= t=1", id="window-negative"),
    bad(lambda: ref.Randomized(()), "pis=() (type=tuple): expected at least one probability in (0, 1]", id="randomized-empty"),
    bad(lambda: ref.RandomizedHistory((1.5,)), "run_probs[0]=1.5 (type=float): expected a probability in (0, 1]", id="randomizedhistory-above-one"),
    bad(lambda: ref.elman_bound(RNN, P, [-1]), "lags=array(shape=(1,), dtype=int64): expected integers >= 0", id="elman_bound-lags-negative"),
    bad(lambda: ref.elman_bound(LSTM, _PL, [1]), "cell='lstm' (type=str): expected 'rnn'; the σ_max bound holds for the Elman RNN only", id="elman_bound-lstm"),
    bad(lambda: ref.recurrent_sigma_max(dict(P, weight_hh_l0=np.full((3, 3), np.nan))), "params['weight_hh_l0']=array(shape=(3, 3), dtype=float64): expected finite values", id="sigma_max-nan"),
    bad(lambda: ref.singular_values(np.full((2, 2), np.nan)), "m=array(shape=(2, 2), dtype=float64): expected finite values", id="singular_values-nan"),
    bad(lambda: ref.train_sgd(RNN, P, X, Y, lr=-1.0), "lr=-1.0 (type=float): expected a finite number > 0", id="train_sgd-lr"),
    bad(lambda: ref.train_sgd(RNN, P, X, np.ones((4, 2))), "target=array(shape=(4, 2), dtype=float64): expected shape (T=4, B=2, K=3)", id="train_sgd-target"),
    bad(lambda: ref.clip_by_global_norm(_G, 0.0), "max_norm=0.0 (type=float): expected a finite real number > 0", id="clip-max_norm-zero"),
    bad(lambda: ref.clip_by_global_norm({"a": np.array([1, 2])}, 1.0), "grads['a']=array(shape=(2,), dtype=int64): expected a real floating-point array", id="clip-int-gradient"),
    bad(lambda: ref.adjoint_clipping("1"), "max_norm='1' (type=str): expected a finite real number > 0", id="adjoint_clipping-max_norm-str"),
    bad(lambda: ref.central_difference(lambda t: t, np.ones(2)), "f returned array(shape=(8, 2), dtype=float64): expected shape (8,), one value per row", id="central-f-shape"),
    bad(lambda: ref.complex_step(lambda t: np.abs(t).sum(axis=1), np.ones(2)), "for complex input: expected a complex array; f discarded the imaginary part", id="complex-f-real"),
    bad(lambda: ref.directional_derivative(_sq, np.ones(2), np.ones((2, 3))), "directions=array(shape=(2, 3), dtype=float64): expected shape (n, P=2)", id="directional-directions-shape"),
    bad(lambda: ref.NetworkLoss(RNN, P, X, d_output=Y, wrt=["input", "input"]), "wrt=('input', 'input') (type=tuple): expected distinct names", id="networkloss-wrt-duplicate"),
    bad(lambda: ref.NetworkLoss(RNN, P, X), "d_output, d_h_n, d_c_n and loss are all None: expected a loss or at least one cotangent", id="networkloss-no-cotangent"),
    bad(lambda: ref.stateful_backward(RNN, P, X, Y, 0), "batch_size=0 (type=int): expected an integer >= 1", id="stateful-batch_size"),
    bad(lambda: loss_and_grad(LossSpec("mse"), Y, np.full_like(Y, np.nan)), "target=array(shape=(4, 2, 3), dtype=float64): expected finite values", id="loss-target-nan"),
    bad(lambda: loss_and_grad(LossSpec("mse"), np.full_like(Y, np.nan), Y), "output=array(shape=(4, 2, 3), dtype=float64): expected finite values", id="loss-output-nan"),
    bad(lambda: loss_and_grad(LossSpec("cross_entropy"), Y, np.full((4, 2), -1)), "target=array(shape=(4, 2), dtype=int64): expected integer class labels of shape (T=4, B=2) in [0, 3)", id="loss-labels-negative"),
    bad(lambda: init_params(RNN, np.random.default_rng(0), scale=float("nan")), "scale=nan (type=float): expected a finite number >= 0", id="init-scale-nan"),
    bad(lambda: RecurrentConfig("rnn", True, 3), "input_size=True (type=bool): expected an integer >= 1", id="config-input_size-bool"),
    bad(lambda: ref.from_stateful_batches(np.ones((4, 2, 2)), 3), "X has 4 samples: expected a multiple of batch_size=3", id="from_stateful_batches-batch_size"),
    bad(lambda: ref.free_running(RNN, P, _RO, np.full((2, 2), np.nan), 3), "x0=array(shape=(2, 2), dtype=float64): expected finite values", id="free_running-x0-nan"),
    bad(lambda: ref.generation_backward(P, _RO, _GEN, np.ones((3, 2, 3))), "d_outputs=array(shape=(3, 2, 3), dtype=float64): expected shape (T=3, B=2, K=2)", id="generation_backward-d_outputs"),
    bad(lambda: ref.generation_backward(P, _RO, "gen", np.ones((3, 2, 2))), "result='gen' (type=str): expected a GenerationResult", id="generation_backward-result"),
    bad(lambda: ref.encoder_decoder_backward(P, P, "res", Y), "result='res' (type=str): expected an EncoderDecoderResult", id="encoder_decoder-result"),
    bad(lambda: ref.history_statistics(None), "history=None (type=NoneType): expected a TrainingHistory (from train_sgd)", id="history_statistics-none"),
]


# The rest of the documented symbolic API: truncation tables, reverse mode, rendering, and the
# checks against the exact oracle (properties.symbolic_checks).
_a = lambda: importlib.import_module("sympy").Symbol("a")  # noqa: E731
_symchecks = lambda: importlib.import_module("bpttcheck.properties.symbolic_checks")  # noqa: E731
BAD_INPUTS += [
    bad(lambda: _sym("truncation").full(5, 3), "t=5 (type=int): expected an integer <= 2", id="sym_full-t"),
    bad(lambda: _sym("truncation").pair_weights(0), "T=0 (type=int): expected an integer >= 1", id="pair_weights-T"),
    bad(lambda: _sym("truncation").pair_weights(3, "w"), "window='w' (type=str): expected a callable f(t, T) or a list of T=3 integers", id="pair_weights-window"),
    bad(lambda: _sym("truncation").pair_weights(3, lambda t, T: -1), "expected 0 <= f(t) <= t for every t, got f(0)=-1", id="pair_weights-window-negative"),
    bad(lambda: _sym("truncation").randomized_weights([1, -1]), "xi[1]=-1 (type=int): expected a multiplier >= 0", id="randomized_weights-negative"),
    bad(lambda: _sym("truncation").randomized_weights("ab"), "xi='ab' (type=str): expected a length-T sequence of multipliers", id="randomized_weights-str"),
    bad(lambda: _sym("truncation").randomized_weights([[1, 2]]), "xi=[[1, 2]] (type=list): expected a length-T sequence of multipliers", id="randomized_weights-nested"),
    bad(lambda: _sym("truncation").sliding_window(0), "k=0 (type=int): expected an integer >= 1", id="sym_sliding_window-k"),
    bad(lambda: _sym("truncation").subsequence("2"), "k='2' (type=str): expected an integer >= 1", id="sym_subsequence-k"),
    bad(lambda: _sym("truncation").williams_peng(1, 3), "h=1 (type=int): expected h >= h_prime=3", id="sym_williams_peng-h-below-h_prime"),
    bad(lambda: _sym("truncation").window_function("f", 3), "window='f' (type=str): expected a callable f(t, T) or a list of T=3 integers", id="window_function-f"),
    bad(lambda: _sym("reverse").gradient(_a() ** 2, "a"), "wrt='a' (type=str): expected a list (or Matrix) of SymPy symbols", id="sym_gradient-wrt-str"),
    bad(lambda: _sym("reverse").gradient("a", [_a()]), "expr='a' (type=str): expected a SymPy expression", id="sym_gradient-expr-str"),
    bad(lambda: _sym("reverse").gradient(_a() ** 2, [_a() + 1]), "wrt[0]=a + 1 (type=Add): expected a SymPy Symbol", id="sym_gradient-wrt-expression"),
    bad(lambda: _sym("reverse").jacobian(3, [_a()]), "outputs=3 (type=int): expected a list of SymPy expressions or a column Matrix", id="jacobian-outputs"),
    bad(lambda: _sym("reverse").jacobian([_a()], _a()), "wrt=a (type=Symbol): expected a list (or Matrix) of SymPy symbols", id="jacobian-wrt-symbol"),
    bad(lambda: _sym("render").render_markdown(3, "out.png"), "text=3 (type=int): expected the Markdown text of bpttcheck derive (a string)", id="render_markdown-text"),
    bad(lambda: _sym("render").render_markdown("# a", "out.png", width=-1), "width=-1.0 (type=float): expected a finite number > 0", id="render_markdown-width"),
    bad(lambda: _sym("render").render_markdown("# a", "out.png", dpi=0), "dpi=0 (type=int): expected an integer >= 1", id="render_markdown-dpi"),
    bad(lambda: _symchecks().check_against_oracle(_R1, _P1, _X1, _CT1, grads="g"), "grads='g' (type=str): expected None or a dict of gradients name -> array", id="check_against_oracle-grads-str"),
    bad(lambda: _symchecks().check_against_oracle(_R1, _P1, _X1, _CT1, grads={}), "grads has keys []: expected the keys ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0', 'input', 'h0'] (missing", id="check_against_oracle-grads-empty"),
    bad(lambda: _symchecks().check_against_oracle("rnn", _P1, _X1, _CT1), "config='rnn' (type=str): expected a RecurrentConfig", id="check_against_oracle-config"),
    bad(lambda: _symchecks().check_against_oracle(_R1, _P1, _X1, _CT1, weights=np.ones((2, 2))), "weights=array(shape=(2, 2), dtype=float64): expected shape (T+1=3 columns, T=2 rows)", id="check_against_oracle-weights"),
    bad(lambda: _symchecks().check_lambdified(_R1, _P1, _X1, _CT1, grads={}), "grads has keys []: expected the keys", id="check_lambdified-grads-empty"),
    bad(lambda: _symchecks().check_lambdified(_R1, _P1, _X1[0], _CT1), "x=array(shape=(1, 1), dtype=float64): expected shape (T, B, input_size=1)", id="check_lambdified-x"),
    bad(lambda: _symchecks().oracle_allowance(_R1, 2, "oracle"), "oracle='oracle' (type=str): expected the OracleResult of bpttcheck.symbolic.oracle.pair_sum()", id="oracle_allowance-oracle"),
    bad(lambda: _symchecks().oracle_tolerance_eps("rnn", 3), "config='rnn' (type=str): expected a RecurrentConfig", id="oracle_tolerance_eps-config"),
    bad(lambda: _symchecks().oracle_tolerance_eps(_R1, 0), "T=0 (type=int): expected an integer >= 1", id="oracle_tolerance_eps-T"),
    bad(lambda: _symchecks().reference_gradients(_R1, _P1, _X1, _CT1, scheme="s"), "scheme='s' (type=str): expected a truncation scheme", id="reference_gradients-scheme"),
    bad(lambda: _symchecks().reference_gradients("rnn", _P1, _X1, _CT1), "config='rnn' (type=str): expected a RecurrentConfig", id="reference_gradients-config"),
    bad(lambda: _symchecks().torch_gradients("rnn", _P1, _X1, _CT1), "config='rnn' (type=str): expected a RecurrentConfig", id="torch_gradients-config"),
    bad(lambda: _symchecks().torch_gradients(_R1, _P1, _X1, np.ones((2, 1, 3))), "cotangent=array(shape=(2, 1, 3), dtype=float64): expected shape (T=2, B=1, P=2)", id="torch_gradients-cotangent"),
]


# The strategies' and the tolerance policy's helpers, a second pass (issue 13).
BAD_INPUTS += [
    bad(lambda: make_case(RNN, T=2, B=2, seed=-1), "seed=-1 (type=int): expected an integer >= 0", id="make_case-seed-negative"),
    bad(lambda: make_case(RNN, T=2, B=2, seed="0"), "seed='0' (type=str): expected an integer >= 0", id="make_case-seed-str"),
    bad(lambda: make_case(RNN, T=2, B=2, batch_first="yes"), "batch_first='yes' (type=str): expected True or False", id="make_case-batch_first"),
    bad(lambda: make_case(RNN, T=2, B=2, with_h0="yes"), "with_h0='yes' (type=str): expected True or False", id="make_case-with_h0"),
    bad(lambda: make_case(RNN, T=2, B=2, unbatched=True), "unbatched=True (type=bool): expected False for B=2", id="make_case-unbatched-B"),
    bad(lambda: make_case(RNN, T=2, B=2, sigma_max=-1.0), "sigma_max=-1.0 (type=float): expected a finite number > 0", id="make_case-sigma_max"),
    bad(lambda: scale_recurrent_weights("rnn", P, 1.0), "config='rnn' (type=str): expected a RecurrentConfig", id="scale_recurrent-config"),
    bad(lambda: scale_recurrent_weights(RNN, {"weight_hh_l0": np.ones(3)}, 1.0), "params['weight_hh_l0']=array(shape=(3,), dtype=float64): expected shape (rows, columns)", id="scale_recurrent-weight-1d"),
    bad(lambda: sigma_for_regime("critical", 1.0, 0), "rng=0 (type=int): expected a numpy.random.Generator", id="sigma_for_regime-rng"),
    bad(lambda: finite_difference_tolerance(np.array([np.nan])), "error_estimate=array(shape=(1,)): expected finite error estimates", id="fd-tolerance-nan"),
    bad(lambda: finite_difference_tolerance(np.ones(3), reference=1e-12), "reference=1e-12 (type=float): expected None or the Tolerance of the analytic side", id="fd-tolerance-reference"),
    bad(lambda: implementation_tolerance(T=2.5), "T=2.5 (type=float): expected an integer >= 1", id="tolerance-T-float"),
    bad(lambda: implementation_tolerance(magnitude="m"), "magnitude='m': expected None or a real array of Σ|terms| per element", id="tolerance-magnitude"),
    bad(lambda: props.check_gradients(RNN, P, X, context=3), "context=3 (type=int): expected None or a string for the failure message", id="check_gradients-context"),
    bad(lambda: precision_of("float99"), "dtype='float99': expected a floating-point or complex dtype", id="precision_of-unknown"),
    bad(lambda: props.rounding_sensitivity("case"), "case='case' (type=str): expected a Case", id="rounding_sensitivity-case"),
    bad(lambda: props.rounding_sensitivity(_CASE, "float99"), "precision='float99' (type=str): expected one of 'float64'", id="rounding_sensitivity-precision"),
    bad(lambda: props.rounding_sensitivity(_CASE, draws=0), "draws=0 (type=int): expected an integer >= 1", id="rounding_sensitivity-draws"),
    bad(lambda: props.rounding_sensitivity(_CASE, seed="x"), "seed='x' (type=str): expected an integer >= 0", id="rounding_sensitivity-seed"),
    bad(lambda: props.rounding_sensitivity(_CASE, compute=3), "compute=3 (type=int): expected None or a function case -> dict", id="rounding_sensitivity-compute"),
    bad(lambda: props.compare_results("case", {}), "case='case' (type=str): expected a Case", id="compare_results-case"),
    bad(lambda: props.compare_results(_CASE, None), "got=None (type=NoneType): expected a dict of the implementation's results", id="compare_results-got"),
    bad(lambda: props.compare(3, np.zeros(2), np.zeros(2), implementation_tolerance()), "quantity=3 (type=int): expected the quantity's name as a string", id="compare-quantity"),
    bad(lambda: props.compare("q", np.zeros(2), np.array(["a", "b"]), implementation_tolerance()), "expected=array(shape=(2,), dtype=<U1): expected an array of numbers", id="compare-expected"),
]


@pytest.mark.parametrize("call, exc, fragment", BAD_INPUTS)
def test_bad_input_is_rejected_with_a_clear_message(call, exc, fragment):
    with pytest.raises(exc, match=re.escape(fragment)) as info:
        call()
    # Every message says what was expected, and never leaks a NumPy/Python internals message.
    assert "expected" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_table_is_large_enough():
    assert len(BAD_INPUTS) >= 20


# --------------------------------------------------------------------------- the API's keyword options
# (issue 13, isolation helper): verify_target's and bpttcheck.check's keywords, each rejected before
# anything runs, by the option table's own validation (the same message as on the command line).

from bpttcheck import check as _check  # noqa: E402
from bpttcheck.properties.oracle.api import verify_target as _verify  # noqa: E402

_GRU = "torch.nn:GRU"
BAD_OPTIONS = [
    bad(lambda: _verify(_GRU, device="tpu"), "device='tpu': expected one of cpu, cuda, all", ValueError, id="verify-device"),
    bad(lambda: _verify(_GRU, device=0), "device=0 (type=int): expected a string", ValueError, id="verify-device-int"),
    bad(lambda: _verify(_GRU, seed="abc"), "seed='abc': expected an integer", ValueError, id="verify-seed-str"),
    bad(lambda: _verify(_GRU, seed=1.5), "seed=1.5 (type=float): expected an integer", ValueError, id="verify-seed-float"),
    bad(lambda: _verify(_GRU, seed=True), "seed=True (type=bool): expected an integer", ValueError, id="verify-seed-bool"),
    bad(lambda: _verify(_GRU, profile="fast"), "profile='fast': expected one of dev, ci, thorough", ValueError, id="verify-profile"),
    bad(lambda: _verify(_GRU, profile=3), "profile=3 (type=int): expected a string", ValueError, id="verify-profile-int"),
    bad(lambda: _verify(123), "spec=123 (type=int): expected a target: 'module:attribute'", ValueError, id="verify-spec-int"),
    bad(lambda: _verify([_GRU, 1.5]), "spec=1.5 (type=float): expected a target", ValueError, id="verify-spec-list-float"),
    bad(lambda: _verify(""), "target='': expected 'module.path:attribute'", ValueError, id="verify-spec-empty"),
    bad(lambda: _verify(_GRU, timeout=float("nan")), "timeout=nan: expected a positive, finite number of seconds", ValueError, id="verify-timeout-nan"),
    bad(lambda: _verify(_GRU, timeout=0), "timeout=0: expected a positive, finite number of seconds", ValueError, id="verify-timeout-0"),
    bad(lambda: _verify(_GRU, timeout=-1), "timeout=-1: expected a positive, finite number of seconds", ValueError, id="verify-timeout-negative"),
    bad(lambda: _verify(_GRU, timeout=float("inf")), "timeout=inf: expected a positive, finite number", ValueError, id="verify-timeout-inf"),
    bad(lambda: _verify(_GRU, timeout="soon"), "timeout='soon': expected a number of seconds", ValueError, id="verify-timeout-str"),
    bad(lambda: _verify(_GRU, memory="lots"), "memory='lots': expected a size such as 8G", ValueError, id="verify-memory-str"),
    bad(lambda: _verify(_GRU, memory=-1), "memory=-1: expected a size such as 8G", ValueError, id="verify-memory-negative"),
    bad(lambda: _verify(_GRU, memory=1000), "memory=1000: expected a size such as 8G, 512M or a number of bytes (>= 64M)", ValueError, id="verify-memory-tiny"),
    bad(lambda: _verify(_GRU, memory=True), "memory=True (type=bool): expected a size", ValueError, id="verify-memory-bool"),
    bad(lambda: _verify(_GRU, in_process="maybe"), "in_process='maybe': expected a boolean", ValueError, id="verify-in_process"),
    bad(lambda: _verify(_GRU, in_process=[1]), "in_process=[1]: expected a boolean", ValueError, id="verify-in_process-list"),
    bad(lambda: _check(_GRU, device="tpu"), "device='tpu': expected one of cpu, cuda, all", ValueError, id="check-device"),
    bad(lambda: _check(_GRU, seed="abc"), "seed='abc': expected an integer", ValueError, id="check-seed"),
    bad(lambda: _check(_GRU, profile="fast"), "profile='fast': expected one of dev, ci, thorough", ValueError, id="check-profile"),
    bad(lambda: _check(123), "spec=123 (type=int): expected a target", ValueError, id="check-spec-int"),
    bad(lambda: _check(_GRU, timeout=float("nan")), "timeout=nan: expected a positive, finite number", ValueError, id="check-timeout-nan"),
    bad(lambda: _check(_GRU, timeout=-1), "timeout=-1: expected a positive, finite number", ValueError, id="check-timeout-negative"),
    bad(lambda: _check(_GRU, memory="8X"), "memory='8X': expected a size such as 8G", ValueError, id="check-memory"),
    bad(lambda: _check(_GRU, in_process="maybe"), "in_process='maybe': expected a boolean", ValueError, id="check-in_process"),
    bad(lambda: _check(_GRU, timeot=3), "check() got unknown keyword 'timeot'; expected one of", ValueError, id="check-unknown-keyword"),
    bad(lambda: _verify(_GRU, kind="cnn"), "kind='cnn': expected one of module, cell, step, clip, tbptt, randomized, numpy, jax", ValueError, id="verify-kind"),
    bad(lambda: _verify(_GRU, kind=3), "kind=3 (type=int): expected a string", ValueError, id="verify-kind-int"),
    bad(lambda: _verify(_GRU, dtypes=("float99",)), "dtype='float99': expected one of float64, float32", ValueError, id="verify-dtypes"),
    bad(lambda: _verify(_GRU, select=3), "select=3 (type=int): expected a string", ValueError, id="verify-select-int"),
    bad(lambda: _verify(_GRU, skip_ids=3), "skip_ids=3 (type=int): expected a list of check ids", ValueError, id="verify-skip_ids-int"),
    bad(lambda: _verify(_GRU, xfail_ids="module/*"), "xfail_ids='module/*' (type=str): expected a list of check ids", ValueError, id="verify-xfail_ids-str"),
    bad(lambda: _verify(_GRU, progress="yes"), "progress='yes' (type=str): expected None or a callable progress(text, end)", ValueError, id="verify-progress"),
    bad(lambda: _check(None), "target=None: expected the object to verify", ValueError, id="check-target-none"),
    bad(lambda: _check(_GRU, kind="cnn"), "kind='cnn': expected one of module, cell, step", ValueError, id="check-kind"),
    bad(lambda: _check(_GRU, raise_on_failure="no"), "raise_on_failure='no' (type=str): expected True or False", ValueError, id="check-raise_on_failure"),
]


@pytest.mark.parametrize("call, exc, fragment", BAD_OPTIONS)
def test_bad_api_option_is_rejected_with_a_clear_message(call, exc, fragment):
    with pytest.raises(exc, match=re.escape(fragment)) as info:
        call()
    assert "expected" in str(info.value)


# --------------------------------------------------------------------------- completeness (issue 13)
# Every public callable of the README's API has at least one row above, or an exemption below
# that says why it has none. See the module docstring for how a row's id names what it covers.

import inspect  # noqa: E402
import pathlib  # noqa: E402

# The layers' public modules (their __all__), and the symbolic modules docs/symbolic.md presents
# as the Python API (bpttcheck.symbolic's own __all__ lists submodules, not callables), with
# properties.symbolic_checks, the new home of the deprecated symbolic.checks.
PUBLIC_MODULES = (
    "bpttcheck",
    "bpttcheck.reference",
    "bpttcheck.properties",
    "bpttcheck.properties.oracle",
    "bpttcheck.symbolic.oracle",
    "bpttcheck.symbolic.derive",
    "bpttcheck.symbolic.cells",
    "bpttcheck.symbolic.truncation",
    "bpttcheck.symbolic.reverse",
    "bpttcheck.symbolic.render",
    "bpttcheck.properties.symbolic_checks",
)

# Row id prefixes (the text before the first '-') that abbreviate a public name. A prefix not
# listed here must be a public name itself (compared case-insensitively: "lossspec" is LossSpec).
ID_PREFIXES = {
    "config": "bpttcheck.reference.RecurrentConfig",
    "init": "bpttcheck.reference.init_params",
    "central": "bpttcheck.reference.central_difference",
    "clip": "bpttcheck.reference.clip_by_global_norm",
    "complex": "bpttcheck.reference.complex_step",
    "directional": "bpttcheck.reference.directional_derivative",
    "encoder_decoder": "bpttcheck.reference.encoder_decoder_backward",
    "fd": "bpttcheck.properties.finite_difference_tolerance",
    "loss": "bpttcheck.reference.loss_and_grad",
    "pseudo_matrix": "bpttcheck.reference.pseudo_matrix_forward",
    "scale_recurrent": "bpttcheck.properties.scale_recurrent_weights",
    "sigma_max": "bpttcheck.reference.recurrent_sigma_max",
    "stateful": "bpttcheck.reference.stateful_backward",
    "tolerance": "bpttcheck.properties.implementation_tolerance",
    "truncated": "bpttcheck.reference.truncated_backward",
    "verify": "bpttcheck.verify_target",
    "check": "bpttcheck.check",
    "pair_sum": "bpttcheck.reference.pair_sum",
    "sym_pair_sum": "bpttcheck.symbolic.oracle.pair_sum",
    "tolerance_cls": "bpttcheck.properties.Tolerance",
    "subsequence": "bpttcheck.reference.Subsequence",
    "sym_full": "bpttcheck.symbolic.truncation.full",
    "sym_sliding_window": "bpttcheck.symbolic.truncation.sliding_window",
    "sym_subsequence": "bpttcheck.symbolic.truncation.subsequence",
    "sym_williams_peng": "bpttcheck.symbolic.truncation.williams_peng",
    "sym_gradient": "bpttcheck.symbolic.reverse.gradient",
    "verify_list": "bpttcheck.properties.verify",
}

# Public callables with no row, each with the reason. Exceptions, and result types that only the
# library builds (a user receives them, never constructs them), take no user argument to check.
EXEMPT = {
    "bpttcheck.reference.InvalidArgument": "an exception class",
    "bpttcheck.reference.NonFiniteNorm": "an exception class",
    "bpttcheck.CheckFailed": "an exception class",
    "bpttcheck.NothingChecked": "an exception class",
    "bpttcheck.properties.Mismatch": "an exception class",
    "bpttcheck.properties.oracle.TargetError": "an exception class",
    "bpttcheck.reference.ForwardResult": "a result type: built by forward()",
    "bpttcheck.reference.ClipResult": "a result type: built by the clip_* functions",
    "bpttcheck.reference.ExactMoments": "a result type: built by exact_moments()",
    "bpttcheck.reference.GradientProfile": "a result type: built by gradient_profile()",
    "bpttcheck.reference.LossResult": "a result type: built by loss_and_grad()",
    "bpttcheck.reference.PairContributions": "a result type: built by pair_contributions()",
    "bpttcheck.reference.StepJacobians": "a result type: built by step_jacobians()",
    "bpttcheck.reference.TruncationResult": "a result type: built by truncated_backward()",
    "bpttcheck.reference.CellSpec": "a registry row: built by reference/cells, looked up with cell_spec()",
    "bpttcheck.reference.TruncationScheme": "a typing Protocol (the scheme interface), never called",
    "bpttcheck.reference.RandomizedScheme": "a typing Protocol (the randomized-scheme interface), never called",
    "bpttcheck.properties.Comparison": "a result type: built by compare()",
    "bpttcheck.CheckResult": "a result type: built by the checks",
    "bpttcheck.Report": "a result type: built by verify_target() and check()",
    "bpttcheck.Status": "an enum of verdicts",
    "bpttcheck.properties.UnbiasednessReport": "a result type: built by check_exactly_unbiased()",
    "bpttcheck.properties.LossClipsGradients": "an exception class (an AssertionError check_loss_gradient raises)",
    "bpttcheck.properties.Case": "a result type: built by make_case() and cases()",
    "bpttcheck.symbolic.oracle.OracleResult": "a result type: built by the oracle's functions",
    "bpttcheck.symbolic.oracle.clear_caches": "takes no arguments",
    "bpttcheck.reference.Full": "takes no arguments",
    "bpttcheck.reference.FiniteDifference": "a result type: built by central_difference() and its kin",
    "bpttcheck.properties.oracle.detect_kind": "takes any object: None means no kind is recognised (not an error)",
}



def _public_api() -> dict[str, object]:
    """Qualified name -> callable, one entry per object (the first module that exports it)."""
    api, seen = {}, set()
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        where = getattr(module, "_WHERE", None)
        for attr in module.__all__:
            value = getattr(module, attr)
            if inspect.ismodule(value) and where and attr in where:
                # A lazily exported name shadowed by its own submodule (properties.compare):
                # the function is the one the export table names.
                value = getattr(importlib.import_module(f"{name}.{where[attr]}"), attr)
            if not callable(value) or inspect.ismodule(value) or id(value) in seen:
                continue
            seen.add(id(value))
            api[f"{name}.{attr}"] = value
    return api


def _covered_name(row_id: str, api: dict[str, object]) -> str:
    prefix = row_id.split("-")[0]
    if prefix in ID_PREFIXES:
        return ID_PREFIXES[prefix]
    hits = [q for q in api if q.rsplit(".", 1)[1].lower() == prefix.lower()]
    assert len(hits) == 1, (
        f"row id {row_id!r}: its prefix {prefix!r} names {hits or 'no public callable'}; expected "
        "exactly one (add the prefix to ID_PREFIXES)"
    )
    return hits[0]


def test_readme_imports_are_in_the_enumerated_api():
    # What README.md's code blocks import from the layers is part of what PUBLIC_MODULES spans
    # (adapters for other frameworks are documented in docs/frameworks.md and tested there).
    readme = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
    api = _public_api()
    short = {q.rsplit(".", 1)[1] for q in api}
    for module, names in re.findall(r"from (bpttcheck[\w.]*) import ([\w, ]+)", readme):
        if ".adapters" in module or module.endswith("jax_checks"):
            continue
        for name in (n.strip() for n in names.split(",")):
            assert name in short or not callable(getattr(importlib.import_module(module), name)), (module, name)


# Where README.md's "Deprecated names" table points users to a module outside PUBLIC_MODULES,
# and why that module's functions need no row.
DEPRECATION_TARGETS_OUTSIDE = {
    "bpttcheck.bench.core": "the benchmark runners behind `bpttcheck bench` (CLI-validated options)",
    "bpttcheck.bench.symbolic": "the symbolic benchmarks behind `bpttcheck bench --group symbolic`",
    "bpttcheck.commands.diagnose": "the `bpttcheck diagnose` command (argparse validates its flags)",
    "bpttcheck.commands.derive": "the `bpttcheck derive` command (argparse validates its flags)",
}


def test_the_deprecated_names_point_to_covered_api():
    readme = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Deprecated names", 1)[1].split("\n## ", 1)[0]
    api = _public_api()
    covered = {_covered_name(p.id, api) for p in BAD_INPUTS + BAD_OPTIONS}
    targets = [name for row in section.splitlines() if row.startswith("| `bpttcheck.")
               for name in re.findall(r"`(bpttcheck\.[\w.]+)`", row.split("|")[2])]
    assert targets, "no deprecation rows found in README.md"
    for name in targets:
        if name in PUBLIC_MODULES or name in DEPRECATION_TARGETS_OUTSIDE:
            continue
        module, attr = name.rsplit(".", 1)
        value = getattr(importlib.import_module(module), attr)
        qualified = next((q for q, v in api.items() if v is value), None)
        assert qualified in covered, f"{name} (a deprecated name's replacement) has no row"


def test_every_exemption_says_why():
    for table in (EXEMPT, DEPRECATION_TARGETS_OUTSIDE):
        assert all(isinstance(why, str) and len(why) > 10 for why in table.values())


def test_every_public_callable_has_a_bad_input_row():
    api = _public_api()
    covered = {_covered_name(p.id, api) for p in BAD_INPUTS + BAD_OPTIONS}
    unknown = sorted(set(ID_PREFIXES.values()) - set(api))
    assert not unknown, f"ID_PREFIXES names what is not public: {unknown}"
    stale = sorted(set(EXEMPT) - set(api))
    assert not stale, f"EXEMPT names what is not public: {stale}"
    both = sorted(set(EXEMPT) & covered)
    assert not both, f"exempt yet covered (drop the exemption): {both}"
    missing = sorted(set(api) - covered - set(EXEMPT))
    assert not missing, f"{len(missing)} public callables without a row in BAD_INPUTS: {missing}"


def test_the_docs_state_the_row_count():
    root = pathlib.Path(__file__).resolve().parent.parent
    rows = len(BAD_INPUTS) + len(BAD_OPTIONS)
    readme = re.search(r"test_bad_input\.py` holds such rows for each public function and class \((\d+) in all\)", (root / "README.md").read_text())
    testing = re.search(r"test_bad_input\.py` is one table \((\d+) rows\)", (root / "docs" / "testing.md").read_text())
    assert readme and testing and int(readme[1]) == int(testing[1]) == rows, (rows, readme, testing)
