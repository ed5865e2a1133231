"""Loading a target from its spec ("pkg.mod:attr") and reading its signature.

:func:`load_target` imports the object named by a spec; every refusal is a
:class:`TargetError` whose one-line message says the fix (with a "did you mean" where a name
is misspelt). The kinds themselves (what a target of each kind is, how one is recognised) are
the registry's business: :mod:`.kinds`. torch is never imported here: a torch class is
recognised through ``sys.modules``.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import sys

from bpttcheck.reference.cells import TORCH_CELLS

__all__ = ["TargetError", "accepts", "cell_of", "is_torch_module_class", "load_target", "positional_names"]


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


def is_torch_module_class(obj) -> bool:
    """Whether ``obj`` is a subclass of ``torch.nn.Module`` (False when torch was never imported)."""
    torch = sys.modules.get("torch")
    return torch is not None and inspect.isclass(obj) and issubclass(obj, torch.nn.Module)


def cell_of(obj) -> str | None:
    """rnn, lstm or gru from a ``mode`` attribute (torch's "LSTM", "RNN_TANH", …), the class name,
    or the name of a class it derives from (a subclass of ``torch.nn.GRU`` is a GRU).

    Cells are tried in reverse registry order, so the generic "rnn" (as in "MyGRURNN") comes last."""
    bases = [c.__name__ for c in getattr(obj, "__mro__", ())[1:] if c.__module__.startswith("torch.nn")]
    for text in (getattr(obj, "mode", None), getattr(obj, "__name__", None), type(obj).__name__, *bases):
        if isinstance(text, str):
            t = text.lower()
            for cell in reversed(TORCH_CELLS):
                if cell in t:
                    return cell
    return None


def positional_names(fn) -> list[str] | None:
    """The names of ``fn``'s positional parameters, or None when it has no signature."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    return [p.name for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def accepts(fn, n: int) -> bool:
    """Whether ``fn`` can be called with ``n`` positional arguments (True without a signature)."""
    try:
        inspect.signature(fn).bind(*range(n))
    except TypeError:
        return False
    except ValueError:  # no signature (a builtin): give it the benefit of the doubt
        return True
    return True
