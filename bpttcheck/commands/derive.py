"""``bpttcheck derive``: print a SymPy derivation of BPTT as LaTeX or Markdown.

SymPy is imported inside :func:`run` only: the CLI imports this module to build its parser.
"""

from __future__ import annotations

import sys

from bpttcheck.reference.cells import CELLS
from bpttcheck.reference.validation import InvalidArgument

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.add_argument("--cell", choices=CELLS, default="rnn", help="recurrent cell (default rnn)")
    parser.add_argument("--nonlinearity", choices=("tanh", "relu", "identity", "sigmoid"), default="tanh",
                        help="activation of the Elman RNN (default tanh)")
    parser.add_argument("-T", type=int, default=3, help="number of time steps, 1..8 (default 3)")
    parser.add_argument("--hidden", type=int, default=1, help="hidden size (default 1)")
    parser.add_argument("--input", type=int, default=1, help="input size (default 1)")
    parser.add_argument("--format", choices=("latex", "markdown"), default="markdown", help="output format")
    parser.add_argument("--output", metavar="FILE", default=None, help="write to FILE instead of stdout")


def run(args) -> int:
    from bpttcheck.symbolic.derive import derivation

    try:
        text = derivation(args.cell, args.nonlinearity, args.T, args.hidden, args.input, args.format)
    except InvalidArgument as exc:
        print(f"bpttcheck derive: {exc}", file=sys.stderr)
        return 2
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0
