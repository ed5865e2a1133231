"""The report as text: the results table and each distinct failure printed once.

Works on anything shaped like :class:`~bpttcheck.properties.results.CheckResult` (statuses
compare equal to their strings), so it needs nothing from the results module.

- A PASS row shows the worst error relative to its allowance over the passing cases, the
  resolution and where; a FAIL row shows the failing case's own error and allowance.
- Text is never cut silently: a cell longer than the column ends in "…" (the JSON report
  holds the full text).
- CUDA checks skipped for want of a device are one line, unless CUDA was asked for.
- One bug found by several checks (groups, precisions) is printed once, "also in: …".
"""

from __future__ import annotations

import re

__all__ = ["failure_text", "failure_signature", "format_table", "shorten", "summary_line"]

_ORDER = ("pass", "fail", "error", "unsupported", "inconclusive", "skip", "xfail", "xpass")
_PAST = {"pass": "passed", "fail": "failed", "error": "errors", "skip": "skipped"}
_PRECISIONS = r"\b(autocast-float16|autocast-bfloat16|float64|float32|tf32|float16|bfloat16)\b"


def shorten(text: str, width: int) -> str:
    """``text``'s first line, ending in "…" when it had to be cut (or had more lines)."""
    lines = str(text).splitlines() or [""]
    first = lines[0]
    if len(first) > width:
        return first[: max(width - 1, 0)] + "…"
    return first + (" …" if len(lines) > 1 and len(first) + 2 <= width else "")


def _ratio(v) -> str:
    """worst/allowed: three decimals where a pass or a near miss lives, else a power of ten
    (a gross bug's 4e+12 is not 4004211735897.795)."""
    if v is not None and isinstance(v, (int, float)) and abs(v) >= 1000:
        return _number(v, ".1e")
    return _number(v, ".3f")


def _number(v, fmt) -> str:
    if v is None:
        return "-"
    try:
        return format(float(v), fmt)
    except (TypeError, ValueError):
        return str(v)


def _is_hidden_cuda_skip(r, device) -> bool:
    return device != "cuda" and str(r.status) == "skip" and "[cuda," in (r.id or "")


def _why(r) -> str:
    status = str(r.status)
    if status == "pass":
        parts = []
        if r.declines:
            parts.append("declines: " + ", ".join(r.declines))
        if getattr(r, "inconclusive", 0):
            parts.append(f"{r.inconclusive} inconclusive")
        where = r.worst_quantity
        return f"({'; '.join(parts)}) {where}".strip() if parts else where
    if status == "xpass":
        return r.message or r.worst_quantity
    return r.message or r.worst_quantity


def format_table(results, *, device: str = "all", width: int = 100) -> str:
    """The table: id, status, cases, worst |a-e|, worst/allowed, resolution, where / why."""
    header = ("check", "status", "cases", "worst |a-e|", "worst/allowed", "resolution", "where / why")
    rows = [header]
    hidden = [r for r in results if _is_hidden_cuda_skip(r, device)]
    for r in results:
        if _is_hidden_cuda_skip(r, device):
            continue
        status = str(r.status)
        if status in ("fail", "xfail") and r.fail_abs is not None:
            err, ratio = r.fail_abs, (r.fail_abs / r.fail_allowed if r.fail_allowed else float("inf"))
        elif r.cases and status in ("pass", "xpass", "inconclusive"):
            err, ratio = r.worst_abs, r.worst_ratio
        else:
            err = ratio = None
        rows.append((r.id or r.name, status.upper(), str(r.cases), _number(err, ".1e"), _ratio(ratio),
                     _number(r.resolution, ".1e"), shorten(_why(r), width)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for j, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    if hidden:
        reasons = sorted({shorten(r.message, width) for r in hidden})
        lines.append(f"({len(hidden)} CUDA checks skipped: {'; '.join(reasons)}; --device cuda lists them)")
    lines.append(summary_line(results))
    return "\n".join(lines)


def summary_line(results) -> str:
    counts: dict[str, int] = {}
    for r in results:
        counts[str(r.status)] = counts.get(str(r.status), 0) + 1
    return ", ".join(f"{counts[s]} {_PAST.get(s, s)}" for s in _ORDER if counts.get(s)) or "no checks"


def failure_signature(r) -> str:
    """What makes two failures the same bug: the verdict's first line without the case it was
    found on and with the precision names taken out, and the diagnosis when there is one — the
    same bug shrinks to different cases in the ``gradients`` and ``bidirectional`` groups and in
    float64 and float32, and is one report."""
    lines = str(r.message).splitlines() or [""]
    first = re.sub(r"\s*\([^()]*(?:\([^()]*\)[^()]*)*\)\s*$", "", lines[0])
    diagnosis = next((line.strip() for line in lines[1:] if line.strip().startswith("diagnosis:")), "")
    return re.sub(_PRECISIONS, "<precision>", f"{first}\n{diagnosis}")


def failure_text(results) -> str:
    """Every failing or erroring check's verdict, each distinct one once ("also in: …")."""
    groups: dict[str, list] = {}
    for r in results:
        if str(r.status) in ("fail", "error"):
            groups.setdefault(failure_signature(r), []).append(r)
    out = []
    for same in groups.values():
        first = same[0]
        text = f"{first.id}: {str(first.status).upper()}\n{first.message}"
        if len(same) > 1:
            text += "\n  also in: " + ", ".join(r.id for r in same[1:])
        out.append(text)
    return "\n\n".join(out)
