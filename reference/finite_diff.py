"""Vectorised numerical derivatives of a scalar function, each with an error estimate.

The function under differentiation takes a *batch* of parameter vectors and returns one value
per row — ``f(thetas (K, P)) -> (K,)`` — so that every perturbation of a sweep is evaluated in
a few batched calls instead of 2·P separate ones. ``chunk`` bounds the rows per call (the
memory a call adds grows with K; :mod:`bpttcheck.reference.fd_model` derives it from a budget).

Methods (SPEC §7), all returning a :class:`FiniteDifference` (value, error estimate, step):

- :func:`central_difference` — ``D(h) = (f(θ+h e_k) − f(θ−h e_k)) / 2h`` with h chosen per
  parameter, ≈ u^(1/3)·max(1, |θ_k|) rounded to a power of two so that θ ± h, 2h and h/2 are
  formed without rounding. Estimate: truncation from ``|D(2h) − D(h)| / 3`` (D(h) = f′ + c·h²
  + O(h⁴), so the difference is 3c·h²) plus the rounding of f magnified by 1/h.
- :func:`richardson` — ``R(h) = (4·D(h/2) − D(h)) / 3`` (error O(h⁴)), h ≈ u^(1/5)·max(1, |θ|);
  estimate ``|R(2h) − R(h)| / 15`` plus rounding.
- :func:`complex_step` — ``Im f(θ + i·h·e_k) / h``: no subtraction, so exact to rounding for
  any tiny h (default 1e-30 in float64); needs a holomorphic f (no abs, conj, ``.real`` on the
  value path).
- :func:`directional_derivative` — the same methods along given directions v: a handful of
  evaluations check ``vᵀ∇f`` cheaply before any full sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .validation import InvalidArgument, check_array, check_bool, check_choice, check_int, describe
from .precision import unit_roundoff

__all__ = [
    "FD_METHODS",
    "FiniteDifference",
    "central_difference",
    "complex_step",
    "default_step",
    "directional_derivative",
    "richardson",
]

FD_METHODS = ("central", "richardson", "complex")

#: Stencils: offsets in units of the step h (rows are evaluated in this order per element).
_STENCILS = {
    "central": (1.0, -1.0, 2.0, -2.0),
    "richardson": (0.5, -0.5, 1.0, -1.0, 2.0, -2.0),
    "complex": (1.0,),
    "central-screen": (1.0, -1.0),  # central without the 2h pair: rounding estimate only
}

#: Exponent of u in the default step: the truncation/rounding balance of each method.
_STEP_POWER = {"central": 1.0 / 3.0, "richardson": 1.0 / 5.0}

#: Default complex step per precision: tiny, but far enough from underflow that h·f′ stays a
#: normal number through the products of a deep computation.
_COMPLEX_STEP = {np.dtype(np.float64): 1e-30, np.dtype(np.float32): 1e-10}

#: One evaluation of f is taken to carry a rounding error of about this many u·f_scale.
_ROUNDING_UNITS = 2.0


@dataclass(frozen=True)
class FiniteDifference:
    """A numerical derivative: ``value`` (P,) (or (n,) along n directions), ``error`` the
    estimated |value − exact| per element (truncation + rounding: an order of magnitude, not a
    bound — within a factor 2 of the real error on the test functions; the gradient checks
    allow 10×), ``step`` (same shape) the step used, and how many evaluations (rows) it took."""

    value: np.ndarray
    error: np.ndarray
    step: np.ndarray
    method: str
    evaluations: int


def _unit_roundoff(dtype) -> float:
    return unit_roundoff(dtype)  # the precision table's


def _power_of_two(h: np.ndarray) -> np.ndarray:
    """Round each step to the nearest power of two (θ ± h, 2h, h/2 then stay exact)."""
    return np.exp2(np.round(np.log2(h)))


def default_step(theta, method: str = "central") -> np.ndarray:
    """The default step per element of ``theta`` (P,) for ``method`` (SPEC §7).

    central: u^(1/3)·max(1, |θ|) → 2^-18 ≈ 3.8e-6 for |θ| ≤ 1 in float64; richardson:
    u^(1/5)·max(1, |θ|) → 2^-11 ≈ 4.9e-4; complex: 1e-30 in float64 (1e-10 in float32),
    whatever θ.
    """
    check_choice("method", method, FD_METHODS)
    theta = _check_theta(theta)
    if method == "complex":
        return np.full(theta.shape, _COMPLEX_STEP[theta.dtype], dtype=theta.dtype)
    u = _unit_roundoff(theta.dtype)
    h = u ** _STEP_POWER[method] * np.maximum(1.0, np.abs(theta))
    return _power_of_two(h).astype(theta.dtype)


def _check_theta(theta) -> np.ndarray:
    theta = check_array("theta", theta, (None,), dims=("P",))
    if theta.dtype.kind != "f" or theta.dtype not in (np.float32, np.float64):
        raise InvalidArgument(f"theta={describe(theta)}: expected a real float32 or float64 vector")
    if theta.size == 0:
        raise InvalidArgument(f"theta={describe(theta)}: expected at least one element")
    return theta


def _as_array(value):
    """np.asarray, or None for what cannot be one (a ragged list, an arbitrary object)."""
    if isinstance(value, (bool, np.bool_, str, bytes, dict)):
        return None
    try:
        return np.asarray(value)
    except (TypeError, ValueError):
        return None


def _check_step(step, n: int, dtype, method: str, theta) -> np.ndarray:
    if step is None:  # a sweep's default (directions compute theirs before)
        if method == "complex":
            return np.full(n, _COMPLEX_STEP[np.dtype(dtype)], dtype=dtype)
        return default_step(theta, method)
    arr = _as_array(step)
    if arr is None or arr.dtype.kind not in "fiu" or arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] != n):
        raise InvalidArgument(f"step={describe(step)}: expected a positive number or {n} positive numbers")
    if not (np.all(np.isfinite(arr)) and np.all(arr > 0)):
        raise InvalidArgument(f"step={describe(step)}: expected finite steps > 0 (found {arr.min()!r})")
    return np.broadcast_to(arr.astype(dtype), (n,)).copy()


def _check_f(f):
    if not callable(f):
        raise InvalidArgument(f"f={describe(f)}: expected a callable taking thetas (K, P) and returning (K,)")


def _check_chunk(chunk):
    return None if chunk is None else check_int("chunk", chunk, minimum=1)


def _check_f_scale(f_scale):
    if f_scale is None:
        return None
    if isinstance(f_scale, (bool, np.bool_)) or not isinstance(f_scale, (int, float, np.integer, np.floating)) \
            or not np.isfinite(f_scale) or f_scale < 0:
        raise InvalidArgument(f"f_scale={describe(f_scale)}: expected a finite number >= 0")
    return float(f_scale)


def _evaluate(f, rows_of: Callable, where: Callable, n_rows: int, chunk: int | None, complex_out: bool) -> np.ndarray:
    """f over ``n_rows`` rows built chunk by chunk by ``rows_of(start, stop) -> (k, P)``;
    ``where(r)`` describes row r for the error a non-finite value of f raises."""
    chunk = n_rows if chunk is None else chunk
    out = None
    for start in range(0, n_rows, chunk):
        stop = min(n_rows, start + chunk)
        values = f(rows_of(start, stop))
        values = np.asarray(values)
        if values.shape != (stop - start,):
            raise InvalidArgument(
                f"f returned {describe(values)}: expected shape ({stop - start},), one value per row "
                f"of the (K={stop - start}, P) batch it was given"
            )
        if complex_out and values.dtype.kind != "c":
            raise InvalidArgument(
                f"f returned {describe(values)} for complex input: expected a complex array; f "
                "discarded the imaginary part (abs, .real, float(...) or a real-only library call on "
                "the value path), so the complex step cannot be used — use method='central'"
            )
        finite = np.isfinite(values)
        if not finite.all():
            r = start + int(np.argmin(finite))
            v = values[r - start]
            v = complex(v) if np.iscomplexobj(v) else float(v)
            raise InvalidArgument(
                f"f returned {v!r} at {where(r)}: expected finite values of f near theta "
                "(a difference of non-finite values means nothing; check that f is defined there, "
                "or pass a smaller step)"
            )
        if out is None:
            out = np.empty(n_rows, dtype=values.dtype)
        out[start:stop] = values
    return out


def _sweep_rows(theta, elements, step, offsets, imaginary: bool):
    """rows_of for an element-by-element sweep: row r perturbs element elements[r // m] by
    offset r % m (step[r // m])."""
    m = len(offsets)
    offsets = np.asarray(offsets, dtype=theta.dtype)
    dtype = np.result_type(theta, np.complex64) if imaginary else theta.dtype

    def rows_of(start, stop):
        r = np.arange(start, stop)
        i, j = r // m, r % m
        rows = np.repeat(theta[None, :].astype(dtype), stop - start, axis=0)
        delta = offsets[j] * step[i]
        rows[np.arange(stop - start), elements[i]] += 1j * delta if imaginary else delta
        return rows

    def where(r):
        i, j = r // m, r % m
        delta = offsets[j] * step[i]
        return f"theta with element {int(elements[i])} moved by {'i·' if imaginary else ''}{delta:+.3g} (row {r} of the batch)"

    return rows_of, where


def _direction_rows(theta, directions, step, offsets, imaginary: bool):
    m = len(offsets)
    offsets = np.asarray(offsets, dtype=theta.dtype)
    dtype = np.result_type(theta, np.complex64) if imaginary else theta.dtype

    def rows_of(start, stop):
        r = np.arange(start, stop)
        i, j = r // m, r % m
        delta = (offsets[j] * step[i])[:, None] * directions[i]
        return theta[None, :].astype(dtype) + (1j * delta if imaginary else delta)

    def where(r):
        i, j = r // m, r % m
        return f"theta moved {'i·' if imaginary else ''}{offsets[j] * step[i]:+.3g} along directions[{i}] (row {r} of the batch)"

    return rows_of, where


def _combine(method, values, step, dtype, f_scale):
    """value and error estimate from the (n, m) stencil values of ``method``."""
    u = _unit_roundoff(dtype)
    if method == "complex":
        value = values[:, 0].imag / step
        scale = np.max(np.abs(value)) if value.size else 0.0
        # Truncation h²|f‴|/6 is nil at h ≈ 1e-30; what is left is the rounding of the
        # linearised computation, a few u of the value or of the largest component.
        return value, 4.0 * u * (np.abs(value) + scale)
    # The values themselves bound the scale from below (a caller's Σ|terms| can be 0).
    f_scale = max(float(np.max(np.abs(values))), 0.0 if f_scale is None else f_scale)
    noise = _ROUNDING_UNITS * u * f_scale  # rounding error of one f value
    D = lambda a, b, h: (values[:, a] - values[:, b]) / (2.0 * h)  # noqa: E731
    if method == "central-screen":
        return D(0, 1, step), noise / step
    if method == "central":
        d1, d2 = D(0, 1, step), D(2, 3, 2 * step)
        return d1, np.abs(d2 - d1) / 3.0 + noise / step
    d_half, d1, d2 = D(0, 1, step / 2), D(2, 3, step), D(4, 5, 2 * step)
    r1 = (4.0 * d_half - d1) / 3.0
    r2 = (4.0 * d1 - d2) / 3.0
    return r1, np.abs(r2 - r1) / 15.0 + 3.0 * noise / step


def _check_elements(elements, P: int) -> np.ndarray:
    if elements is None:
        return np.arange(P)
    arr = _as_array(elements)
    if arr is None or arr.ndim != 1 or arr.dtype.kind not in "iu" or arr.size == 0 or arr.min() < 0 or arr.max() >= P:
        raise InvalidArgument(f"elements={describe(elements)}: expected a non-empty 1-D array of indices in [0, {P})")
    return arr.astype(np.intp)


def _sweep(method, f, theta, step, chunk, f_scale, elements=None) -> FiniteDifference:
    _check_f(f)
    theta = _check_theta(theta)
    P = theta.shape[0]
    elements = _check_elements(elements, P)
    step = _check_step(step, P, theta.dtype, method.split("-")[0], theta)[elements]
    chunk = _check_chunk(chunk)
    f_scale = _check_f_scale(f_scale)
    offsets = _STENCILS[method]
    imaginary = method == "complex"
    n = elements.shape[0]
    n_rows = n * len(offsets)
    flat = _evaluate(f, *_sweep_rows(theta, elements, step, offsets, imaginary), n_rows=n_rows, chunk=chunk,
                     complex_out=imaginary)
    value, error = _combine(method, flat.reshape(n, len(offsets)), step, theta.dtype, f_scale)
    return FiniteDifference(value, error, step, method, n_rows)


def central_difference(
    f,
    theta,
    step=None,
    *,
    chunk: int | None = None,
    f_scale: float | None = None,
    elements=None,
    truncation_estimate: bool = True,
) -> FiniteDifference:
    """Central differences of ``f`` at ``theta`` (P,) for every element, in 4·P batched rows.

    ``f(thetas (K, P)) -> (K,)``. ``step``: None (per element, see :func:`default_step`), a
    number, or (P,) numbers. ``f_scale``: the size of the terms f sums (its rounding error is
    taken as 2u·f_scale); default max |f| over the evaluations — pass a larger one when f
    cancels (e.g. Σ|G|·|y| for ``Σ G·y``). ``elements``: differentiate only these indices
    (results then have their length). ``truncation_estimate=False`` skips the 2h pair (2·P
    rows): the value is the same but the error estimate holds rounding only — a lower bound,
    good for screening (whatever passes under it passes under the full estimate).

    >>> import numpy as np
    >>> fd = central_difference(lambda t: (t ** 3).sum(axis=1), np.array([1.0, 2.0]))
    >>> np.allclose(fd.value, [3.0, 12.0], rtol=1e-9), bool(np.all(fd.error < 1e-8))
    (True, True)
    """
    method = "central" if check_bool("truncation_estimate", truncation_estimate) else "central-screen"
    return _sweep(method, f, theta, step, chunk, f_scale, elements)


def richardson(
    f, theta, step=None, *, chunk: int | None = None, f_scale: float | None = None, elements=None
) -> FiniteDifference:
    """Richardson-extrapolated central differences ``(4·D(h/2) − D(h)) / 3`` in 6·P rows.

    Arguments as :func:`central_difference`; the default step is u^(1/5)·max(1, |θ|).
    """
    return _sweep("richardson", f, theta, step, chunk, f_scale, elements)


def complex_step(f, theta, step=None, *, chunk: int | None = None, elements=None) -> FiniteDifference:
    """Complex-step derivatives ``Im f(θ + i·h·e_k) / h`` in P batched complex rows.

    ``f`` must accept a complex (K, P) batch and stay holomorphic; a real result is refused
    (it means the imaginary part was dropped somewhere).

    >>> import numpy as np
    >>> fd = complex_step(lambda t: np.exp(t).sum(axis=1), np.array([0.0, 1.0]))
    >>> bool(np.allclose(fd.value, np.exp([0.0, 1.0]), rtol=1e-15, atol=0))
    True
    """
    return _sweep("complex", f, theta, step, chunk, None, elements)


def directional_derivative(
    f,
    theta,
    directions,
    *,
    method: str = "central",
    step=None,
    chunk: int | None = None,
    f_scale: float | None = None,
) -> FiniteDifference:
    """Derivatives of ``f`` at ``theta`` (P,) along each row of ``directions`` (n, P).

    ``value[i] ≈ directions[i] · ∇f(θ)``, from 4 (central), 6 (richardson) or 1 (complex) rows
    per direction. The default step is the element-wise default for max|θ| divided by
    max|v_i|, so that no element moves further than in a sweep.
    """
    check_choice("method", method, FD_METHODS)
    _check_f(f)
    theta = _check_theta(theta)
    V = check_array("directions", directions, (None, theta.shape[0]), dims=("n", "P"))
    if V.dtype.kind != "f":
        raise InvalidArgument(f"directions={describe(directions)}: expected real directions")
    V = V.astype(theta.dtype, copy=False)
    n = V.shape[0]
    if n == 0:
        raise InvalidArgument(f"directions={describe(directions)}: expected at least one direction")
    vmax = np.max(np.abs(V), axis=1)
    if np.any(vmax == 0):
        raise InvalidArgument(f"directions={describe(directions)}: expected no zero direction (row {int(np.argmin(vmax))})")
    if step is None and method != "complex":
        step = _power_of_two(default_step(np.array([np.max(np.abs(theta))], theta.dtype), method)[0] / vmax)
    step = _check_step(step, n, theta.dtype, method, theta)
    chunk = _check_chunk(chunk)
    f_scale = _check_f_scale(f_scale)
    offsets = _STENCILS[method]
    imaginary = method == "complex"
    n_rows = n * len(offsets)
    flat = _evaluate(f, *_direction_rows(theta, V, step, offsets, imaginary), n_rows=n_rows, chunk=chunk,
                     complex_out=imaginary)
    value, error = _combine(method, flat.reshape(n, len(offsets)), step, theta.dtype, f_scale)
    return FiniteDifference(value, error, step, method, n_rows)
