"""The one option table: every option is a command-line flag, a pytest option, an environment
variable and a Python API keyword, with the same meaning and the same validation.

==========  ====================  =========================  =====================  ============
option      ``bpttcheck verify``  pytest                     environment            API keyword
==========  ====================  =========================  =====================  ============
target      ``--target SPEC``     ``--bpttcheck-target``     ``BPTTCHECK_TARGET``   ``target``
kind        ``--kind KIND``       ``--bpttcheck-kind``       ``BPTTCHECK_KIND``     ``kind``
…           ``--<name>``          ``--bpttcheck-<name>``     ``BPTTCHECK_<NAME>``   ``<name>``
==========  ====================  =========================  =====================  ============

(:data:`OPTIONS` lists them all; ``bpttcheck verify --help`` and ``pytest --help`` show them.)
A value comes from the command line, else the environment variable, else the default, and is
checked the same way whichever it came from (:func:`resolve`, :func:`validate`): a bad value is
an :class:`OptionError` naming the option, the value and what is expected.

>>> OPTIONS["device"].pytest_flag, OPTIONS["device"].cli_flag, OPTIONS["device"].env
('--bpttcheck-device', '--device', 'BPTTCHECK_DEVICE')
>>> resolve(OPTIONS["target"], None, {"BPTTCHECK_TARGET": "a.b:C, d:E"})
['a.b:C', 'd:E']

Skip and xfail files hold check ids, one per line, ``#`` starting a comment, with fnmatch
patterns (``*``, ``?``, ``[...]``) allowed and brackets also matching literally, and an id may be
prefixed by its target (``pkg.mod:MyLSTM::module/lstm/…``) to apply to that target only:
:func:`read_id_file` reads one and :func:`id_matches` / :func:`matching_pattern` match ids — the
same reader and matcher for the command line, the plugin and the API. Only the standard library
is imported, so the plugin stays cheap in every pytest run.
"""

from __future__ import annotations

import argparse
import fnmatch
import math
import os
import re
import sys
from dataclasses import dataclass
from typing import Mapping

from .profiles import PROFILES, default_profile

__all__ = [
    "DEVICES",
    "OPTIONS",
    "OptionDef",
    "OptionError",
    "PROFILES",
    "add_argparse_options",
    "add_pytest_options",
    "check_names",
    "default_profile",
    "id_matches",
    "matching_pattern",
    "read_id_file",
    "resolve",
    "validate",
]

DEVICES = ("cpu", "cuda", "all")


class OptionError(ValueError):
    """A bad option value; the message names the option (flag, variable or keyword) and says
    what is expected."""


@dataclass(frozen=True)
class OptionDef:
    """One option. ``multiple`` options repeat on the command line and take a list in the API;
    their environment variable holds several values separated by commas or white space.
    ``type`` is "str", "int", "float" (positive and finite), "size" (bytes: ``8G``, ``512M``, a
    number of bytes, or ``off``), "path" or "flag" (a switch).
    ``short``: a one-letter command-line spelling; ``aliases``: older command-line spellings
    kept working (deprecated: a note on stderr when used)."""

    name: str
    help: str
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    multiple: bool = False
    type: str = "str"
    default: object = None
    short: str | None = None
    aliases: tuple[str, ...] = ()
    api: str | None = None  # the Python keyword when it differs from the name

    @property
    def pytest_flag(self) -> str:
        return f"--bpttcheck-{self.name}"

    @property
    def cli_flag(self) -> str:
        return f"--{self.name}"

    @property
    def env(self) -> str:
        return "BPTTCHECK_" + self.name.upper().replace("-", "_")

    @property
    def dest(self) -> str:
        return "bpttcheck_" + self.name.replace("-", "_")

    @property
    def keyword(self) -> str:
        return self.api or self.name.replace("-", "_")


_TABLE = (
    OptionDef("target", "the implementation to verify, as 'package.module:attribute' (repeatable); "
                        "default: PyTorch's own built-ins", metavar="SPEC", multiple=True),
    # No parser choices: a kind may name the cell too ("module:lstm"); the kind registry validates it.
    OptionDef("kind", "what the target is (see the kinds below); detected when left out", metavar="KIND"),
    OptionDef("device", "devices to check on; 'all' lists CUDA checks as skipped when no GPU is present",
              choices=DEVICES, default="all"),
    OptionDef("dtype", "precisions to check in (repeatable): float64, float32, and on CUDA tf32, float16, bfloat16, "
                       "autocast-float16, autocast-bfloat16; default float64 and float32, and the CUDA ones on CUDA",
              metavar="DTYPE", multiple=True, api="dtypes"),
    OptionDef("profile", "cases per check: dev 15 random, ci 25 derandomized, thorough 300 "
                         "(default: ci when $CI is set, else dev)", choices=PROFILES),
    OptionDef("seed", "Hypothesis seed (randomizes a derandomized profile)", metavar="N", type="int"),
    OptionDef("timeout", "seconds allowed per case before the target is stopped and the check fails as a hang "
                         "(positive, finite)", metavar="S", type="float"),
    OptionDef("memory", "memory cap of the process running the target, e.g. 8G or 512M (default: half of the "
                        "machine's memory; 'off' for none); a target over it fails with OutOfMemory",
              metavar="SIZE", type="size"),
    OptionDef("in-process", "run the targets in this process, not in a worker process (for debugging with pdb: "
                            "no time or memory limit, and a crashing target ends the run)", type="flag"),
    OptionDef("skip", "file of check ids to skip: one per line, '#' comments, fnmatch patterns, 'target::id'",
              metavar="FILE", type="path", aliases=("--skip-file",)),
    OptionDef("xfail", "file of check ids expected to fail: same format as the skip file",
              metavar="FILE", type="path", aliases=("--xfail-file",)),
    OptionDef("report", "write the JSON report (schema: bpttcheck/properties/report.schema.json)",
              metavar="PATH", type="path", aliases=("--json",)),
    OptionDef("select", "run only checks whose id or name contains this text", metavar="TEXT", short="-k"),
    OptionDef("quiet", "no progress lines: only the verdicts and the table", type="flag", short="-q"),
)

