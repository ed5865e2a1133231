"""The ``bpttcheck`` command line: a thin dispatcher over sub-commands.

Each sub-command lives in its own module with ``add_arguments(parser)`` and ``run(args) -> int``
and is imported only when chosen, so ``bpttcheck verify`` never pays for SymPy or matplotlib.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from bpttcheck._version import __version__

__all__ = ["COMMANDS", "build_parser", "main"]

#: sub-command -> (module, one-line help)
COMMANDS = {
    "verify": ("bpttcheck.commands.verify", "check recurrent implementations against the reference oracles"),
    "bench": ("bpttcheck.commands.bench", "time the oracles against peers measured in the same run"),
    "derive": ("bpttcheck.commands.derive", "print a SymPy derivation of BPTT as LaTeX or Markdown"),
    "diagnose": ("bpttcheck.commands.diagnose", "vanishing/exploding gradient pictures and tables"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bpttcheck",
        description="A correctness oracle for backpropagation through time.",
    )
    parser.add_argument("--version", action="version", version=f"bpttcheck {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("bpttcheck"):
                p.set_defaults(_missing=module)
                continue
            raise
        mod.add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    if getattr(args, "_missing", None):
        print(f"bpttcheck {args.command}: not available in this version", file=sys.stderr)
        return 2
    return int(importlib.import_module(args._module).run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
