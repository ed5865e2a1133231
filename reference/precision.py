"""The precision table: one row per way of computing that the project can judge.

A row says what a precision is (its unit roundoff u = 2^-p for p significand bits), how much
slack the tolerance policy grants per u (the safety factor), which storage dtype the tensors
hold, where it can run (TF32 and the half precisions are CUDA paths), which switches select it
(TF32 for cuDNN and matmuls, autocast to a half type), and the finest relative error a check at
that precision must still be able to see (``resolution_goal``: a comparison whose allowance
is coarser is *inconclusive*, never a pass).

Adding a precision is adding a row here; everything else (the tolerance policy, the oracle's
dtype variants, rounding to storage, finite differences) reads the table.

==================  =========  ======  ========  =========  =====  ========  ==========
name                u          safety  storage   CUDA only  TF32   autocast  resolution
==================  =========  ======  ========  =========  =====  ========  ==========
float64             2⁻⁵³       64      float64   no         off    —         1e-6
float32             2⁻²⁴       64      float32   no         off    —         1e-2
tf32                2⁻¹¹       32      float32   yes        on     —         0.25
float16             2⁻¹¹       32      float16   yes        off    —         0.25
bfloat16            2⁻⁸        32      bfloat16  yes        off    —         1
autocast-float16    2⁻¹¹       32      float32   yes        off    float16   0.25
autocast-bfloat16   2⁻⁸        32      float32   yes        off    bfloat16  1
==================  =========  ======  ========  =========  =====  ========  ==========

Safety: float64 errors against torch reach ~8u·√T on O(1) values, so 64 leaves an 8× margin;
the low precisions get less slack per u because u is already coarse and their errors were
measured at 1–12 u (SPEC §8). TF32 keeps 10 explicit significand bits, like float16.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .validation import InvalidArgument

__all__ = ["PRECISION_TABLE", "Precision", "get_precision", "precision_names", "round_to", "unit_roundoff"]


@dataclass(frozen=True)
class Precision:
    """One row of the precision table (see the module docstring)."""

    name: str
    unit_roundoff: float
    safety: float
    storage: str  # the dtype the tensors hold (a NumPy dtype name, or "bfloat16")
    cuda_only: bool = False
    tf32: bool = False
    autocast: str | None = None  # "float16"/"bfloat16": float32 storage computed under autocast
    resolution_goal: float = 1e-6

    # The oracle's older Variant interface: ``dtype`` is the storage dtype, ``precision`` the
    # row whose tolerance applies (the row itself).
    @property
    def dtype(self) -> str:
        return self.storage

    @property
    def precision(self) -> str:
        return self.name

    @property
    def numpy_dtype(self) -> np.dtype | None:
        """The NumPy dtype of the storage, or None where NumPy has none (bfloat16)."""
        try:
            return np.dtype(self.storage)
        except TypeError:
            return None


PRECISION_TABLE: dict[str, Precision] = {p.name: p for p in (
    Precision("float64", 2.0**-53, 64.0, "float64", resolution_goal=1e-6),
    Precision("float32", 2.0**-24, 64.0, "float32", resolution_goal=1e-2),
    Precision("tf32", 2.0**-11, 32.0, "float32", cuda_only=True, tf32=True, resolution_goal=0.25),
    Precision("float16", 2.0**-11, 32.0, "float16", cuda_only=True, resolution_goal=0.25),
    Precision("bfloat16", 2.0**-8, 32.0, "bfloat16", cuda_only=True, resolution_goal=1.0),
    Precision("autocast-float16", 2.0**-11, 32.0, "float32", cuda_only=True, autocast="float16",
              resolution_goal=0.25),
    Precision("autocast-bfloat16", 2.0**-8, 32.0, "float32", cuda_only=True, autocast="bfloat16",
              resolution_goal=1.0),
)}


def precision_names() -> tuple[str, ...]:
    return tuple(PRECISION_TABLE)


def get_precision(name: str) -> Precision:
    """The row called ``name``; a clear error naming the rows otherwise."""
    row = PRECISION_TABLE.get(name) if isinstance(name, str) else None
    if row is None:
        raise InvalidArgument(f"precision={name!r}: expected one of {', '.join(PRECISION_TABLE)}")
    return row


def unit_roundoff(dtype) -> float:
    """u of a NumPy floating dtype (complex: of its real part), i.e. eps/2; also a row name."""
    if isinstance(dtype, str) and dtype in PRECISION_TABLE:
        return PRECISION_TABLE[dtype].unit_roundoff
    return float(np.finfo(np.dtype(dtype)).eps) / 2.0


def _round_bfloat16(a: np.ndarray) -> np.ndarray:
    # torch converts float64 to bfloat16 through float32 (two roundings, each to nearest even);
    # the oracle's reference must see exactly the values a bfloat16 tensor holds.
    f = np.ascontiguousarray(np.asarray(a, dtype=np.float32))
    bits = f.view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16
    out = bits.astype(np.uint32).view(np.float32).astype(np.float64)
    return np.where(np.isnan(f), np.nan, out)


def round_to(a, precision):
    """``a`` rounded to the storage dtype of ``precision`` (a row or its name), returned as
    float64 (None stays None)."""
    if a is None:
        return None
    row = precision if isinstance(precision, Precision) else get_precision(precision)
    a = np.asarray(a, dtype=np.float64)
    if row.storage == "float64":
        return a
    if row.storage == "bfloat16":
        return _round_bfloat16(a)
    return a.astype(row.storage).astype(np.float64)
