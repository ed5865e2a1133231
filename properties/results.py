"""The one results model: a :class:`Status` per check, one :class:`CheckResult`, one :class:`Report`
with one JSON writer, one :func:`environment` record, one ``ok`` rule and one exit status.

Everything here is plain data that survives ``json.dumps`` and a round trip through
:meth:`Report.from_json`, so results can cross a process boundary (xdist, a worker process)
unchanged. The JSON layout is documented field by field in ``docs/oracle.md`` and shipped as a
JSON Schema (``report.schema.json`` beside this module, :func:`schema`).

Exit statuses (:func:`exit_status`): 0 = something was checked and nothing failed; 1 = a check
failed or errored; 4 = nothing could be checked (every check skipped, unsupported or
inconclusive, or no check selected) — :attr:`Report.reason` then says why in one line. (2, a
usage error, is the command line's own.)
"""

from __future__ import annotations

import enum
import json
import math
import os
import platform
from dataclasses import asdict, dataclass, field, fields

import hypothesis
import numpy

from bpttcheck._version import __version__

from .report_text import failure_text, format_table
from .torch_adapter import tf32_state

__all__ = [
    "CHECKED",
    "EXIT_FAILED",
    "EXIT_NOTHING_CHECKED",
    "EXIT_OK",
    "EXIT_USAGE",
    "FAILING",
    "REPORT_FORMAT",
    "CheckResult",
    "Report",
    "Status",
    "environment",
    "exit_status",
    "json_safe",
    "nothing_checked_reason",
    "schema",
    "tf32_state",
]

#: The version of the JSON layout; bumped whenever a key changes meaning or goes away.
REPORT_FORMAT = 2

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOTHING_CHECKED = 0, 1, 2, 4


class Status(str, enum.Enum):
    """A check's verdict. A ``str`` enum: ``status == "pass"`` and ``json.dumps`` keep working."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"  # the oracle itself broke (a bug to report), not the target
    SKIP = "skip"  # not run: a skip file, a missing device or dependency
    UNSUPPORTED = "unsupported"  # the target declined every case of the check
    XFAIL = "xfail"  # failed, and listed as expected to
    XPASS = "xpass"  # passed although listed as expected to fail
    INCONCLUSIVE = "inconclusive"  # every judged case too ill-conditioned to tell

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


#: Statuses that make a run fail.
FAILING = (Status.FAIL, Status.ERROR)
#: Statuses of a check that was actually judged (its verdict means something).
CHECKED = (Status.PASS, Status.XFAIL, Status.XPASS)


@dataclass
class CheckResult:
    """The outcome of one check.

    ``cases``: every case tried (shrinking included); ``inconclusive``: judged cases whose
    allowance was too wide to detect a relative error of 1e-6 (float64) / 1e-2 (float32);
    ``declines``: the option values the target declined while the others were certified
    ("num_layers ≥ 2", "relu"); ``worst_*``: the largest error relative to its allowance over
    the passing cases; ``resolution``: the largest allowance granted relative to the quantity's
    scale (None when the comparisons do not say); ``fail_*``: the failing case's own error,
    its allowance and the quantity (None unless the check failed on a comparison).
    """

    name: str
    status: Status
    cases: int = 0
    id: str = ""
    target: str = ""
    kind: str = ""
    worst_abs: float = 0.0
    worst_ratio: float = 0.0
    worst_quantity: str = ""
    resolution: float | None = None
    inconclusive: int = 0
    declines: list = field(default_factory=list)
    fail_abs: float | None = None
    fail_allowed: float | None = None
    fail_quantity: str = ""
    message: str = ""
    xfail_reason: str = ""
    nodeid: str = ""
    seconds: float = 0.0
    details: dict = field(default_factory=dict)

    def __post_init__(self):
        self.status = Status(self.status)
        if not self.id:
            self.id = self.name

    @property
    def fail_ratio(self) -> float | None:
        if self.fail_abs is None or not self.fail_allowed:
            return None
        return self.fail_abs / self.fail_allowed

    def as_dict(self) -> dict:
        """JSON-safe: the status as its string, non-finite floats as "inf"/"-inf"/"nan"."""
        return json_safe(asdict(self))

    @classmethod
    def from_dict(cls, data: dict) -> "CheckResult":
        known = {f.name for f in fields(cls)}
        values = {k: _number(v) if k in _FLOATS else v for k, v in data.items() if k in known}
        return cls(**values)


_FLOATS = ("worst_abs", "worst_ratio", "resolution", "fail_abs", "fail_allowed", "seconds")


def _number(v):
    return float(v) if isinstance(v, str) and v in ("inf", "-inf", "nan") else v


def json_safe(value):
    """Plain JSON (and execnet) data: non-finite floats become "inf"/"-inf"/"nan" strings,
    enums their value, tuples lists, anything else unknown its ``str``."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def exit_status(results) -> int:
    """1 if a check failed or errored; else 0 if something was judged; else 4."""
    statuses = [Status(r.status) for r in results]
    if any(s in FAILING for s in statuses):
        return EXIT_FAILED
    if any(s in CHECKED for s in statuses):
        return EXIT_OK
    return EXIT_NOTHING_CHECKED


