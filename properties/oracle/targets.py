"""Naming, loading and classifying the implementation under test.

A target is named ``"package.module:attribute"`` (the attribute may be dotted:
``"pkg.mod:Class.method"``). :func:`load_target` imports it, :func:`detect_kind` guesses which
of :data:`KINDS` it is, and :func:`check_kind` refuses an object whose signature cannot fit the
kind's protocol. Every refusal is a :class:`TargetError` whose one-line message says the fix.
torch is never imported here: a torch class is recognised through ``sys.modules``.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import sys

from bpttcheck.reference.cells import TORCH_CELLS

__all__ = [
    "CELLS",
    "KINDS",
    "TargetError",
    "cell_of",
    "check_kind",
    "detect_kind",
    "load_target",
    "parse_kind",
]

#: The kinds of target the oracle can verify (README: one protocol each).
KINDS = ("module", "cell", "step", "clip", "tbptt", "randomized", "numpy")
#: The cells a module or cell target can be: those torch has classes for (the cell registry's).
CELLS = TORCH_CELLS

#: Positional arity and parameter-name hints of the function protocols.
_PROTOCOLS = {
    "tbptt": (6, ("module", "x", "hx", "cotangent", "k", "scheme")),
    "randomized": (6, ("module", "x", "hx", "cotangent", "pis", "rng")),
    "numpy": (8, ("config", "params", "x", "h0", "c0", "d_output", "d_h_n", "d_c_n")),
    "clip": (2, ("parameters", "max_norm")),
}


class TargetError(ValueError):
    """A target spec that cannot be loaded or does not fit its kind; the message says the fix."""


def load_target(spec: str):
    """``"pkg.mod:attr"`` -> the object. The current directory is importable, as with ``python -m``."""
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise TargetError(f"target={spec!r}: expected 'module.path:attribute', e.g. 'mypkg.layers:MyLSTM' "
                          "or 'torch.nn:LSTM'")
    module_name, attr = spec.split(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise TargetError(f"target={spec!r}: no module named {exc.name!r}; check the spelling, install the "
                              "package, or run from the directory that contains it") from None
        raise TargetError(f"target={spec!r}: importing {module_name!r} failed because its dependency "
                          f"{exc.name!r} is missing; install it (pip install {exc.name})") from None
    except Exception as exc:  # the user's module is broken: say so in one line
        raise TargetError(f"target={spec!r}: importing {module_name!r} raised {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}; fix the module so that it imports") from None
    obj = module
    for i, part in enumerate(attr.split(".")):
        if not hasattr(obj, part):
            owner = module_name + "".join("." + p for p in attr.split(".")[:i])
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else \
                f"it has: {', '.join(names[:8])}{', …' if len(names) > 8 else ''}"
            raise TargetError(f"target={spec!r}: {owner!r} has no attribute {part!r}; {hint}")
        obj = getattr(obj, part)
    return obj


def _torch_module_class(obj) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and inspect.isclass(obj) and issubclass(obj, torch.nn.Module)


def cell_of(obj) -> str | None:
    """rnn, lstm or gru from a ``mode`` attribute (torch's "LSTM", "RNN_TANH", …) or the class name.

    Cells are tried in reverse registry order, so the generic "rnn" (as in "MyGRURNN") comes last."""
    for text in (getattr(obj, "mode", None), getattr(obj, "__name__", None), type(obj).__name__):
        if isinstance(text, str):
            t = text.lower()
            for cell in reversed(CELLS):
                if cell in t:
                    return cell
    return None


def _positional_names(fn) -> list[str] | None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    return [p.name for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _accepts(fn, n: int) -> bool:
    try:
        inspect.signature(fn).bind(*range(n))
    except TypeError:
        return False
    except ValueError:  # no signature (a builtin): give it the benefit of the doubt
        return True
    return True


def detect_kind(obj) -> str | None:
    """The best guess among :data:`KINDS`, or None when the object fits none clearly."""
    if _is_step_object(obj):
        return "step"
    if _torch_module_class(obj) or (inspect.isclass(obj) and cell_of(obj)):
        name = obj.__name__.lower()
        if "cell" in name:
            return "cell"
        return "module"
    if not callable(obj):
        return None
    names = _positional_names(obj) or []
    lowered = [n.lower() for n in names]
    if "pis" in lowered and "rng" in lowered:
        return "randomized"
    if "scheme" in lowered or ("k" in lowered and "cotangent" in lowered):
        return "tbptt"
    if "d_output" in lowered or "d_h_n" in lowered:
        return "numpy"
    if len(lowered) >= 2 and lowered[1] in ("max_norm", "clip_value"):
        return "clip"
    if getattr(obj, "__name__", "").startswith("clip_grad"):
        return "clip"
    return None


def _is_step_object(obj) -> bool:
    return callable(getattr(obj, "step", None)) and callable(getattr(obj, "init", None))


def parse_kind(kind):
    """``"module"`` or ``"module:lstm"`` -> (kind, cell or None); TargetError for anything else."""
    if kind is None:
        return None, None
    if not isinstance(kind, str):
        raise TargetError(f"kind={kind!r}: expected one of {', '.join(KINDS)}")
    base, _, cell = kind.partition(":")
    if base not in KINDS:
        close = difflib.get_close_matches(base, KINDS, n=1)
        raise TargetError(f"kind={kind!r}: expected one of {', '.join(KINDS)}"
                          + (f" (did you mean {close[0]!r}?)" if close else ""))
    if cell and (base not in ("module", "cell") or cell not in CELLS):
        raise TargetError(f"kind={kind!r}: a cell can be named only for module or cell kinds, as "
                          f"'module:lstm', 'cell:gru' (one of {', '.join(CELLS)})")
    return base, cell or None


def check_kind(spec: str, obj, kind: str) -> None:
    """Refuse ``obj`` if it cannot follow ``kind``'s protocol (README: the protocols)."""
    if kind in ("module", "cell"):
        if not inspect.isclass(obj):
            raise TargetError(f"target={spec!r} is {type(obj).__name__} {obj!r}: a {kind} target must be a class "
                              f"constructed like torch.nn.{'LSTM' if kind == 'module' else 'LSTMCell'}"
                              "(input_size, hidden_size, ...); name the class, not an instance")
        return
    if kind == "step":
        target = obj
        if not _is_step_object(target) and callable(obj):
            try:
                target = obj()
            except Exception as exc:
                raise TargetError(f"target={spec!r}: a step target is an object with init(input_size, hidden_size, rng) "
                                  f"and step(params, x_t, state), or a factory returning one; calling it raised "
                                  f"{type(exc).__name__}: {exc}") from None
        if not _is_step_object(target):
            raise TargetError(f"target={spec!r}: a step target needs methods init(input_size, hidden_size, rng) "
                              "and step(params, x_t, state) (or is a factory returning such an object)")
        return
    n, names = _PROTOCOLS[kind]
    if not callable(obj):
        raise TargetError(f"target={spec!r} is not callable: a {kind} target is a function "
                          f"{kind_signature(kind)}")
    if not _accepts(obj, n):
        got = _positional_names(obj)
        raise TargetError(f"target={spec!r} takes ({', '.join(got or [])}): a {kind} target must accept "
                          f"{kind_signature(kind)}; adapt its signature or choose the right --kind")


def kind_signature(kind: str) -> str:
    n, names = _PROTOCOLS[kind]
    return f"fn({', '.join(names)}{', ...' if kind == 'clip' else ''})"
