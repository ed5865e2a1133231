"""Every call form torch 2.13 accepts for its clipping functions, as cases of the clip kind.

torch's documented signatures (``torch/nn/utils/clip_grad.py``, 2.13):

    clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None) -> Tensor
    clip_grad_value_(parameters, clip_value, foreach=None) -> None

with ``parameters`` "an iterable of Tensors or a single Tensor" (a generator is consumed once:
torch makes a list of it first), ``norm_type`` a float that "can be 'inf' for infinity norm"
(torch calls ``float(norm_type)``), ``foreach`` None (foreach where supported, CPU included),
True (raises on devices without foreach kernels) or False. A :class:`ClipForm` is one way of
calling: the container (a list, a generator, a single Tensor), how ``norm_type`` is spelled
(float, int, the string ``'inf'``, ``float('inf')``), positional or keyword arguments,
``foreach`` left out / None / True / False, ``error_if_nonfinite`` left out / False / True, and an
int or a float ``max_norm``/``clip_value``. A :class:`ClipCase` is a form with its gradients
(float32/float64, shapes from 0-d up, None grads among them).

The main draw mixes every field at random; the coverage phases (:func:`clip_coverage`) make
sure each form is tried: a single Tensor, a generator, a list with None grads, 0-d tensors,
``'inf'`` and ``float('inf')`` over several non-zero gradients, the other p, each ``foreach``,
``error_if_nonfinite=True``, keyword calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from hypothesis import strategies as st

from .case_space import Phase, profile_key
from .clipping import gradient_lists

__all__ = ["CONTAINERS", "NORM_SPELLINGS", "ClipCase", "ClipForm", "clip_cases", "clip_coverage", "forms"]

CONTAINERS = ("list", "generator", "tensor")
NORM_TYPES = (2.0, 1.0, math.inf, 3.0, 0.5)
NORM_SPELLINGS = ("float", "int", "str")  # 2.0 / 2 / 'inf' (only inf is documented as a string)
MAX_NORMS = (1e-3, 0.5, 1.0, 10.0, 1e3)
OMITTED = "omitted"


@dataclass(frozen=True)
class ClipForm:
    """How the target is called (see the module docstring)."""

    container: str = "list"
    keywords: bool = False
    spelling: str = "float"
    foreach: object = OMITTED  # OMITTED, None, True or False
    error_if_nonfinite: object = OMITTED  # OMITTED, False or True
    int_threshold: bool = False

    def norm_argument(self, p: float):
        if self.spelling == "str" and math.isinf(p):
            return "inf"
        if self.spelling == "int" and float(p).is_integer():
            return int(p)
        return float(p)

    def threshold(self, value: float):
        return int(value) if self.int_threshold and float(value).is_integer() else float(value)

    def arguments(self, flavour: str, value: float, p: float | None):
        """``(args, kwargs)`` after ``parameters`` for a ``flavour`` ("norm"/"value") call."""
        first = "max_norm" if flavour == "norm" else "clip_value"
        named = {first: self.threshold(value)}
        if flavour == "norm":
            named["norm_type"] = self.norm_argument(p)
            if self.error_if_nonfinite is not OMITTED:
                named["error_if_nonfinite"] = self.error_if_nonfinite
        if self.foreach is not OMITTED:
            named["foreach"] = self.foreach
        if self.keywords:
            return (), named
        values = list(named.values())
        # positional up to the last given one: foreach after norm_type needs error_if_nonfinite
        if flavour == "norm" and self.foreach is not OMITTED and self.error_if_nonfinite is OMITTED:
            return tuple(values[:2]), {"foreach": self.foreach}
        return tuple(values), {}

    def parameters(self, params: list):
        """The ``parameters`` argument: the list itself, a generator over it, or its one Tensor."""
        if self.container == "generator":
            return (p for p in params)
        if self.container == "tensor":
            return params[0]
        return list(params)

    def source(self, flavour: str, value: float, p: float | None) -> str:
        """The call as a user writes it: ``fn(params[0], 1.0, norm_type='inf', foreach=True)``."""
        args, kwargs = self.arguments(flavour, value, p)
        first = {"list": "params", "generator": "(p for p in params)", "tensor": "params[0]"}[self.container]
        parts = [first] + [_literal(a) for a in args] + [f"{k}={_literal(v)}" for k, v in kwargs.items()]
        return f"fn({', '.join(parts)})"

    def option_values(self, flavour: str) -> dict:
        values = {"parameters": {"list": "a list", "generator": "a generator", "tensor": "a single Tensor"}[self.container]}
        if flavour == "norm":
            values["norm_type"] = {"float": "a float", "int": "an int", "str": "the string 'inf'"}[self.spelling]
            values["error_if_nonfinite"] = self.error_if_nonfinite if self.error_if_nonfinite is not OMITTED else False
        values["foreach"] = self.foreach if self.foreach is not OMITTED else None
        values["keywords"] = self.keywords
        return values


def _literal(v) -> str:
    """``repr`` that a snippet can run: ``float('inf')`` for an infinite float."""
    if isinstance(v, float) and math.isinf(v):
        return "float('inf')" if v > 0 else "-float('inf')"
    return repr(v)


@dataclass(frozen=True)
class ClipCase:
    """Gradients, the threshold, the norm type (None for value clipping) and the call form."""

    grads: list
    value: float
    norm_type: float | None
    form: ClipForm
    flavour: str = "norm"

    def option_values(self) -> dict:
        return self.form.option_values(self.flavour)

    def source(self) -> str:
        return self.form.source(self.flavour, self.value, self.norm_type)

    def describe(self) -> str:
        shapes = ", ".join("None" if g is None else f"{g.dtype.name}{list(g.shape)}" for g in self.grads)
        return f"{self.source()} with grads [{shapes}]"

    # the older tuple interface: grads, threshold, norm type
    def __iter__(self):
        return iter((self.grads, self.value, self.norm_type))


@st.composite
def forms(draw, container=None, keywords=None, spelling=None, foreach=None, error_if_nonfinite=None):
    """Call forms; a None argument draws that field (``foreach``/``error_if_nonfinite`` take
    their values, OMITTED included, when given)."""
    pick = lambda given, options: draw(st.sampled_from(options)) if given is None else given  # noqa: E731
    return ClipForm(
        container=pick(container, CONTAINERS),
        keywords=pick(keywords, (False, True)),
        spelling=pick(spelling, NORM_SPELLINGS),
        foreach=pick(foreach, (OMITTED, None, True, False)),
        error_if_nonfinite=pick(error_if_nonfinite, (OMITTED, False, True)),
        int_threshold=draw(st.booleans()),
    )


def _one_present(grads) -> list:
    """A single-Tensor call clips one tensor: the first non-finite gradient if there is one (a
    non-finite check keeps its point), else the first that is not None."""
    present = [g for g in grads if g is not None]
    return [next((g for g in present if not np.isfinite(g).all()), present[0])]


def _several_nonzero(min_count: int = 2):
    """Lists with at least ``min_count`` non-zero gradients whose largest entries differ."""
    from hypothesis.extra import numpy as hnp

    def tensor(dtype, k):
        width = 32 if dtype == np.float32 else 64
        values = hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=4),
                            elements=st.floats(-1, 1, width=width))
        return values.map(lambda a, k=k: np.asarray(a + dtype(k + 1) * (np.abs(a) < 0.1), dtype=dtype)
                          * dtype(2.0 ** k))

    one = lambda k: st.one_of(tensor(np.float32, k), tensor(np.float64, k))  # noqa: E731
    return st.integers(min_count, 4).flatmap(lambda n: st.tuples(*(one(k) for k in range(n))).map(list))


def _zero_d():
    value = st.tuples(st.floats(-1e3, 1e3, allow_nan=False, width=32), st.sampled_from((np.float32, np.float64)))
    return st.lists(value.map(lambda v: np.array(v[0], dtype=v[1])), min_size=1, max_size=4)


def _with_none(grads_strategy):
    return grads_strategy.flatmap(lambda gs: st.integers(0, len(gs)).map(lambda i: gs[:i] + [None] + gs[i:]))


@st.composite
def clip_cases(draw, flavour: str = "norm", nonfinite: bool = False, grads=None, form=None, norm_types=NORM_TYPES):
    """Whole clip cases: gradients (``grads`` strategy, default :func:`gradient_lists`), a
    threshold, a norm type and a form (``form`` strategy, default every field drawn)."""
    gs = draw(grads if grads is not None else gradient_lists(nonfinite=nonfinite))
    f = draw(form if form is not None else forms())
    if f.container == "tensor":
        gs = _one_present(gs)
    p = draw(st.sampled_from(norm_types)) if flavour == "norm" else None
    if f.spelling == "str" and flavour == "norm" and draw(st.booleans()):
        p = math.inf  # the string spelling exists for inf: draw it often
    return ClipCase(gs, draw(st.sampled_from(MAX_NORMS)), p, f, flavour)


#: cases per clip phase, per profile
CLIP_EXAMPLES = {"dev": 2, "ci": 4, "thorough": 25}


def clip_coverage(flavour: str = "norm", nonfinite: bool = False):
    """The coverage phases of a clip check: ``coverage(profile) -> [Phase]``."""

    def coverage(profile: str = "ci") -> list[Phase]:
        n = CLIP_EXAMPLES[profile_key(profile)]
        base = gradient_lists(nonfinite=nonfinite)
        several = _several_nonzero()
        if nonfinite:
            several = base
        phases = [
            ("a single Tensor", dict(form=forms(container="tensor"))),
            ("a generator", dict(form=forms(container="generator"))),
            ("a list with None grads", dict(grads=_with_none(base), form=forms(container="list"))),
            ("0-d tensors", dict(grads=_zero_d() if not nonfinite else base, form=forms(container="list"))),
            ("keyword arguments", dict(form=forms(keywords=True))),
        ]
        for fe in (None, True, False):
            phases.append((f"foreach={fe}", dict(form=forms(foreach=fe))))
        if flavour == "norm":
            phases.append(("norm_type='inf' over several non-zero gradients",
                           dict(grads=several, form=forms(spelling="str", container="list"), norm_types=(math.inf,))))
            phases.append(("norm_type=float('inf') over several non-zero gradients",
                           dict(grads=several, form=forms(spelling="float", container="list"), norm_types=(math.inf,))))
            phases.append(("p = 1, 2, 3, 0.5 over several non-zero gradients (int spellings where whole)",
                           dict(grads=several, form=forms(spelling="int", container="list"),
                                norm_types=(1.0, 2.0, 3.0, 0.5))))
            phases.append(("error_if_nonfinite=True", dict(form=forms(error_if_nonfinite=True))))
        return [Phase(label, clip_cases(flavour, nonfinite, **kw), n) for label, kw in phases]

    return coverage


def canonical(case: ClipCase) -> ClipCase:
    """The same gradients and threshold in torch's plainest form (a list, positional floats)."""
    return replace(case, form=ClipForm())
