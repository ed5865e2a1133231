"""``bpttcheck verify``: check recurrent implementations against the oracles.

    bpttcheck verify                                  # PyTorch's own built-ins
    bpttcheck verify --target mypkg.layers:MyLSTM     # a drop-in for torch.nn.LSTM
    bpttcheck verify --target mypkg.tbptt:grads --kind tbptt --json reports/tbptt.json
    bpttcheck verify --device cuda --json reports/cuda.json

With no target it verifies ``nn.RNN``/``LSTM``/``GRU``, the three cells, ``clip_grad_norm_``,
``clip_grad_value_``, a detach-loop TBPTT and a hook-scaled randomized estimator (see
:mod:`bpttcheck.properties.oracle`). Progress on stderr while it works, a table at the end,
every failure with its shrunk counterexample and a stand-alone reproducer; exit status 0
only if every check passed (unsupported, skipped and expected failures do not count against).
"""

from __future__ import annotations

import json
import os
import sys

from .runner import CheckResult, PropertyCheck

__all__ = ["add_arguments", "builtin_checks", "environment", "format_table", "read_id_file", "run", "verify"]


def add_arguments(parser) -> None:
    parser.add_argument("--target", metavar="SPEC", action="append", default=None,
                        help="implementation under test as 'module.path:attribute' (repeatable); "
                             "default: PyTorch's own built-ins")
    parser.add_argument("--kind", default=None,
                        help="module, cell, step, clip, tbptt, randomized or numpy (module:lstm names the cell); "
                             "default: detected from the target")
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="all",
                        help="devices to check on (default: all available; cuda is skipped when absent)")
    parser.add_argument("--dtype", action="append", default=None, metavar="DTYPE",
                        help="float64, float32, tf32, float16, bfloat16, autocast-float16, autocast-bfloat16 "
                             "(repeatable; default: float64 and float32, and the CUDA precisions on CUDA)")
    parser.add_argument("--profile", choices=("dev", "ci", "thorough"), default=None,
                        help="Hypothesis profile: how many cases per check (default: $BPTTCHECK_PROFILE, else ci under CI, else dev)")
    parser.add_argument("--seed", type=int, default=None, help="Hypothesis seed (randomizes a derandomized profile)")
    parser.add_argument("--timeout", type=float, default=None, metavar="S",
                        help="seconds allowed per case; the checks then run in a child process that is stopped "
                             "when a case hangs")
    parser.add_argument("--json", metavar="PATH", default=None, help="also write the report as JSON")
    parser.add_argument("--skip-file", metavar="PATH", default=None,
                        help="check ids (or shell patterns) to skip, one per line, '#' comments")
    parser.add_argument("--xfail-file", metavar="PATH", default=None,
                        help="check ids (or shell patterns) expected to fail, one per line")
    parser.add_argument("-k", "--select", default=None, help="run only checks whose id or name contains this text")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines, only the table")


def builtin_checks(device: str = "all") -> list[PropertyCheck]:
    """The checks of PyTorch's own built-ins (see :data:`~bpttcheck.properties.oracle.BUILTIN_TARGETS`)."""
    from .oracle import builtin_checks as oracle_builtins

    return oracle_builtins(device)


def environment(device: str = "all") -> dict:
    from .oracle.report import environment as env

    return env(device)


def format_table(results: list[CheckResult]) -> str:
    from .oracle.report import format_table as table

    return table(results)


def verify(checks: list[PropertyCheck], profile: str = "dev", seed: int | None = None,
           progress=None) -> list[CheckResult]:
    """Run ``checks``; returns their results."""
    from .oracle.api import run_one

    results = []
    for i, check in enumerate(checks, 1):
        tick = None
        if progress is not None:
            progress(f"[{i}/{len(checks)}] {check.check_id} ...", end=False)
            tick = lambda text: progress(f"\r[{i}/{len(checks)}] {check.check_id} ... {text}", end=False)  # noqa: E731
        result = run_one(check, profile, seed, tick)
        if progress is not None:
            progress(f"\r[{i}/{len(checks)}] {check.check_id} ... {result.status} "
                     f"({result.cases} cases, {result.seconds:.1f} s)", end=True)
        results.append(result)
    return results


def read_id_file(path) -> list[str]:
    """Check ids (or shell patterns) from a skip/xfail file: one per line, '#' starts a comment."""
    if not path:
        return []
    with open(path) as fh:
        return [line.split("#", 1)[0].strip() for line in fh if line.split("#", 1)[0].strip()]


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
    from .oracle import TargetError, verify_target

    try:
        report = verify_target(args.target, args.kind, device=args.device, profile=args.profile, seed=args.seed,
                               skip_ids=read_id_file(args.skip_file), xfail_ids=read_id_file(args.xfail_file),
                               progress=_progress_printer(args.quiet),
                               dtypes=tuple(args.dtype) if args.dtype else None, select=args.select,
                               timeout=args.timeout)
    except TargetError as exc:
        print(f"bpttcheck verify: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"bpttcheck verify: {exc}", file=sys.stderr)
        return 2
    for r in report.results:
        if r.status in ("fail", "error"):
            print(f"\n{r.id}: {r.status.upper()}\n{r.message}\n")
    print(report.table())
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump(report.to_json(), fh, indent=2, default=str)
    return 0 if report.ok else 1