#: name -> definition, in the order they are shown in ``--help``.
OPTIONS: dict[str, OptionDef] = {o.name: o for o in _TABLE}
_BY_KEYWORD = {o.keyword: o.name for o in _TABLE if o.keyword != o.name}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def _convert(opt: OptionDef, raw, where: str):
    """``raw`` (a string from the command line or the environment, or an API value) as the
    option's type; OptionError naming ``where`` (flag, variable or keyword) otherwise."""
    if opt.type == "flag":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise OptionError(f"{where}={raw!r}: expected a boolean (1/0, true/false, yes/no)")
    if opt.type == "int":
        if isinstance(raw, bool) or (not isinstance(raw, (int, str))):
            raise OptionError(f"{where}={raw!r} (type={type(raw).__name__}): expected an integer")
        try:
            return int(raw)
        except ValueError:
            raise OptionError(f"{where}={raw!r}: expected an integer") from None
    if opt.type == "float":
        try:
            value = float(raw) if not isinstance(raw, bool) else float("nan")
        except (TypeError, ValueError):
            raise OptionError(f"{where}={raw!r}: expected a number of seconds, e.g. 30") from None
        if not (math.isfinite(value) and value > 0):
            raise OptionError(f"{where}={raw!r}: expected a positive, finite number of seconds, e.g. 30")
        return value
    if opt.type == "size":
        return _size(raw, where)
    if opt.type == "path":
        if not isinstance(raw, (str, os.PathLike)):
            raise OptionError(f"{where}={raw!r} (type={type(raw).__name__}): expected a file path")
        return os.fspath(raw).strip() if isinstance(raw, str) else os.fspath(raw)
    if not isinstance(raw, str):
        raise OptionError(f"{where}={raw!r} (type={type(raw).__name__}): expected a string")
    raw = raw.strip()
    if opt.choices and raw not in opt.choices:
        raise OptionError(f"{where}={raw!r}: expected one of {', '.join(opt.choices)}")
    return raw


_UNITS = {"": 1, "B": 1, "K": 2 ** 10, "KB": 2 ** 10, "KIB": 2 ** 10, "M": 2 ** 20, "MB": 2 ** 20, "MIB": 2 ** 20,
          "G": 2 ** 30, "GB": 2 ** 30, "GIB": 2 ** 30, "T": 2 ** 40, "TB": 2 ** 40, "TIB": 2 ** 40}


def _size(raw, where: str):
    """A memory size in bytes (``8G``, ``512M``, ``1.5GiB``, an integer of bytes), or 0 for
    ``off`` (no cap); OptionError naming ``where`` otherwise."""
    expected = "expected a size such as 8G, 512M or a number of bytes (>= 64M), or 'off'"
    if isinstance(raw, bool):
        raise OptionError(f"{where}={raw!r} (type=bool): {expected}")
    if isinstance(raw, (int, float)):
        value = float(raw)
    elif isinstance(raw, str):
        text = raw.strip().upper()
        if text in ("OFF", "NONE", "0"):
            return 0
        match = re.fullmatch(r"([0-9]*\.?[0-9]+(?:E[0-9]+)?)\s*([KMGT]?I?B?)", text)
        if not match:
            raise OptionError(f"{where}={raw!r}: {expected}")
        value = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise OptionError(f"{where}={raw!r} (type={type(raw).__name__}): {expected}")
    if value == 0 and not isinstance(raw, str):
        return 0
    if not (math.isfinite(value) and value >= 2 ** 26):
        raise OptionError(f"{where}={raw!r}: {expected}")
    return int(value)


def validate(name: str, value):
    """An API keyword's value, checked as the command line would check it (None: not given)."""
    name = _BY_KEYWORD.get(name, name)
    if name not in OPTIONS:
        raise OptionError(f"{name!r} is not a bpttcheck option; expected one of {', '.join(OPTIONS)}")
    opt = OPTIONS[name]
    if value is None:
        return None
    if opt.multiple:
        values = [value] if isinstance(value, (str, os.PathLike)) else value
        try:
            values = list(values)
        except TypeError:
            raise OptionError(f"{opt.keyword}={value!r}: expected a string or a list of strings") from None
        return [_convert(opt, v, opt.keyword) for v in values]
    return _convert(opt, value, opt.keyword)


