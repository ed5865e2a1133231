"""Hypothesis strategies for recurrent configurations, weights and whole test cases.

Sizes and T are drawn as small integers so a failure shrinks to the smallest T and sizes that
still fail; array values come from a drawn seed (which shrinks to 0), and the reproducer prints
the values themselves. W_hh is drawn with a chosen largest singular value σ_max (SPEC §6 states
the stability bounds in σ_max, not in the spectral radius): ``regime="contractive"`` gives
γ·σ_max < 1, ``"critical"`` γ·σ_max = 1, ``"expansive"`` γ·σ_max > 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from hypothesis import strategies as st

from bpttcheck.reference import GAMMA, RecurrentConfig, backward, forward, init_params
from bpttcheck.reference.activations import ACTIVATIONS
from bpttcheck.reference.cells import CELLS, cell_spec
from bpttcheck.reference.precision import get_precision, round_to
from bpttcheck.reference.validation import check_choice, check_int, check_lengths, check_positive_float, fail

from .reproduce import case_snippet

__all__ = [
    "REGIMES",
    "Case",
    "cases",
    "configs",
    "make_case",
    "scale_recurrent_weights",
    "sigma_for_regime",
]

REGIMES = ("contractive", "critical", "expansive")


def sigma_for_regime(regime: str, gamma: float, rng: np.random.Generator) -> float:
    """A σ_max(W_hh) in the regime: contractive γσ ∈ [0.3, 0.9], critical 1, expansive [1.2, 2.5]."""
    check_choice("regime", regime, REGIMES)
    check_positive_float("gamma", gamma)
    if regime == "contractive":
        return float(rng.uniform(0.3, 0.9)) / gamma
    if regime == "critical":
        return 1.0 / gamma
    return float(rng.uniform(1.2, 2.5)) / gamma


def scale_recurrent_weights(config: RecurrentConfig, params: dict, sigma_max: float) -> dict:
    """Rescale every ``weight_hh_*`` to the given largest singular value (whole stacked matrix)."""
    check_positive_float("sigma_max", sigma_max)
    if not isinstance(params, dict):
        fail("params", params, "a dict of parameter name -> array")
    out = dict(params)
    for name, w in params.items():
        if name.startswith("weight_hh"):
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
        if self.batch_first:
            parts.append("batch_first")
        if self.sigma_max is not None:
            parts.append(f"σ_max(W_hh)={self.sigma_max:.3g}")
        parts.append(str(self.dtype))
        return ", ".join(parts)

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
) -> Case:
    """A case drawn from ``seed``: weights ±1/√H (W_hh rescaled to ``sigma_max`` if given),
    standard normal inputs, initial states and cotangents. Padding positions of the output
    cotangent are zero (the output there is a constant 0)."""
    if not isinstance(config, RecurrentConfig):
        fail("config", config, "a RecurrentConfig")
    T, B = check_int("T", T, minimum=1), check_int("B", B, minimum=1)
    if np.dtype(dtype).kind not in "fc":
        fail("dtype", dtype, "a floating-point or complex dtype such as numpy.float64")
    if lengths is not None:
        lengths = check_lengths(lengths, T, B)  # the forward's own rule
    rng = np.random.default_rng(seed)
    params = init_params(config, rng, np.float64)
    if sigma_max is not None:
        params = scale_recurrent_weights(config, params, sigma_max)
    LD = config.num_layers * config.num_directions
    P, H = config.output_size, config.hidden_size
    x = rng.standard_normal((T, B, config.input_size))
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
    case = Case(config, params, x, h0, c0, lengths, batch_first, d_out, d_h, d_c, sigma_max, seed)
    return case.astype(dtype) if np.dtype(dtype) != np.float64 else case


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
) -> RecurrentConfig:
    """Recurrent configurations. ``bidirectional``/``proj``/``bias``: None draws, a bool fixes.

    ``cells`` defaults to every registered cell; checks against torch pass
    ``cells=TORCH_CELLS``. A nonlinearity is drawn (among ``activations``) only for a cell that
    takes one."""
    cell = draw(st.sampled_from(cells))
    spec = cell_spec(cell)
    hidden = draw(st.integers(1, max_size))
    use_proj = spec.projection and hidden > 1 and (draw(st.booleans()) if proj is None else proj)
    return RecurrentConfig(
        cell=cell,
        input_size=draw(st.integers(1, max_size)),
        hidden_size=hidden,
        num_layers=draw(st.integers(1, max_layers)),
        nonlinearity=(draw(st.sampled_from([a for a in activations if a in spec.nonlinearities]))
                      if spec.takes_nonlinearity else spec.nonlinearities[0]),
        bias=draw(st.booleans()) if bias is None else bias,
        bidirectional=draw(st.booleans()) if bidirectional is None else bidirectional,
        proj_size=draw(st.integers(1, hidden - 1)) if use_proj else 0,
    )


@st.composite
def cases(
    draw,
    config_strategy=None,
    max_T: int = 6,
    max_B: int = 3,
    dtype=np.float64,
    regime: str | None = None,
    lengths=None,
    batch_first=None,
) -> Case:
    """Whole cases. ``regime`` fixes the σ_max regime of W_hh (None: torch's default init);
    ``lengths``: None draws whether to pad, True/False forces it."""
    config = draw(config_strategy if config_strategy is not None else configs())
    T = draw(st.integers(1, max_T))
    B = draw(st.integers(1, max_B))
    seed = draw(st.integers(0, 2**32 - 1))
    sigma = None
    if regime is not None:
        gamma = GAMMA[config.nonlinearity] if cell_spec(config.cell).takes_nonlinearity else 1.0
        sigma = sigma_for_regime(regime, gamma, np.random.default_rng(seed + 1))
    use_lengths = draw(st.booleans()) if lengths is None else lengths
    lens = None
    if use_lengths and T > 1:
        lens = [draw(st.integers(1, T)) for _ in range(B)]
    bf = draw(st.booleans()) if batch_first is None else batch_first
    return make_case(config, T=T, B=B, seed=seed, dtype=dtype, sigma_max=sigma,
                     lengths=lens, batch_first=bf, with_h0=draw(st.booleans()))
