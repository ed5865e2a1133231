"""Activations of the Elman RNN, written to stay holomorphic (complex-step safe).

Each activation has a forward map and the derivative as a function of the pre-activation
``a`` and the output ``h = φ(a)`` (whichever is cheaper), vectorised over whole arrays.
relu is analytic everywhere except at 0: its derivative uses the real part of ``a``.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np

__all__ = ["ACTIVATIONS", "GAMMA", "LOW_GATE", "LOW_SIGMOID", "activate", "derivative", "refine_low_sigmoid", "round_atoms",
           "rounding_noise", "sigmoid", "tanh_into"]

ACTIVATIONS = ("tanh", "relu", "identity", "sigmoid")

#: Bound γ on |φ′| per activation (SPEC §6): tanh, relu, identity 1; sigmoid 1/4.
GAMMA = {"tanh": 1.0, "relu": 1.0, "identity": 1.0, "sigmoid": 0.25}


#: from this many elements on, tanh goes through exp where NumPy's own tanh is scalar (see
#: :func:`tanh_into`)
EXP_TANH_MIN_SIZE = 1024


def _simd_tanh() -> bool:
    """Whether NumPy runs float64 ``tanh`` with SIMD on this CPU: its AVX-512 (SKX) kernels.

    Measured with numpy 2.4 (one thread, 8192-element arrays): with AVX-512, np.tanh costs
    0.8-0.9 ns an element and the exp form 1.3-1.5 ns; without it (AVX2 only) np.tanh is a
    scalar libm call, about twice the exp form's cost.
    """
    try:
        from numpy._core._multiarray_umath import __cpu_features__  # noqa: PLC0415 (NumPy's own table)
    except ImportError:  # another NumPy layout: assume the scalar path
        return False
    return bool(__cpu_features__.get("AVX512_SKX"))


#: True where NumPy's float64 tanh is vectorised here: real arrays then always use it
SIMD_TANH = _simd_tanh()


def tanh_into(a, out):
    """tanh(a) written into ``out`` (may alias ``a``).

    NumPy has SIMD float64 exp and tanh only on AVX-512; elsewhere both are scalar libm
    calls and tanh costs twice exp. For large arrays, tanh(a) = 1 − 2/(e^{2a} + 1) is then
    about 2× faster: its error is absolute (≤ 2u), not relative, near 0 — within every
    tolerance the suite applies — and it stays holomorphic (e^{2a} = inf gives exactly 1).
    Small arrays keep np.tanh: there one call beats four. Where NumPy's float64 tanh is
    vectorised (:data:`SIMD_TANH`: AVX-512) real arrays always use it — faster than the exp
    form and exact to 1-2 ulp, where the exp form is 2u absolute (up to ~2e4 ulp near 0);
    complex arrays (the complex step) keep the exp form from the size on.
    """
    if a.size < EXP_TANH_MIN_SIZE or (SIMD_TANH and a.dtype.kind == "f"):
        return np.tanh(a, out=out)
    np.multiply(a, 2.0, out=out)
    with np.errstate(over="ignore"):  # e^{2a} = inf is exact here: tanh = 1
        np.exp(out, out=out)
    out += 1.0
    np.divide(2.0, out, out=out)
    np.subtract(1.0, out, out=out)
    return out


def sigmoid(a, out=None):
    """σ(a) accurate to a few u *relative* for every a, overflow-free and holomorphic.

    With e = exp(−|a|) ≤ 1 (never overflows), σ = 1/(1+e) for a ≥ 0 and e/(1+e) for a < 0;
    the branch follows the sign of Re a, which is constant near any point off the imaginary
    axis, so complex steps see an analytic function. The form (1 + tanh(a/2))/2 is accurate
    only in absolute terms: at a = −40 (a saturated gate) it has lost every digit of σ ≈ 4e-18,
    and a tiny output o·tanh(c) computed from it differs from torch's by 1e-12 relative.
    """
    neg = a.real < 0
    e = np.where(neg, a, -a)
    np.exp(e, out=e)
    den = e + 1.0
    return np.divide(np.where(neg, e, 1.0), den, out=out)


#: below this pre-activation the cells' fast σ = ½ + ½·tanh(a/2) has lost more than ~10u
#: relative (σ(−4) ≈ 0.018: ~30u): :func:`refine_low_sigmoid` recomputes those gates
LOW_GATE = -4.0
#: σ(LOW_GATE): a layer whose gates all stay above it needs no refinement
LOW_SIGMOID = float(1.0 / (1.0 + np.exp(-LOW_GATE)))


def refine_low_sigmoid(out, pre) -> None:
    """Where ``pre`` < :data:`LOW_GATE`, overwrite ``out`` with σ(pre) computed as e/(1+e),
    e = exp(pre) (relative-accurate; ``out`` elsewhere is left as it is)."""
    low = pre.real < LOW_GATE
    e = np.exp(pre[low])
    out[low] = e / (1.0 + e)


def activate(name: str, a, out=None):
    """φ(a) for the named activation; ``out`` may alias ``a``."""
    if name == "tanh":
        return tanh_into(a, np.empty_like(a) if out is None else out)
    if name == "sigmoid":
        return sigmoid(a, out=out)
    if name == "relu":
        return np.multiply(a, a.real > 0, out=out)
    if out is None:
        return a.copy()
    if out is not a:
        out[...] = a
    return out


def derivative(name: str, a, h):
    """φ′(a), given the pre-activation ``a`` and ``h = φ(a)``."""
    if name == "tanh":
        return 1.0 - h * h
    if name == "sigmoid":
        return h - h * h
    if name == "relu":
        return (a.real > 0).astype(h.real.dtype)
    return np.ones_like(h)


# --------------------------------------------------------------------------- rounding noise

#: (δ, rng) while :func:`rounding_noise` is in force, else None
_NOISE: ContextVar = ContextVar("bpttcheck_rounding_noise", default=None)


@contextmanager
def rounding_noise(delta: float, rng):
    """Inside this block every cell moves each value of its activations (gates, tanh of the
    state, the new state of an Elman cell) by ``delta`` times a standard normal factor from
    ``rng``: a first-order model of the rounding of those values.

    Moving the data cannot sample it where the activations saturate: σ(a) ≈ 1 − 2e-15 does not
    change when a moves by an ulp, yet it is rounded to u of 1, and an LSTM state formed as
    f·c + i·g ≈ 1 − 1 carries that absolute rounding into a tiny h (seed 103 of the campaign:
    h = −3.29e-12 with 1.6e-5 relative error in both torch and the float64 reference). Normal
    factors rather than random signs: a state collecting ±u of 1 from each saturated step sums
    equal moves, and random signs cancel such a sum exactly in a fair share of draws (seeds 109
    and 151). See :func:`bpttcheck.properties.sensitivity.rounding_sensitivity`.
    """
    token = _NOISE.set((float(delta), rng))
    try:
        yield
    finally:
        _NOISE.reset(token)


def round_atoms(out):
    """``out`` moved in place by the :func:`rounding_noise` in force (a no-op outside one)."""
    noise = _NOISE.get()
    if noise is not None:
        delta, rng = noise
        out *= 1.0 + delta * rng.standard_normal(out.shape)
    return out
