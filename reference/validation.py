"""Argument validation shared by every public function of the project (all layers).

Every bad argument raises :class:`InvalidArgument` with the argument's name, its value (or,
for arrays, shape and dtype) and what was expected, so a caller never sees a NumPy traceback
from deep inside a loop. The ``check_*`` helpers return the validated (converted) value.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = [
    "InvalidArgument",
    "check_array",
    "check_bool",
    "check_callable",
    "check_choice",
    "check_dtype",
    "check_instance",
    "check_int",
    "check_lengths",
    "check_positive_float",
    "check_probabilities",
    "describe",
    "fail",
    "real_dtype",
]


class InvalidArgument(ValueError):
    """A public function of bpttcheck was called with an argument it cannot accept."""


def describe(value) -> str:
    """A short description of ``value`` for an error message."""
    if isinstance(value, np.ndarray):
        return f"array(shape={value.shape}, dtype={value.dtype})"
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} (type={type(value).__name__})"


def fail(name: str, value, expected: str) -> None:
    """Raise :class:`InvalidArgument` for ``name=value``: ``expected`` says what would do."""
    raise InvalidArgument(f"{name}={describe(value)}: expected {expected}")


def check_choice(name: str, value, choices) -> str:
    """``value`` if it is one of ``choices`` (compared by ==; arrays, lists and bools never are)."""
    try:
        ok = not isinstance(value, (bool, np.ndarray, list, dict, set)) and value in choices
    except (TypeError, ValueError):
        ok = False
    if not ok:
        fail(name, value, "one of " + ", ".join(repr(c) for c in choices))
    return value


def check_instance(name: str, value, cls, what: str):
    """``value`` if it is an instance of ``cls``; ``what`` says where such an object comes from."""
    if not isinstance(value, cls):
        fail(name, value, what)
    return value


def check_callable(name: str, value, what: str):
    if not callable(value):
        fail(name, value, what)
    return value


def check_dtype(name: str, value, kinds: str = "fc") -> np.dtype:
    """``np.dtype(value)`` of one of ``kinds`` ("f" real floating, "c" complex)."""
    try:
        dtype = np.dtype(value) if not isinstance(value, (bool, np.ndarray, list)) else None
    except (TypeError, ValueError):
        dtype = None
    if dtype is None or dtype.kind not in kinds:
        what = "a floating-point or complex dtype" if kinds == "fc" else "a floating-point dtype"
        fail(name, value, f"{what} such as numpy.float64")
    return dtype


def check_probabilities(name: str, values) -> tuple:
    """A non-empty sequence of real probabilities in (0, 1], as a tuple of floats."""
    try:
        one_dim = not isinstance(values, (str, bytes, dict)) and np.ndim(values) == 1
    except (TypeError, ValueError):  # a ragged nested list
        one_dim = False
    if not one_dim:
        fail(name, values, "a sequence of probabilities in (0, 1]")
    out = []
    for i, p in enumerate(values):
        if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real):
            fail(f"{name}[{i}]", p, "a probability in (0, 1]")
        if not (0 < float(p) <= 1):
            raise InvalidArgument(f"{name}[{i}]={float(p)!r} (type=float): expected a probability in (0, 1]")
        out.append(float(p))
    if not out:
        fail(name, values, "at least one probability in (0, 1]")
    return tuple(out)


def check_int(name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        fail(name, value, "an integer" + (f" >= {minimum}" if minimum is not None else ""))
    value = int(value)
    if minimum is not None and value < minimum:
        fail(name, value, f"an integer >= {minimum}")
    if maximum is not None and value > maximum:
        fail(name, value, f"an integer <= {maximum}")
    return value


def check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        fail(name, value, "True or False")
    return bool(value)


def check_positive_float(name: str, value, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        fail(name, value, "a real number")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        fail(name, value, "a finite number " + (">= 0" if allow_zero else "> 0"))
    return value


_KINDS = "fc"


def check_array(
    name: str,
    value,
    shape: tuple | None,
    *,
    finite: bool = True,
    dims: tuple[str, ...] | None = None,
) -> np.ndarray:
    """Validate a floating (or complex) array against ``shape``.

    ``shape`` holds ints or ``None`` (any size), or is None (any shape); ``dims`` names the
    axes for the message. Lists are converted (integers to float64; booleans and ragged lists
    are refused).
    """
    if not isinstance(value, np.ndarray):
        if isinstance(value, (list, tuple)) or (np.isscalar(value) and not isinstance(value, (str, bytes))):
            try:
                arr = np.asarray(value)
            except (TypeError, ValueError):  # a ragged nested list
                fail(name, value, "a rectangular array" + (f" of shape {_shape_text(shape, dims)}" if shape else "")
                     + " (its nested lists differ in length)")
            if arr.dtype.kind == "b":
                fail(name, value, "a floating-point array (got booleans)")
            value = arr.astype(np.float64) if arr.dtype.kind in "iu" else arr
        else:
            fail(name, value, "a NumPy array" + (f" of shape {_shape_text(shape, dims)}" if shape is not None else ""))
    if value.dtype.kind not in _KINDS:
        fail(name, value, "a floating-point or complex array")
    if shape is not None:
        if value.ndim != len(shape):
            fail(name, value, f"shape {_shape_text(shape, dims)}")
        for got, want in zip(value.shape, shape):
            if want is not None and got != want:
                fail(name, value, f"shape {_shape_text(shape, dims)}")
    if finite and value.size and not _finite_sum(value):
        bad = np.argwhere(~np.isfinite(value))[0]
        fail(name, value, f"finite values (found {value[tuple(bad)]} at index {tuple(int(i) for i in bad)})")
    return value


def _finite_sum(value) -> bool:
    # One BLAS call for a real array: Σ v² is finite iff every element is (inf and NaN
    # propagate, squares cannot cancel), unless it overflows — then check element by element.
    if value.dtype.kind == "f":
        flat = value.reshape(-1)
        if math.isfinite(flat @ flat):
            return True
    return bool(np.logical_and.reduce(np.isfinite(value), axis=None))


def _shape_text(shape, dims) -> str:
    if dims is None:
        dims = tuple("?" if s is None else str(s) for s in shape)
    parts = [d if s is None else f"{d}={s}" if d != str(s) else d for d, s in zip(dims, shape)]
    return "(" + ", ".join(parts) + ")"


_PRECISION = {"d": np.dtype("float64"), "D": np.dtype("float64"), "f": np.dtype("float32"), "F": np.dtype("float32")}


def real_dtype(*arrays) -> np.dtype:
    """The common real precision of ``arrays``; mixing float32 and float64 is an error."""
    chars = {a.dtype.char for a in arrays if a is not None}
    precisions = {_PRECISION.get(c) or np.finfo(np.dtype(c)).dtype for c in chars}
    if len(precisions) > 1:
        names = sorted(str(p) for p in precisions)
        raise InvalidArgument(
            f"mismatched dtypes {names} among x, h0, c0 and params: expected one precision for "
            "every array (input, states, parameters); convert them with .astype(...) first"
        )
    return precisions.pop()


def check_lengths(lengths, T: int, B: int):
    """Sequence lengths (B,) of padded sequences, each in [1, T], as intp; None stays None.

    The one lengths rule, shared by the forward, the losses and the strategies.
    """
    if lengths is None:
        return None
    try:
        arr = np.asarray(lengths)
    except (TypeError, ValueError):  # a ragged nested list
        arr = np.zeros((0, 0))
    if arr.ndim != 1 or arr.shape[0] != B or arr.dtype.kind not in "iu":
        raise InvalidArgument(
            f"lengths={describe(lengths)}: expected {B} integers (one per batch element)"
        )
    if arr.min() < 1 or arr.max() > T:
        bad = int(arr[(arr < 1) | (arr > T)][0])
        raise InvalidArgument(
            f"lengths={arr.tolist()} (type={type(lengths).__name__}): expected every length in "
            f"[1, T={T}], found {bad} (torch itself does not reject a length > T)"
        )
    return arr.astype(np.intp)
