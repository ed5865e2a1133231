"""``bpttcheck.check``: the assert-style API, for a user's own test functions.

    >>> import bpttcheck, torch                              # doctest: +SKIP
    >>> bpttcheck.check(torch.nn.GRU)                        # doctest: +SKIP
    >>> bpttcheck.check("mypkg.layers:MyLSTM", dtype="float64", select="gradients")  # doctest: +SKIP

Like ``torch.autograd.gradcheck``: it takes the target itself (a class, a step object or its
factory, a function) or an import string, runs the oracle's checks on it in this process, and
returns the :class:`~bpttcheck.properties.results.Report` when nothing failed. Otherwise it
raises :class:`CheckFailed`, an ``AssertionError`` carrying the report whose message is each
distinct shrunk failure with its reproducer — so pytest shows the verdict, not a traceback
through the oracle. When nothing could be checked at all (every check unsupported, skipped or
inconclusive; ``select`` matching nothing) it raises :class:`NothingChecked`, a
``CheckFailed``: an assert that checked nothing must not pass.
"""

from __future__ import annotations

import sys

from bpttcheck.options import OPTIONS, OptionError, validate
from bpttcheck.properties.oracle.api import verify_target
from bpttcheck.properties.results import EXIT_FAILED, EXIT_NOTHING_CHECKED

__all__ = ["CheckFailed", "NothingChecked", "check"]

#: The keywords ``check`` takes besides target, kind, device and profile (the option table's).
_KEYWORDS = ("dtypes", "dtype", "seed", "timeout", "memory", "in_process", "skip", "xfail", "report", "select", "quiet", "skip_ids",
             "xfail_ids")


class CheckFailed(AssertionError):
    """A check failed; ``.report`` holds every result. The message is each distinct failure once
    (the shrunk counterexample, the allowance, a stand-alone reproducer)."""

    def __init__(self, report, message: str | None = None):
        self.report = report
        super().__init__(message if message is not None else _failure_message(report))


class NothingChecked(CheckFailed):
    """Nothing could be checked (every check skipped, unsupported or inconclusive)."""


def _failure_message(report) -> str:
    failed = len(report.failures)
    head = f"bpttcheck: {failed} of {len(report.results)} checks failed for {', '.join(report.targets)}"
    return f"{head}\n\n{report.failure_text()}\n\n{report.table()}"


def _progress(text: str, end: bool) -> None:
    if end:
        sys.stderr.write(text.lstrip("\r") + "\n")


def check(target, kind: str | None = None, device: str = "cpu", profile: str | None = None,
          raise_on_failure: bool = True, **options):
    """Verify ``target`` with the oracle; return the Report, or raise :class:`CheckFailed`.

    ``target``: an object (class, function, step object, factory) or ``"module:attribute"``;
    ``kind``: one of the registered kinds (``"module:lstm"`` names the cell), detected when None;
    ``device``: "cpu", "cuda" or "all"; ``profile``: "dev", "ci" or "thorough" (default: ci
    under CI, else dev). ``options``: the option table's keywords — ``dtype``/``dtypes``,
    ``seed``, ``timeout``, ``skip``/``xfail`` (files), ``skip_ids``/``xfail_ids`` (patterns),
    ``report`` (a JSON path), ``select``, ``quiet`` (default True: no progress lines).
    ``raise_on_failure=False`` returns the report whatever it holds.
    """
    if not isinstance(raise_on_failure, bool):
        raise OptionError(f"raise_on_failure={raise_on_failure!r} (type={type(raise_on_failure).__name__}): "
                          "expected True or False")
    unknown = sorted(set(options) - set(_KEYWORDS))
    if unknown:
        raise OptionError(f"check() got unknown keyword {unknown[0]!r}; expected one of "
                          f"{', '.join(_KEYWORDS)} (the option table: {', '.join(OPTIONS)})")
    if "dtype" in options and "dtypes" in options:
        raise OptionError("check() got both dtype= and dtypes=; give one")
    dtypes = options.pop("dtype", None) or options.pop("dtypes", None)
    quiet = validate("quiet", options.pop("quiet", True))
    if target is None:
        raise OptionError("target=None: expected the object to verify (a class, a function, a step object) or "
                          "'module:attribute'")
    report = verify_target(target, kind, device=device, profile=profile, dtypes=dtypes,
                           progress=None if quiet else _progress, **options)
    if raise_on_failure and report.exit_status == EXIT_FAILED:
        raise CheckFailed(report)
    if raise_on_failure and report.exit_status == EXIT_NOTHING_CHECKED:
        raise NothingChecked(report, f"bpttcheck: nothing could be checked for {', '.join(report.targets)}: "
                                     f"{report.why}\n\n{report.table()}")
    return report
