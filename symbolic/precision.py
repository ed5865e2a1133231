"""Number systems for the oracle: exact rationals, or mpmath at ≥ 50 significant digits.

A float64 converts exactly to either (its binary value), so the only rounding left is that of
the high-precision arithmetic itself — 10^(−dps) relative, far below float64's 1.1e-16. Exact
rationals are used when every operation is rational: identity and relu Elman networks.
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from bpttcheck.reference.validation import check_int

__all__ = ["EPS64", "Field", "field_for", "to_float"]

#: float64 machine epsilon, 2^-52 (errors are reported in units of it).
EPS64 = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class Field:
    """``exact=True``: SymPy rationals; else mpmath numbers at ``dps`` digits."""

    exact: bool
    dps: int = 60

    def convert(self, array) -> np.ndarray:
        """Exact conversion of a float array to an object array of field elements."""
        a = np.asarray(array, dtype=np.float64)
        out = np.empty(a.shape, dtype=object)
        if self.exact:
            import sympy as sp

            for idx in np.ndindex(*a.shape):
                out[idx] = sp.Rational(float(a[idx]))  # exact: the binary value of the float
        else:
            import mpmath

            for idx in np.ndindex(*a.shape):
                out[idx] = mpmath.mpf(float(a[idx]))
        return out

    @property
    def backend(self) -> str:
        """The :class:`~.program.Program` backend that evaluates in this field."""
        return "exact" if self.exact else "mpmath"

    def modules(self):
        """The lambdify modules that evaluate in this field."""
        from .functions import mpmath_functions, relu, relu_step, sigmoid, tanh

        if self.exact:
            return [{"relu": relu, "relu_step": relu_step, "sigmoid": sigmoid, "tanh": tanh}, "sympy"]
        return [mpmath_functions(), "mpmath"]

    def context(self):
        """A context manager setting the working precision (a no-op for exact rationals)."""
        import contextlib

        if self.exact:
            return contextlib.nullcontext()
        import mpmath

        return mpmath.workdps(self.dps)

    def describe(self) -> str:
        return "exact rationals" if self.exact else f"mpmath, {self.dps} digits"


def field_for(config, dps: int = 60) -> Field:
    """Exact for identity/relu Elman networks, mpmath at ``dps`` (≥ 50) digits otherwise."""
    dps = check_int("dps", dps, minimum=50)
    exact = config.cell == "rnn" and config.nonlinearity in ("identity", "relu")
    return Field(exact=exact, dps=dps)


def to_float(array) -> np.ndarray:
    """Object array of field elements -> float64 (correctly rounded for rationals and mpf)."""
    a = np.asarray(array, dtype=object)
    out = np.empty(a.shape, dtype=np.float64)
    for idx in np.ndindex(*a.shape):
        v = a[idx]
        # int/int true division in Python is correctly rounded; mpf -> float rounds to nearest.
        out[idx] = int(v.p) / int(v.q) if hasattr(v, "q") else float(v)
    return out
