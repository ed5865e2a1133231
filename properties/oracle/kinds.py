"""The target-kind registry: one :class:`Kind` record per kind of target the oracle verifies.

A record says what the kind's targets are (``protocol``, the README's protocol table), how an
object is recognised (``detect``) and refused when its signature cannot fit (``check``), and
where its checks come from: ``factory``, the dotted name of a function with the one signature
``checks(target: Target, options: CheckOptions) -> list[PropertyCheck]``, imported only when
the kind is used. Everything else asks the registry (``get("module").names_cell``), so the
list of kinds is written here once.

Adding a kind: one module holding its factory, and one line in :data:`REGISTRY`.

>>> [k.name for k in REGISTRY]
['module', 'cell', 'step', 'clip', 'tbptt', 'randomized', 'numpy', 'jax']
>>> get("module").names_cell, get("numpy").names_cell, get("tbptt").names_cell
(True, True, False)

An object may say its kind itself with a ``bpttcheck_kind`` attribute (the framework adapters'
targets do: ``JaxCell``, ``keras_target``); detection then takes it as given.

Nothing heavy is imported here (torch classes are recognised through ``sys.modules``), so the
command line can list the kinds in its help cheaply.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from dataclasses import dataclass, replace
from typing import Callable

from bpttcheck.reference.cells import TORCH_CELLS

from .targets import TargetError, accepts, cell_of, is_torch_module_class, load_target, positional_names

__all__ = ["CELLS", "KINDS", "REGISTRY", "CheckOptions", "Kind", "Target", "check_kind", "checks_for", "describe",
           "detect_kind", "get", "kind_signature", "parse_kind", "resolve", "spec_of"]

#: The cells a module or cell target can be: those torch has classes for (the cell registry's).
CELLS = TORCH_CELLS


@dataclass(frozen=True)
class Target:
    """A loaded target: how it is named in ids, reports and reproducers (``spec``), the object
    itself, its kind and (module and cell kinds) the cell it implements."""

    spec: str
    obj: object
    kind: str
    cell: str | None = None


@dataclass(frozen=True)
class CheckOptions:
    """What a kind's factory needs besides the target: where to run and in which precisions."""

    device: str = "cpu"
    dtypes: tuple = ("float64", "float32")


@dataclass(frozen=True)
class Kind:
    name: str
    protocol: str
    factory: str  # "module.path:function", relative to this package when it starts with "."
    detect: Callable[[object], bool]
    check: Callable[[str, object, "Kind"], None]
    names_cell: bool = False  # "module:lstm", "numpy:lstm": the kind's checks are per cell and may be narrowed to one
    needs_cell: bool = False  # module, cell: the checks are of one cell, found from the class when not named

    def checks(self, target: Target, options: CheckOptions) -> list:
        module, _, function = self.factory.partition(":")
        factory = getattr(importlib.import_module(module, __package__), function)
        return [replace(c, target=target.spec, kind=self.name) for c in factory(target, options)]


# --------------------------------------------------------------------------- detection and checks


def _is_step_object(obj) -> bool:
    return callable(getattr(obj, "step", None)) and callable(getattr(obj, "init", None))


def _class_like(obj) -> bool:
    return not _is_step_object(obj) and inspect.isclass(obj) and (is_torch_module_class(obj) or cell_of(obj) is not None)


def _looks_like_cell(obj) -> bool:
    return _class_like(obj) and "cell" in obj.__name__.lower()


def _looks_like_module(obj) -> bool:
    return _class_like(obj) and "cell" not in obj.__name__.lower()


def _names(obj) -> list[str]:
    return [n.lower() for n in (positional_names(obj) or [])] if callable(obj) else []


def _detect_randomized(obj) -> bool:
    names = _names(obj)
    return "pis" in names and "rng" in names


def _detect_tbptt(obj) -> bool:
    names = _names(obj)
    return "pis" not in names and ("scheme" in names or ("k" in names and "cotangent" in names))


def _detect_numpy(obj) -> bool:
    names = _names(obj)
    return "d_output" in names or "d_h_n" in names


