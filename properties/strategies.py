"""Hypothesis strategies for recurrent configurations, weights and whole test cases.

Sizes and T are drawn as small integers so a failure shrinks to the smallest T and sizes that
still fail; array values come from a drawn seed (which shrinks to 0), and the reproducer prints
the values themselves. W_hh is drawn with a chosen largest singular value σ_max (SPEC §6 states
the stability bounds in σ_max, not in the spectral radius): ``regime="contractive"`` gives
γ·σ_max < 1, ``"critical"`` γ·σ_max = 1, ``"expansive"`` γ·σ_max > 1.

A case's ``magnitude`` places its pre-activations: ``"unit"`` (torch's default scale),
``"saturated"`` (input weights and biases scaled so the median |pre-activation| of the first
layer is 15-40: every gate and tanh works in its flat tails) or ``"overflow"`` (|x| ~ 1e3: a
naive ``exp`` of a pre-activation overflows). ``unbatched`` marks a case whose target sees
torch's unbatched form — x (T, D), states (L·dirs, H), a cell's (D,) and (H,) — while the case
holds B = 1 and the reference runs batched (the conversion is at the edge, in the torch adapter).
``enforce_sorted`` marks padded lengths sorted longest first, packed with ``enforce_sorted=True``.
Which regions each check covers, per profile, is :mod:`bpttcheck.properties.case_space`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
import functools

import numpy as np
from hypothesis import strategies as st

from bpttcheck.reference import GAMMA, RecurrentConfig, backward, forward, init_params
from bpttcheck.reference.activations import ACTIVATIONS
from bpttcheck.reference.cells import CELLS, cell_spec
from bpttcheck.reference.precision import get_precision, round_to
from bpttcheck.reference.validation import (
    check_array, check_bool, check_choice, check_dtype, check_int, check_lengths, check_positive_float, fail,
)

from .reproduce import case_snippet

__all__ = [
    "MAGNITUDES",
    "REGIMES",
    "Case",
    "cases",
    "configs",
    "make_case",
    "scale_recurrent_weights",
    "sigma_for_regime",
]

REGIMES = ("contractive", "critical", "expansive")
MAGNITUDES = ("unit", "saturated", "overflow")

#: median |pre-activation| of the first layer in a "saturated" case (drawn in this range)
SATURATION = (15.0, 40.0)
#: the scale of the inputs of an "overflow" case: exp(1e3) = inf in float64 and in float32
OVERFLOW_INPUT_SCALE = 1e3


def sigma_for_regime(regime: str, gamma: float, rng: np.random.Generator) -> float:
    """A σ_max(W_hh) in the regime: contractive γσ ∈ [0.3, 0.9], critical 1, expansive [1.2, 2.5]."""
    check_choice("regime", regime, REGIMES)
    check_positive_float("gamma", gamma)
    if not isinstance(rng, np.random.Generator):
        fail("rng", rng, "a numpy.random.Generator, e.g. numpy.random.default_rng(0)")
    if regime == "contractive":
        return float(rng.uniform(0.3, 0.9)) / gamma
    if regime == "critical":
        return 1.0 / gamma
    return float(rng.uniform(1.2, 2.5)) / gamma


def scale_recurrent_weights(config: RecurrentConfig, params: dict, sigma_max: float) -> dict:
    """Rescale every ``weight_hh_*`` to the given largest singular value (whole stacked matrix)."""
    if not isinstance(config, RecurrentConfig):
        fail("config", config, "a RecurrentConfig")
    check_positive_float("sigma_max", sigma_max)
    if not isinstance(params, dict):
        fail("params", params, "a dict of parameter name -> array")
    out = dict(params)
    for name, w in params.items():
        if name.startswith("weight_hh"):
            check_array(f"params[{name!r}]", w, (None, None), dims=("rows", "columns"))
            s = np.linalg.svd(w.astype(np.float64), compute_uv=False)[0]
            out[name] = (w * (sigma_max / s if s > 0 else 0.0)).astype(w.dtype)
    return out


@dataclass(frozen=True)
class Case:
    """One fully specified check: a network, its weights, inputs and cotangents."""

    config: RecurrentConfig
    params: dict = field(repr=False)
    x: np.ndarray = field(repr=False)
    h0: np.ndarray | None = field(repr=False, default=None)
    c0: np.ndarray | None = field(repr=False, default=None)
    lengths: np.ndarray | None = None
    batch_first: bool = False
    d_output: np.ndarray | None = field(repr=False, default=None)
    d_h_n: np.ndarray | None = field(repr=False, default=None)
    d_c_n: np.ndarray | None = field(repr=False, default=None)
    sigma_max: float | None = None
    seed: int = 0
    magnitude: str = "unit"
    unbatched: bool = False
    enforce_sorted: bool = False

    @property
    def T(self) -> int:
        return self.x.shape[1] if self.batch_first else self.x.shape[0]

    @property
    def B(self) -> int:
        return self.x.shape[0] if self.batch_first else self.x.shape[1]

    @property
    def dtype(self) -> np.dtype:
        return self.x.dtype

    def describe(self) -> str:
        parts = [self.config.describe(), f"T={self.T}", f"B={self.B}"]
        if self.lengths is not None:
            parts.append(f"lengths={list(map(int, self.lengths))}")
            if self.enforce_sorted:
                parts.append("enforce_sorted=True")
        if self.unbatched:
            parts.append("unbatched input")
        if self.batch_first:
            parts.append("batch_first")
        if self.sigma_max is not None:
            parts.append(f"σ_max(W_hh)={self.sigma_max:.3g}")
        if self.magnitude == "saturated":
            parts.append("saturated pre-activations")
        elif self.magnitude == "overflow":
            parts.append("|x|~1e3")
        parts.append(str(self.dtype))
        return ", ".join(parts)

    def option_values(self) -> dict:
        """The case's option values (what a target may decline, see
        :func:`bpttcheck.properties.runner.option_values`): layers, bias, nonlinearity,
        direction, projection, layout, input form (Tensor, unbatched Tensor, PackedSequence and
        whether its lengths were sorted) and whether hx is given."""
        c = self.config
        values = {"num_layers": c.num_layers, "bias": bool(c.bias)}
        if cell_spec(c.cell).takes_nonlinearity:
            values["nonlinearity"] = c.nonlinearity
        values["bidirectional"] = bool(c.bidirectional)
        if c.proj_size:
            values["proj_size"] = "proj_size > 0"
        values["batch_first"] = bool(self.batch_first)
        if self.lengths is not None:
            values["input"] = "PackedSequence"
            values["enforce_sorted"] = bool(self.enforce_sorted)
        else:
            values["input"] = "unbatched Tensor" if self.unbatched else "Tensor"
        values["hx"] = "given" if self.h0 is not None else "None"
        return values

    def astype(self, dtype) -> "Case":
        conv = lambda a: None if a is None else a.astype(dtype)  # noqa: E731
        return replace(
            self,
            params={k: v.astype(dtype) for k, v in self.params.items()},
            x=conv(self.x), h0=conv(self.h0), c0=conv(self.c0),
            d_output=conv(self.d_output), d_h_n=conv(self.d_h_n), d_c_n=conv(self.d_c_n),
        )

    def rounded(self, precision) -> "Case":
        """The case with its weights, inputs and initial states rounded to the storage dtype of
        ``precision`` (a row of :mod:`bpttcheck.reference.precision` or its name): held in that
        dtype where NumPy has it, else as float64 arrays holding the rounded values. The
        reference then runs in float64 on exactly the values the target sees."""
        row = precision if hasattr(precision, "storage") else get_precision(precision)
        if row.numpy_dtype is not None:
            return self.astype(row.numpy_dtype)
        r = lambda a: round_to(a, row)  # noqa: E731
        return replace(self, params={k: r(v) for k, v in self.params.items()}, x=r(self.x), h0=r(self.h0),
                       c0=r(self.c0))

    def reference(self):
        """Reference forward and gradients: ``(ForwardResult, grads)``."""
        result = forward(self.config, self.params, self.x, self.h0, self.c0,
                         lengths=self.lengths, batch_first=self.batch_first)
        grads = backward(self.params, result, self.d_output, self.d_h_n, self.d_c_n)
        return result, grads

    def reproducer(self, check: str = "") -> str:
        """A stand-alone Python snippet rebuilding this case with its values (no Hypothesis)."""
        return case_snippet(self, check)


def make_case(
    config: RecurrentConfig,
    *,
    T: int,
    B: int,
    seed: int = 0,
    dtype=np.float64,
    sigma_max: float | None = None,
    with_h0: bool = True,
    lengths=None,
    batch_first: bool = False,
    with_state_cotangents: bool = True,
    magnitude: str = "unit",
    unbatched: bool = False,
    enforce_sorted: bool = False,
) -> Case:
    """A case drawn from ``seed``: weights ±1/√H (W_hh rescaled to ``sigma_max`` if given),
    standard normal inputs, initial states and cotangents. Padding positions of the output
    cotangent are zero (the output there is a constant 0). ``magnitude``, ``unbatched`` and
    ``enforce_sorted``: see the module docstring (an unbatched case has B = 1 and no lengths;
    ``enforce_sorted`` needs lengths sorted longest first)."""
    if not isinstance(config, RecurrentConfig):
        fail("config", config, "a RecurrentConfig")
    T, B = check_int("T", T, minimum=1), check_int("B", B, minimum=1)
    dtype = check_dtype("dtype", dtype)
    check_choice("magnitude", magnitude, MAGNITUDES)
    check_int("seed", seed, minimum=0)
    check_bool("with_h0", with_h0)
    check_bool("batch_first", batch_first)
    if lengths is not None:
        lengths = check_lengths(lengths, T, B)  # the forward's own rule
    if unbatched and (B != 1 or lengths is not None):
        fail("unbatched", unbatched, f"False for B={B}{' with lengths' if lengths is not None else ''}: "
             "an unbatched case holds one sequence (B=1) and no PackedSequence")
    if enforce_sorted and (lengths is None or np.any(np.diff(np.asarray(lengths)) > 0)):
        fail("enforce_sorted", enforce_sorted, "False unless lengths are given sorted longest first, "
             "as pack_padded_sequence(..., enforce_sorted=True) requires")
    rng = np.random.default_rng(seed)
    params = init_params(config, rng, np.float64)
    if sigma_max is not None:
        params = scale_recurrent_weights(config, params, sigma_max)
    LD = config.num_layers * config.num_directions
    P, H = config.output_size, config.hidden_size
    x = rng.standard_normal((T, B, config.input_size))
    if magnitude == "overflow":
        x *= OVERFLOW_INPUT_SCALE
    elif magnitude == "saturated":
        params = _saturate(params, x, float(rng.uniform(*SATURATION)))
    h0 = 0.5 * rng.standard_normal((LD, B, P)) if with_h0 else None
    carries_c = cell_spec(config.cell).has_cell_state
    c0 = 0.5 * rng.standard_normal((LD, B, H)) if with_h0 and carries_c else None
    d_out = rng.standard_normal((T, B, config.num_directions * P))
    if lengths is not None:
        lengths = np.asarray(lengths, dtype=np.int64)
        d_out *= (np.arange(T)[:, None] < lengths[None, :])[..., None]
    d_h = rng.standard_normal((LD, B, P)) if with_state_cotangents else None
    d_c = rng.standard_normal((LD, B, H)) if with_state_cotangents and carries_c else None
    if batch_first:
        x, d_out = x.transpose(1, 0, 2).copy(), d_out.transpose(1, 0, 2).copy()
    case = Case(config, params, x, h0, c0, lengths, batch_first, d_out, d_h, d_c, sigma_max, seed,
                magnitude=magnitude, unbatched=bool(unbatched), enforce_sorted=bool(enforce_sorted))
    return case.astype(dtype) if np.dtype(dtype) != np.float64 else case


def _saturate(params: dict, x: np.ndarray, target: float) -> dict:
    """Scale every ``weight_ih_*`` and bias by one factor so that the median |W_ih x + b| of the
    first layer is ``target`` (its inputs are x; the layers above see states of size ~1, so
    the same factor saturates them too). W_hh keeps its σ_max regime."""
    w = params["weight_ih_l0"]
    pre = x @ w.T
    for b in ("bias_ih_l0", "bias_hh_l0"):
        if b in params:
            pre = pre + params[b]
    median = float(np.median(np.abs(pre)))
    s = target / median if median > 0 else target
    return {k: (v * s if k.startswith(("weight_ih", "bias")) else v) for k, v in params.items()}


def _validated(check):
    """Check a strategy's arguments when it is built, not at its first draw: a composite
    strategy is lazy, so a bad argument would otherwise surface deep inside Hypothesis."""
    def wrap(strategy):
        @functools.wraps(strategy)
        def build(*args, **kwargs):
            check(*args, **kwargs)
            return strategy(*args, **kwargs)
        return build
    return wrap


def _optional_bool(name, value):
    if value is not None:
        check_bool(name, value)


def _names(name, value, allowed):
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, (tuple, list)) or not value:
        fail(name, value, "a non-empty tuple of names among " + ", ".join(repr(a) for a in allowed))
    for i, v in enumerate(value):
        check_choice(f"{name}[{i}]", v, allowed)


def _check_configs(cells=CELLS, activations=ACTIVATIONS, max_layers=2, max_size=4, bidirectional=None,
                   proj=None, bias=None, min_layers=1, min_size=1):
    _names("cells", cells, CELLS)
    _names("activations", activations, tuple(ACTIVATIONS))
    for name, value in (("max_layers", max_layers), ("max_size", max_size), ("min_layers", min_layers),
                        ("min_size", min_size)):
        check_int(name, value, minimum=1)
    for name, value in (("bidirectional", bidirectional), ("proj", proj), ("bias", bias)):
        _optional_bool(name, value)


def _check_cases(config_strategy=None, max_T=6, max_B=3, dtype=np.float64, regime=None, lengths=None,
                 batch_first=None, *, min_T=1, min_B=1, magnitude="unit", unbatched=False,
                 sorted_lengths=None, unequal_lengths=False, with_h0=None):
    if config_strategy is not None and not isinstance(config_strategy, st.SearchStrategy):
        fail("config_strategy", config_strategy, "None or a strategy of RecurrentConfig, e.g. configs(cells=('gru',))")
    for name, value in (("max_T", max_T), ("max_B", max_B), ("min_T", min_T), ("min_B", min_B)):
        check_int(name, value, minimum=1)
    check_dtype("dtype", dtype)
    for i, r in enumerate(regime if isinstance(regime, (tuple, list)) else [regime]):
        if r is not None:
            check_choice("regime" if not isinstance(regime, (tuple, list)) else f"regime[{i}]", r, REGIMES)
    check_choice("magnitude", magnitude, MAGNITUDES)
    for name, value in (("lengths", lengths), ("batch_first", batch_first), ("sorted_lengths", sorted_lengths),
                        ("with_h0", with_h0)):
        _optional_bool(name, value)
    check_bool("unbatched", unbatched)
    check_bool("unequal_lengths", unequal_lengths)


@_validated(_check_configs)
@st.composite
def configs(
    draw,
    cells=CELLS,
    activations=ACTIVATIONS,
    max_layers: int = 2,
    max_size: int = 4,
    bidirectional=None,
    proj=None,
    bias=None,
    min_layers: int = 1,
    min_size: int = 1,
) -> RecurrentConfig:
    """Recurrent configurations. ``bidirectional``/``proj``/``bias``: None draws, a bool fixes.

    ``cells`` defaults to every registered cell; checks against torch pass
    ``cells=TORCH_CELLS``. A nonlinearity is drawn (among ``activations``) only for a cell that
    takes one. ``proj=True`` always projects (hidden ≥ 2 for a cell with a projection), so a
    proj_size group never draws an unprojected case. Layers are drawn in
    [min_layers, max_layers] and shrink towards ``min_layers``; sizes in [min_size, max_size]."""
    cell = draw(st.sampled_from(cells))
    spec = cell_spec(cell)
    forced_proj = bool(proj) and spec.projection
    low = max(min_size, 2) if forced_proj else min_size
    hidden = draw(st.integers(low, max(low, max_size)))
    use_proj = spec.projection and hidden > 1 and (draw(st.booleans()) if proj is None else proj)
    return RecurrentConfig(
        cell=cell,
        input_size=draw(st.integers(min_size, max(min_size, max_size))),
        hidden_size=hidden,
        num_layers=draw(st.integers(min_layers, max(min_layers, max_layers))),
        nonlinearity=(draw(st.sampled_from([a for a in activations if a in spec.nonlinearities]))
                      if spec.takes_nonlinearity else spec.nonlinearities[0]),
        bias=draw(st.booleans()) if bias is None else bias,
        bidirectional=draw(st.booleans()) if bidirectional is None else bidirectional,
        proj_size=draw(st.integers(1, hidden - 1)) if use_proj else 0,
    )


def _gamma(config) -> float:
    return GAMMA[config.nonlinearity] if cell_spec(config.cell).takes_nonlinearity else 1.0


@_validated(_check_cases)
@st.composite
def cases(
    draw,
    config_strategy=None,
    max_T: int = 6,
    max_B: int = 3,
    dtype=np.float64,
    regime=None,
    lengths=None,
    batch_first=None,
    *,
    min_T: int = 1,
    min_B: int = 1,
    magnitude: str = "unit",
    unbatched: bool = False,
    sorted_lengths=None,
    unequal_lengths: bool = False,
    with_h0=None,
) -> Case:
    """Whole cases. ``regime`` fixes the σ_max regime of W_hh (None: torch's default init; a
    tuple draws one of its entries, None among them meaning the default init); ``lengths``:
    None draws whether to pad, True always pads (a PackedSequence even at T = 1), False never.

    The rest place the case in the space a check covers (:mod:`~bpttcheck.properties.case_space`):
    T in [min_T, max_T] and B in [min_B, max_B] (shrinking towards the minima); ``magnitude``
    (see the module docstring); ``unbatched`` (B = 1, torch's unbatched input form; never with
    lengths); ``sorted_lengths`` True sorts the lengths longest first and packs with
    ``enforce_sorted=True``, False keeps them in drawn order, None draws which; with
    ``unequal_lengths`` (and T ≥ 2, B ≥ 2) the lengths are not all equal; ``with_h0`` None
    draws whether hx is given."""
    config = draw(config_strategy if config_strategy is not None else configs())
    T = draw(st.integers(min_T, max(min_T, max_T)))
    B = 1 if unbatched else draw(st.integers(min_B, max(min_B, max_B)))
    seed = draw(st.integers(0, 2**32 - 1))
    if isinstance(regime, (tuple, list)):
        regime = draw(st.sampled_from(tuple(regime)))
    sigma = None
    if regime is not None:
        sigma = sigma_for_regime(regime, _gamma(config), np.random.default_rng(seed + 1))
    use_lengths = (draw(st.booleans()) if lengths is None else lengths) and not unbatched
    lens, ordered = None, False
    if use_lengths and (T > 1 or lengths is True):
        lens = [draw(st.integers(1, T)) for _ in range(B)]
        if unequal_lengths and T > 1 and B > 1 and len(set(lens)) == 1:
            lens[-1] = lens[-1] - 1 if lens[-1] > 1 else T  # one length differs from the others
        ordered = draw(st.booleans()) if sorted_lengths is None else bool(sorted_lengths)
        if ordered:
            lens = sorted(lens, reverse=True)
    bf = draw(st.booleans()) if batch_first is None else batch_first
    h0 = draw(st.booleans()) if with_h0 is None else with_h0
    return make_case(config, T=T, B=B, seed=seed, dtype=dtype, sigma_max=sigma, lengths=lens, batch_first=bf,
                     with_h0=h0, magnitude=magnitude, unbatched=unbatched, enforce_sorted=ordered)
