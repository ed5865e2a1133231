"""``bpttcheck verify``: check recurrent implementations against the oracles.

    bpttcheck verify                                  # PyTorch's own built-ins
    bpttcheck verify --target mypkg.layers:MyLSTM     # a drop-in for torch.nn.LSTM
    bpttcheck verify --target mypkg.tbptt:grads --kind tbptt --report reports/tbptt.json
    BPTTCHECK_TARGET=mypkg.layers:MyLSTM bpttcheck verify

The flags are built from the option table (:mod:`bpttcheck.options`), so each is also an
environment variable and a plugin option with the same meaning. Progress goes to stderr, each
distinct failure is printed once with its shrunk counterexample and reproducer, then the table;
the exit status says what happened (see :data:`EXIT_HELP`).
"""

from __future__ import annotations

import argparse
import sys

from bpttcheck.options import OPTIONS, OptionError, add_argparse_options, resolve
from bpttcheck.properties.oracle.api import EXIT_INTERRUPTED, RunInterrupted, verify_target
from bpttcheck.properties.oracle.kinds import REGISTRY, TargetError
from bpttcheck.properties.results import EXIT_FAILED, EXIT_NOTHING_CHECKED, EXIT_OK, EXIT_USAGE

__all__ = ["EXIT_HELP", "add_arguments", "run"]

EXIT_HELP = f"""exit status:
  {EXIT_OK}  something was checked and nothing failed
  {EXIT_FAILED}  a check failed (or the oracle hit an error)
  {EXIT_USAGE}  usage error: a bad option, a target that cannot be loaded, a missing file
  {EXIT_NOTHING_CHECKED}  nothing could be checked: every check skipped, unsupported or inconclusive, or
     none selected (one line on stderr says why)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C): the table (and JSON report) of the checks that finished"""


def _kinds_help() -> str:
    named = [k.name for k in REGISTRY if k.names_cell]  # the registry says which kinds take "kind:cell"
    listed = named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
    return "kinds:\n" + "\n".join(f"  {k.name:<11}{k.protocol}" for k in REGISTRY) + \
        f"\n  ({listed} may name the cell: --kind {named[0]}:lstm, --kind {named[-1]}:gru)"


def add_arguments(parser) -> None:
    """The option table's flags (``--json``, ``--skip-file``, ``--xfail-file`` kept as
    deprecated spellings of ``--report``, ``--skip``, ``--xfail``)."""
    add_argparse_options(parser)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (_kinds_help() + "\n\n" + EXIT_HELP + "\n\nEvery option can also come from its environment "
                     "variable (BPTTCHECK_<NAME>); the command line wins.")


def _progress_printer(quiet: bool):
    if quiet:
        return None
    tty = sys.stderr.isatty()

    def show(text: str, end: bool):
        if not tty and not end:
            return  # a log file gets one line per check
        sys.stderr.write(("\x1b[2K" if tty else "") + (text if tty else text.lstrip("\r")) + ("\n" if end else ""))
        sys.stderr.flush()

    return show


def run(args) -> int:
    try:
        values = {name: resolve(opt, getattr(args, opt.dest, None)) for name, opt in OPTIONS.items()}
        report = verify_target(values["target"] or None, values["kind"], device=values["device"],
                               profile=values["profile"], seed=values["seed"], skip=values["skip"],
                               xfail=values["xfail"], progress=_progress_printer(values["quiet"]),
                               dtypes=values["dtype"] or None, select=values["select"], timeout=values["timeout"],
                               report=values["report"], memory=values["memory"], in_process=values["in-process"])
    except (TargetError, OptionError, OSError) as exc:
        print(f"bpttcheck verify: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RunInterrupted as stop:  # Ctrl-C: what finished, no traceback
        print("\n" + stop.report.table())
        print(f"bpttcheck verify: interrupted; {len(stop.report.results)} checks had finished", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:  # before any check finished (while loading the targets)
        print("\nbpttcheck verify: interrupted before any check finished", file=sys.stderr)
        return EXIT_INTERRUPTED
    failures = report.failure_text()
    if failures:
        print("\n" + failures + "\n")
    print(report.table())
    if report.why:
        print(f"bpttcheck verify: {report.why}", file=sys.stderr)
    return report.exit_status