def nothing_checked_reason(results) -> str:
    """One line saying why nothing could be checked (the results being all skips, unsupported or
    inconclusive), e.g. "every check skipped: no CUDA device"."""
    if not results:
        return "no checks to run"
    groups: dict[str, dict[str, int]] = {}
    for r in results:
        text = (r.message.splitlines() or [""])[0]
        groups.setdefault(str(r.status), {})
        groups[str(r.status)][text] = groups[str(r.status)].get(text, 0) + 1
    parts = []
    for status, reasons in groups.items():
        shown = "; ".join(reason or "(no reason given)" for reason in list(reasons)[:3])
        more = f"; and {len(reasons) - 3} other reasons" if len(reasons) > 3 else ""
        parts.append((status, sum(reasons.values()), shown + more))
    if len(parts) == 1:
        status, _, shown = parts[0]
        return f"every check {_PAST.get(status, status)}: {shown}"
    return "nothing could be checked: " + ", ".join(f"{n} {_PAST.get(s, s)} ({shown})" for s, n, shown in parts)


_PAST = {"skip": "skipped", "unsupported": "unsupported", "inconclusive": "inconclusive"}


def environment(device: str = "cpu") -> dict:
    """Versions, the device asked for, CUDA, cuDNN and the TF32 state in force: what a reader
    needs to judge a report. The same keys whether or not torch, pytest or CUDA is present
    (None where absent)."""
    env = {"python": platform.python_version(), "platform": platform.platform(), "bpttcheck": __version__,
           "numpy": numpy.__version__, "hypothesis": hypothesis.__version__, "pytest": None, "devices": device,
           "torch": None, "torch_default_dtype": None, "cuda_available": False, "cuda": None, "gpu": None,
           "cudnn": None, "tf32_defaults": {}, "tf32_note": ""}
    try:  # a version lookup, not an import of pytest: the CLI runs without it
        from importlib.metadata import PackageNotFoundError, version

        env["pytest"] = version("pytest")
    except PackageNotFoundError:
        pass
    try:
        import torch
    except ImportError:
        return env
    env["torch"] = torch.__version__
    env["torch_default_dtype"] = str(torch.get_default_dtype())
    env["cuda_available"] = bool(torch.cuda.is_available())
    # cuDNN's version and the TF32 switches are recorded on the CPU as well: a report read next
    # to a GPU run's must say what would have been in force.
    env["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    if env["cuda_available"]:
        env["cuda"] = torch.version.cuda
        env["gpu"] = torch.cuda.get_device_name(0)
    env["tf32_defaults"] = tf32_state()
    env["tf32_note"] = ("float64/float32 checks run with TF32 off; 'tf32' checks with it on "
                        "(cudnn.allow_tf32, cuda.matmul.allow_tf32 and cudnn.rnn.fp32_precision where it exists)")
    return env


@dataclass
class Report:
    """What a verification found: one :class:`CheckResult` per check and how they were run.

    ``reason``: set by whoever built the report when it knows better than the results why
    nothing could be checked (e.g. "-k 'zzz' matched none of 50 checks"); otherwise derived.
    """

    results: list = field(default_factory=list)
    environment: dict = field(default_factory=dict)
    targets: list = field(default_factory=list)
    profile: str = "dev"
    seed: int | None = None
    kind: str | None = None
    device: str = "all"
    dtypes: list | None = None
    select: str | None = None
    skip_file: str | None = None
    xfail_file: str | None = None
    reason: str = ""

    @property
    def exit_status(self) -> int:
        return exit_status(self.results)

    @property
    def ok(self) -> bool:
        """Something was judged and nothing failed (exit status 0)."""
        return self.exit_status == EXIT_OK

    @property
    def failures(self) -> list:
        return [r for r in self.results if r.status in FAILING]

    @property
    def why(self) -> str:
        """One line saying why nothing could be checked, or "" when something was."""
        if self.exit_status != EXIT_NOTHING_CHECKED:
            return ""
        return self.reason or nothing_checked_reason(self.results)

    def counts(self) -> dict:
        out: dict[str, int] = {}
        for r in self.results:
            out[str(r.status)] = out.get(str(r.status), 0) + 1
        return dict(sorted(out.items()))

    summary = counts

    def to_json(self, run: dict | None = None) -> dict:
        """The report as JSON data (the layout of ``report.schema.json``). ``run``: what differs
        between equivalent runs (wall time, xdist workers, the process's exit status)."""
        summary = self.counts()
        doc = {
            "format": REPORT_FORMAT,
            "ok": self.ok,
            "exit_status": self.exit_status,
            "reason": self.why,
            "targets": list(self.targets),
            "kind": self.kind,
            "device": self.device,
            "dtypes": None if self.dtypes is None else list(self.dtypes),
            "profile": self.profile,
            "seed": self.seed,
            "select": self.select,
            "skip_file": None if self.skip_file is None else str(self.skip_file),
            "xfail_file": None if self.xfail_file is None else str(self.xfail_file),
            "summary": summary,
            "counts": dict(summary),  # deprecated alias of "summary" (format 1's CLI); removed in format 3
            "environment": self.environment,
            "checks": [r.as_dict() for r in self.results],
            "run": dict({"seconds": 0.0, "xdist_workers": 0, "exitstatus": self.exit_status}, **(run or {})),
        }
        return json_safe(doc)

    def write_json(self, path, run: dict | None = None) -> None:
        """The one JSON writer (the CLI's ``--report`` and the plugin's ``--bpttcheck-report``)."""
        folder = os.path.dirname(os.path.abspath(str(path)))
        os.makedirs(folder, exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(self.to_json(run), fh, indent=2, allow_nan=False)
            fh.write("\n")

    @classmethod
    def from_json(cls, data: dict) -> "Report":
        results = [CheckResult.from_dict(c) for c in data.get("checks", [])]
        return cls(results, data.get("environment", {}), data.get("targets", []), data.get("profile", "dev"),
                   data.get("seed"), kind=data.get("kind"), device=data.get("device", "all"),
                   dtypes=data.get("dtypes"), select=data.get("select"), skip_file=data.get("skip_file"),
                   xfail_file=data.get("xfail_file"), reason=data.get("reason", ""))

    def table(self, *, width: int = 100) -> str:
        return format_table(self.results, device=self.device, width=width)

    def failure_text(self) -> str:
        """Each distinct failure once, with the other checks it also occurs in."""
        return failure_text(self.results)


def schema() -> dict:
    """The JSON Schema of :meth:`Report.to_json` (shipped as ``report.schema.json``)."""
    from importlib.resources import files

    return json.loads(files(__package__).joinpath("report.schema.json").read_text(encoding="utf-8"))
