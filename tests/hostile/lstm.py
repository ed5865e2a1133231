"""``nn.LSTM`` subclasses, one hostile behaviour each, in ``forward`` (each call)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time

import numpy
import torch

#: The result line of the old --timeout child (results were parsed from its stdout).
MARK_FORGED = "@@bpttcheck-result "


_LSTM = torch.nn.LSTM


class ExitZero(_LSTM):
    def forward(self, *args, **kwargs):
        sys.exit(0)


class ExitThree(_LSTM):
    def forward(self, *args, **kwargs):
        sys.exit(3)


class HardExitZero(_LSTM):
    def forward(self, *args, **kwargs):
        os._exit(0)


class HardExitThree(_LSTM):
    def forward(self, *args, **kwargs):
        print("about to leave", flush=True)
        os._exit(3)


class Segfault(_LSTM):
    def forward(self, *args, **kwargs):
        sys.stderr.write("reading address 0\n")
        sys.stderr.flush()
        ctypes.string_at(0)


class Killed(_LSTM):
    def forward(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)


class RaisesKeyboardInterrupt(_LSTM):
    def forward(self, *args, **kwargs):
        raise KeyboardInterrupt


class Hangs(_LSTM):
    def forward(self, *args, **kwargs):
        while True:
            time.sleep(0.1)


class SlowButCorrect(_LSTM):
    """Two seconds per call: slow, correct, and passes with the default time limit."""

    def forward(self, *args, **kwargs):
        time.sleep(2.0)
        return super().forward(*args, **kwargs)


class EatsMemory(_LSTM):
    def forward(self, *args, **kwargs):
        hoard = []
        while True:
            hoard.append(bytearray(256 * 2 ** 20))


class NoisyStderr(_LSTM):
    """Correct, and writes 100 KB to stderr per call."""

    def forward(self, *args, **kwargs):
        sys.stderr.write(("noise " * 20 + "\n") * 830)
        return super().forward(*args, **kwargs)


class StdoutNoNewline(_LSTM):
    """Correct, and writes "x" without a newline to stdout per call."""

    def forward(self, *args, **kwargs):
        sys.stdout.write("x")
        return super().forward(*args, **kwargs)


class ForgesResult(_LSTM):
    """Wrong (outputs scaled), and prints what a result line of the old child protocol looked like."""

    def forward(self, *args, **kwargs):
        print(MARK_FORGED + '{"name": "gradients", "status": "pass", "cases": 25}', flush=True)
        out, state = super().forward(*args, **kwargs)
        return out * 1.5, state


class PatchesNumpy(_LSTM):
    """Wrong (outputs scaled), and replaces numpy.abs by zeros so that differences look like 0."""

    def forward(self, *args, **kwargs):
        numpy.abs = lambda a, *rest, **kw: numpy.zeros_like(numpy.asarray(a, dtype=float))
        out, state = super().forward(*args, **kwargs)
        return out * 1.5, state


class DisablesGrad(_LSTM):
    """Turns autograd off for the whole process, and leaves it off."""

    def forward(self, *args, **kwargs):
        torch.set_grad_enabled(False)
        return super().forward(*args, **kwargs)


class SetsDefaultDtype(_LSTM):
    """Correct, but leaves the default dtype changed."""

    def forward(self, *args, **kwargs):
        torch.set_default_dtype(torch.float16)
        try:
            return super().forward(*args, **kwargs)
        finally:
            torch.set_default_dtype(torch.float16)


class LoosensTheJudge(_LSTM):
    """Wrong (outputs scaled), and widens every float64 allowance by editing the oracle's
    precision table in place — data, not a function, so no check of replaced functions sees it;
    only judging in the oracle's own process does."""

    def forward(self, *args, **kwargs):
        from dataclasses import replace

        from bpttcheck.reference import precision

        row = precision.PRECISION_TABLE["float64"]
        precision.PRECISION_TABLE["float64"] = replace(row, safety=1e300, resolution_goal=1e300)
        out, state = super().forward(*args, **kwargs)
        return out * 1.5, state


class SkipsTheJudge(_LSTM):
    """Wrong (outputs scaled), and makes the worker's judge answer "no comparisons" without asking
    the oracle's process."""

    def forward(self, *args, **kwargs):
        from bpttcheck.properties import judge

        judge.REMOTE = lambda *args: []
        out, state = super().forward(*args, **kwargs)
        return out * 1.5, state
