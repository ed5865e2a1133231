"""What every kind's checks share: calling the target safely, declines, devices and precisions.

A call into the target goes through :func:`call_target`: ``NotImplementedError`` (or a
``TypeError``/``ValueError`` from a constructor) means the target declines the option in play
and raises :class:`Declined`; any other exception becomes a :class:`TargetFailure` (a
:class:`~bpttcheck.properties.compare.Mismatch`, so the check fails with a verdict and
Hypothesis shrinks the case) — never a crash of the oracle. :class:`Guarded` wraps a check's
body and remembers the declines, so the report can say "unsupported" instead of "error".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bpttcheck.reference.precision import PRECISION_TABLE, Precision
from bpttcheck.reference.precision import round_to as round_precision

from ..compare import Mismatch, TargetFailure
from ..runner import Declined
from ..torch_adapter import cuda_available, precision_mode, require_same_inputs, snapshot, tf32_state, torch_available
from .targets import TargetError

__all__ = [
    "DTYPE_VARIANTS",
    "Declined",
    "Guarded",
    "TargetFailure",
    "Variant",
    "call_target",
    "check_id",
    "check_device",
    "devices_for",
    "dtype_variant",
    "precision_mode",
    "require_same_inputs",
    "round_to",
    "snapshot",
    "tf32_state",
]


def call_target(what: str, fn, *args, option: str = "", constructor: bool = False, context: str = "",
                reproducer=None, **kwargs):
    """``fn(*args, **kwargs)`` with the target's exceptions turned into verdicts."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as exc:
        raise Declined(option or what, f"NotImplementedError: {exc}") from None
    except (TypeError, ValueError) as exc:
        if constructor:
            raise Declined(option or what, f"{type(exc).__name__} from the constructor: {exc}") from None
        raise _raised(TargetFailure(_failure(what, exc, context, reproducer)), exc) from None
    except (Mismatch, Declined):
        raise
    except Exception as exc:
        raise _raised(TargetFailure(_failure(what, exc, context, reproducer)), exc) from None


def _raised(failure, exc):
    """The failure marked as the target raising ``exc`` (the runner reads ``raised``: a value
    on every case of which the target raises the same exception type is declined)."""
    failure.raised = type(exc).__name__
    return failure


def _failure(what, exc, context, reproducer) -> str:
    text = f"TargetRaised: {what} raised {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    if context:
        text += f" ({context})"
    rep = reproducer() if callable(reproducer) else reproducer
    if rep:
        text += "\n  reproduce:\n" + "\n".join("    " + s for s in rep.rstrip().splitlines())
    return text


@dataclass
class Guarded:
    """A check body that records the options its target declined (``declined``: reasons)."""

    body: object
    declined: list = field(default_factory=list)

    def __call__(self, case):
        try:
            return self.body(case)
        except Declined as exc:
            self.declined.append(str(exc))
            raise


def check_id(kind: str, name: str, part: str, device: str, variant: str) -> str:
    """The stable check id: ``kind/name/part[device,variant]``."""
    return f"{kind}/{name}/{part}[{device},{variant}]"


# --------------------------------------------------------------------------- devices, precisions


#: A way of running torch is a row of the precision table (storage dtype, tolerance precision,
#: TF32 and autocast switches, CUDA only or not); ``Variant`` is the older name of a row.
Variant = Precision
DTYPE_VARIANTS = PRECISION_TABLE


def dtype_variant(name: str) -> Variant:
    if name not in DTYPE_VARIANTS:
        raise TargetError(f"dtype={name!r}: expected one of {', '.join(DTYPE_VARIANTS)}")
    return DTYPE_VARIANTS[name]


def check_device(device) -> str:
    """``device`` when it is "cpu", "cuda" or "all"; a TargetError naming it otherwise (torch is
    not needed to tell)."""
    if not isinstance(device, str) or device not in ("cpu", "cuda", "all"):
        raise TargetError(f"device={device!r}: expected 'cpu', 'cuda' or 'all'")
    return device


def devices_for(device: str) -> list[tuple[str, str]]:
    """``[(device, skip reason or "")]`` for "cpu", "cuda" or "all" (cuda skipped when absent)."""
    check_device(device)
    base = "" if torch_available() else "PyTorch is not installed: pip install 'bpttcheck[torch]'"
    out = []
    if device in ("cpu", "all"):
        out.append(("cpu", base))
    if device in ("cuda", "all"):
        out.append(("cuda", base or ("" if cuda_available() else "no CUDA device")))
    return out


def round_to(a, variant: Variant):
    """``a`` rounded to the variant's storage precision, returned as float64 (None stays None)."""
    return round_precision(a, variant)