def _detect_clip(obj) -> bool:
    if not callable(obj) or inspect.isclass(obj):
        return False
    names = _names(obj)
    return (len(names) >= 2 and names[1] in ("max_norm", "clip_value")) or \
        getattr(obj, "__name__", "").startswith("clip_grad")


def _declares_jax(obj) -> bool:
    return getattr(obj, "bpttcheck_kind", None) == "jax"


def _check_jax(spec, obj, kind) -> None:
    # a JaxCell, or a factory of one (jax_checks.jax_target says which when it is called)
    if not _declares_jax(obj) and not callable(obj):
        raise TargetError(f"target={spec!r} is {type(obj).__name__}: a jax target is a JaxCell "
                          "(bpttcheck.properties.oracle.jax_checks) or a zero-argument factory returning one")


def _check_class(spec, obj, kind) -> None:
    if inspect.isclass(obj):
        return
    example = "LSTM" if kind.name == "module" else "LSTMCell"
    raise TargetError(f"target={spec!r} is {type(obj).__name__} {obj!r}: a {kind.name} target must be a class "
                      f"constructed like torch.nn.{example}(input_size, hidden_size, ...); name the class, not an "
                      "instance")


def _check_step(spec, obj, kind) -> None:
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


def _function(arity: int, names: tuple, more: bool = False):
    """A signature check for a function protocol of ``arity`` positional arguments."""

    def check(spec, obj, kind) -> None:
        signature = f"fn({', '.join(names)}{', ...' if more else ''})"
        if not callable(obj):
            raise TargetError(f"target={spec!r} is not callable: a {kind.name} target is a function {signature}")
        if not accepts(obj, arity):
            got = positional_names(obj)
            raise TargetError(f"target={spec!r} takes ({', '.join(got or [])}): a {kind.name} target must accept "
                              f"{signature}; adapt its signature or choose the right --kind")

    check.signature = f"fn({', '.join(names)}{', ...' if more else ''})"
    return check


_TBPTT = ("module", "x", "hx", "cotangent", "k", "scheme")
_RANDOMIZED = ("module", "x", "hx", "cotangent", "pis", "rng")
_NUMPY = ("config", "params", "x", "h0", "c0", "d_output", "d_h_n", "d_c_n")

#: The kinds, in the order they are listed (detection tries them in this order too).
REGISTRY = (
    Kind("module", "a class constructed like torch.nn.RNN/LSTM/GRU, with torch's parameter names and forward",
         ".module_checks:module_checks", _looks_like_module, _check_class, names_cell=True, needs_cell=True),
    Kind("cell", "a class constructed like torch.nn.RNNCell/LSTMCell/GRUCell",
         ".module_checks:cell_checks", _looks_like_cell, _check_class, names_cell=True, needs_cell=True),
    Kind("step", "an object with init(input_size, hidden_size, rng) and step(params, x_t, state), or its factory",
         ".step_checks:step_checks", _is_step_object, _check_step),
    Kind("clip", "a drop-in for clip_grad_norm_(parameters, max_norm, ...) or clip_grad_value_(parameters, clip_value)",
         ".clip_checks:clip_checks", _detect_clip, _function(2, ("parameters", "max_norm"), more=True)),
    Kind("tbptt", "fn(module, x, hx, cotangent, k, scheme) -> dict of truncated-BPTT gradients",
         ".tbptt_checks:tbptt_checks", _detect_tbptt, _function(6, _TBPTT)),
    Kind("randomized", "fn(module, x, hx, cotangent, pis, rng) -> dict: one draw of randomized truncation",
         ".randomized_checks:randomized_checks", _detect_randomized, _function(6, _RANDOMIZED)),
    Kind("numpy", "fn(config, params, x, h0, c0, d_output, d_h_n, d_c_n) -> dict over NumPy arrays",
         ".numpy_checks:numpy_checks", _detect_numpy, _function(8, _NUMPY), names_cell=True),
    Kind("jax", "a JaxCell(step, cell, params): step(params, x_t, state) -> (output_t, state) in JAX, or its factory",
         ".jax_checks:jax_checks", _declares_jax, _check_jax),
)
_BY_NAME = {k.name: k for k in REGISTRY}
KINDS = tuple(_BY_NAME)