def resolve(opt: OptionDef, given, environ: Mapping[str, str] | None = None):
    """The option's value: ``given`` when not None (or a non-empty list), else its environment
    variable, else its default. A bad environment value raises :class:`OptionError` naming the
    variable and what is expected (command-line values were already checked by the parser)."""
    environ = os.environ if environ is None else environ
    if given is not None and given != [] and given is not False:
        return list(given) if opt.multiple else given
    raw = environ.get(opt.env, "").strip()
    if not raw:
        return [] if opt.multiple else (False if opt.type == "flag" else opt.default)
    if opt.multiple:
        return [_convert(opt, v, opt.env) for v in re.split(r"[,\s]+", raw) if v]
    return _convert(opt, raw, opt.env)


# --------------------------------------------------------------------------- building the parsers


def _kwargs(opt: OptionDef) -> dict:
    # Defaults stay None so that resolve() can tell "not given" from a given value.
    kwargs = dict(dest=opt.dest, default=None, help=f"{opt.help} [env: {opt.env}]")
    if opt.type == "flag":
        kwargs["action"] = "store_true"
        return kwargs
    if opt.metavar:
        kwargs["metavar"] = opt.metavar
    if opt.choices:
        kwargs["choices"] = opt.choices
    if opt.multiple:
        kwargs["action"] = "append"
    if opt.type in ("int", "float", "size"):
        kwargs["type"] = _parser_type(opt)
    return kwargs


def _parser_type(opt):
    def convert(text):
        try:
            return _convert(opt, text, opt.cli_flag)
        except OptionError as exc:
            raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1]) from None

    convert.__name__ = opt.type  # argparse names the type in its error message
    return convert


class _Deprecated(argparse.Action):
    """An older spelling of an option: works, and says which name replaces it."""

    def __init__(self, option_strings, dest, new_flag="", inner="store", **kwargs):
        self.new_flag, self.inner = new_flag, inner
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        sys.stderr.write(f"bpttcheck: {option_string} is deprecated; use {self.new_flag}\n")
        if self.inner == "append":
            items = list(getattr(namespace, self.dest) or [])
            items.append(values)
            setattr(namespace, self.dest, items)
        else:
            setattr(namespace, self.dest, values)


def add_pytest_options(group, names=None) -> None:
    """Add ``--bpttcheck-<name>`` for each option (all, or ``names``) to a pytest option group."""
    for opt in _TABLE:
        if names is None or opt.name in names:
            group.addoption(opt.pytest_flag, **_kwargs(opt))


def add_argparse_options(parser, names=None) -> None:
    """Add ``--<name>`` (and its short and deprecated spellings) for each option (all, or
    ``names``) to an argparse parser; read the values back with :func:`resolve`."""
    for opt in _TABLE:
        if names is not None and opt.name not in names:
            continue
        flags = [opt.short, opt.cli_flag] if opt.short else [opt.cli_flag]
        parser.add_argument(*flags, **_kwargs(opt))
        for alias in opt.aliases:
            kwargs = _kwargs(opt)
            inner = kwargs.pop("action", "store")
            kwargs.pop("default")
            parser.add_argument(alias, action=_Deprecated, new_flag=opt.cli_flag, inner=inner,
                                help=argparse.SUPPRESS, **{k: v for k, v in kwargs.items() if k in ("dest", "metavar")})


# --------------------------------------------------------------------------- check ids


def read_id_file(path) -> list[str]:
    """The check-id patterns in a skip/xfail file: one per line, blank lines and everything after
    ``#`` ignored. A missing file raises ``FileNotFoundError`` naming it."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        raise FileNotFoundError(f"bpttcheck id file {str(path)!r} does not exist") from None
    patterns = []
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if text:
            patterns.append(text)
    return patterns


def check_names(target: str, check_id: str) -> tuple[str, str]:
    """The names a check answers to in an id file: its id, and ``target::id``."""
    return check_id, f"{target}::{check_id}"


def matching_pattern(ids, patterns) -> str | None:
    """The first of ``patterns`` that matches any of ``ids`` (a check can be named several ways,
    e.g. by its id alone or prefixed by its target), else None.

    Check ids end in brackets (``module/LSTM/gradients[cpu,float64]``), which fnmatch reads as a
    character class; so a pattern matches when it equals the id, when fnmatch matches it, or when
    fnmatch matches it with its brackets taken literally (``module/*/gradients[cuda,*]``).
    Case-sensitive."""
    if isinstance(ids, str):
        ids = (ids,)
    for pattern in patterns:
        literal = pattern.replace("[", "\0").replace("]", "[]]").replace("\0", "[[]")
        for i in ids:
            if i == pattern or fnmatch.fnmatchcase(i, pattern) or fnmatch.fnmatchcase(i, literal):
                return pattern
    return None


def id_matches(target: str, check_id: str, patterns) -> str | None:
    """The pattern of ``patterns`` selecting the check ``check_id`` of ``target``, or None."""
    return matching_pattern(check_names(target, check_id), patterns)