def get(name: str) -> Kind:
    """The registry record of kind ``name``; TargetError (with a suggestion) for an unknown one."""
    if name not in _BY_NAME:
        close = difflib.get_close_matches(str(name), KINDS, n=1)
        raise TargetError(f"kind={name!r}: expected one of {', '.join(KINDS)}"
                          + (f" (did you mean {close[0]!r}?)" if close else ""))
    return _BY_NAME[name]


def describe() -> str:
    """The kinds for a help text: "module, cell, … (module, cell and numpy may add the cell, e.g. 'module:lstm')"."""
    cells = [k.name for k in REGISTRY if k.names_cell]
    return (", ".join(KINDS) + f" ({_listed(cells, 'and')} may add the cell, e.g. '{cells[0]}:lstm')" if cells
            else ", ".join(KINDS))


def _listed(names: list, last: str) -> str:
    """``a, b and c`` (or ``a or b``)."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {last} {names[-1]}"


def detect_kind(obj) -> str | None:
    """The kind ``obj`` declares (``bpttcheck_kind``), else the first kind whose detection
    recognises it, or None when none does clearly."""
    declared = getattr(obj, "bpttcheck_kind", None)
    if isinstance(declared, str) and declared in _BY_NAME:
        return declared
    for kind in REGISTRY:
        if kind.detect(obj):
            return kind.name
    return None


def parse_kind(kind):
    """``"module"`` or ``"module:lstm"`` -> (kind, cell or None); TargetError for anything else."""
    if kind is None:
        return None, None
    if not isinstance(kind, str):
        raise TargetError(f"kind={kind!r}: expected one of {', '.join(KINDS)}")
    base, _, cell = kind.partition(":")
    record = get(base)
    if cell and (not record.names_cell or cell not in CELLS):
        named = [k.name for k in REGISTRY if k.names_cell]
        raise TargetError(f"kind={kind!r}: a cell can be named only for {_listed(named, 'or')} kinds, as "
                          f"{', '.join(repr(n + ':lstm') for n in named)} (one of {', '.join(CELLS)})")
    return base, cell or None


def check_kind(spec: str, obj, kind: str) -> None:
    """Refuse ``obj`` if it cannot follow ``kind``'s protocol (README: the protocols)."""
    record = get(kind)
    record.check(spec, obj, record)


def kind_signature(kind: str) -> str:
    """The call signature of a function kind's protocol, e.g. ``fn(module, x, hx, cotangent, k, scheme)``."""
    return getattr(get(kind).check, "signature", get(kind).protocol)


def spec_of(target) -> str:
    """How a target is named: a spec string as given; an object by ``module:qualname`` (which
    reproducers can load again) or, for an object defined inside a function, ``<qualname>``."""
    if isinstance(target, str):
        return target
    obj = target if (inspect.isclass(target) or inspect.isfunction(target) or inspect.ismethod(target)
                     or inspect.isbuiltin(target)) else type(target)
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if module and qualname and "<" not in qualname:
        return f"{module}:{qualname}" + ("" if obj is target else "()")
    return f"<{qualname or type(target).__name__}>"


def resolve(target, kind=None) -> Target:
    """Load (a spec string) or take (an object) a target, and find its kind and cell."""
    spec = spec_of(target)
    base, cell = parse_kind(kind)  # a bad --kind is a usage error before any import of the target
    obj = load_target(target) if isinstance(target, str) else target
    if base is None:
        base = detect_kind(obj)
        if base is None:
            raise TargetError(f"target={spec!r}: cannot tell which kind of target this is; pass --kind "
                              f"(one of {', '.join(KINDS)})")
    check_kind(spec, obj, base)
    if get(base).needs_cell and cell is None:
        cell = cell_of(obj)
        if cell is None:
            name = getattr(obj, "__name__", obj)
            raise TargetError(f"target={spec!r}: cannot tell whether {name} is an RNN, LSTM or GRU; name the class "
                              f"after it, give it a mode attribute, or pass --kind {base}:lstm (or :rnn, :gru)")
    return Target(spec, obj, base, cell)


def checks_for(target: Target, options: CheckOptions) -> list:
    """The checks of a resolved target (a registry lookup: ``get(target.kind).checks(...)``)."""
    return get(target.kind).checks(target, options)
