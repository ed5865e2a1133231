"""Runs property checks outside pytest: the one per-case loop of the oracle.

:func:`run_check` drives a :class:`PropertyCheck` with Hypothesis under the oracle's own
settings (:mod:`bpttcheck.profiles`: never the surrounding run's profile) and turns what
happened into one :class:`~bpttcheck.properties.results.CheckResult`: cases tried, the worst
error relative to its allowance, the resolution, inconclusive cases, the shrunk
counterexample's report, and the option values the target declined.

The contract with a check's body (``body(case)``):

- it returns ``list[Comparison]`` for a case that was judged (a comparison may carry
  ``resolution`` and ``inconclusive``; a case with an inconclusive comparison counts as
  inconclusive, never as a pass);
- it raises :class:`~bpttcheck.properties.compare.Mismatch` (or a subclass) for a failure; a
  mismatch with a ``raised`` attribute (the name of an exception type) is the target raising;
- it raises :class:`Declined` when the target declines the case's options.

**Partial implementations** (issue 12): each case has *option values*, a dict of option name ->
value (:func:`option_values`; a check may give its own ``options(case)``). A declined case is
rejected — Hypothesis keeps drawing — and its values remembered. A value is declined when the
target declined (NotImplementedError) or raised the same exception type on every case holding
it and never returned for one; once it is the only possible explanation of a decline, cases
holding it are not even tried. The verdict on what is left stands: ``pass`` with
``declines=["num_layers ≥ 2", "relu"]``; a target that returns for some cases of a value and
raises for others fails (``TargetRaised``); a check whose every case was declined is
``unsupported`` with the target's own message in full.

**Coverage phases**: a check with ``coverage(profile)`` runs, after its main draw passes, each
phase (a few cases of one region — deep, saturated, long, … — see
:mod:`bpttcheck.properties.case_space`) through the same per-case loop; the first failure ends
the check and its report names the phase.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from typing import Callable

from hypothesis import given, reject, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Unsatisfiable
from hypothesis.reporting import with_reporter

from bpttcheck.profiles import settings_for
from bpttcheck.reference.validation import check_callable, check_int, fail

from .compare import Mismatch
from .results import CheckResult, Status

__all__ = ["CheckResult", "Declined", "PropertyCheck", "hypothesis_settings", "option_values", "run_check",
           "run_checks", "verify"]

#: Declined cases in a row, with none returned, after which a check is called unsupported.
GIVE_UP_AFTER = 40


class Declined(Exception):
    """The target declines an option (NotImplementedError, or a constructor refusing it)."""

    def __init__(self, option: str, reason: str):
        super().__init__(f"the target declines {option}: {reason}")
        self.option, self.reason = option, reason


@dataclass(frozen=True)
class PropertyCheck:
    """A named property over generated cases.

    ``body(case) -> list[Comparison]`` (see the module docstring); ``skip`` is a reason to skip
    (e.g. a missing device) or ""; ``options(case) -> dict`` the case's option values (default
    :func:`option_values`); ``target``/``kind`` name what is checked (filled by the oracle).
    """

    name: str
    strategy: object
    body: Callable
    skip: str = ""
    max_examples: int | None = None
    id: str = ""  # stable id for skip/xfail files and reports; defaults to the name
    options: Callable | None = None
    target: str = ""
    kind: str = ""
    #: ``coverage(profile) -> [Phase]`` (label, strategy, max_examples): regions run after the
    #: main draw passes (bpttcheck.properties.case_space), each shrinking within itself
    coverage: Callable | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            fail("name", self.name, "a non-empty string naming the property")
        for name in ("body", "options", "coverage"):  # body None: a stub whose body runs in a worker
            if getattr(self, name) is not None:
                check_callable(name, getattr(self, name), "None or a callable")
        if not isinstance(self.skip, str):
            fail("skip", self.skip, "a string: the reason to skip, or ''")
        if self.max_examples is not None:
            check_int("max_examples", self.max_examples, minimum=1)

    @property
    def check_id(self) -> str:
        return self.id or self.name


def hypothesis_settings(profile: str, seed: int | None = None) -> tuple:
    """``(settings, seed)`` for the oracle's checks under ``profile`` (see :mod:`bpttcheck.profiles`)."""
    return settings_for(profile, seed), seed


def option_values(case) -> dict:
    """The option values of a drawn case: ``case.option_values()`` when it has one; for a
    recurrent case (anything with a ``config``) its layers, bias, nonlinearity, direction,
    projection, layout, input form and initial state; for a tuple, its first element's."""
    own = getattr(case, "option_values", None)
    if callable(own):
        return dict(own())
    if isinstance(case, tuple) and case:
        return option_values(case[0])
    config = getattr(case, "config", None)
    if config is None or not hasattr(config, "num_layers"):
        return {}
    values = {"num_layers": config.num_layers, "bias": bool(config.bias)}
    if getattr(config, "cell", None) == "rnn":
        values["nonlinearity"] = config.nonlinearity
    values["bidirectional"] = bool(getattr(config, "bidirectional", False))
    if getattr(config, "proj_size", 0):
        values["proj_size"] = "proj_size > 0"
    values["batch_first"] = bool(getattr(case, "batch_first", False))
    values["input"] = "PackedSequence" if getattr(case, "lengths", None) is not None else "Tensor"
    values["hx"] = "given" if getattr(case, "h0", None) is not None else "None"
    return values


#: options whose string values read well alone ("relu", "PackedSequence")
_BARE = ("nonlinearity", "input", "scheme", "cell", "proj_size")


def _label(name, values, returned) -> str:
    values = sorted(values, key=repr)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        lo = min(values)
        if not any(isinstance(v, int) and v >= lo for v in returned):
            return f"{name} ≥ {lo}" if len(values) > 1 or lo > 1 else f"{name}={lo}"
        return f"{name} ∈ {{{', '.join(map(str, values))}}}" if len(values) > 1 else f"{name}={values[0]}"
    if len(values) == 1 and isinstance(values[0], str) and name in _BARE:
        return values[0]
    return ", ".join(f"{name}={v}" for v in values)


class _SearchOver(BaseException):
    """Stops Hypothesis at once (a BaseException: it neither shrinks nor retries it)."""


class _Declines:
    """Which option values a target declines, from the cases it declined or returned for."""

    def __init__(self):
        self.returned: set = set()
        self.blocked: set = set()
        self.refused: list = []  # (pairs, exception type, message) of every declined case
        self.kinds: dict = {}  # pair -> exception types of the declined cases holding it
        self.in_a_row = 0

    @staticmethod
    def pairs(values: dict) -> frozenset:
        return frozenset((k, v) for k, v in values.items() if _hashable(v))

    def blocks(self, pairs) -> bool:
        return bool(pairs & self.blocked)

    def returned_for(self, pairs) -> None:
        self.returned |= pairs
        self.in_a_row = 0

    def consistent(self, pair, kind) -> bool:
        return pair not in self.returned and self.kinds.get(pair, {kind}) == {kind}

    def explains(self, pairs, kind) -> bool:
        """Whether some value of ``pairs`` may be the declined one (see the module docstring)."""
        return any(self.consistent(p, kind) for p in pairs)

    def refuse(self, pairs, kind: str, message: str) -> None:
        self.refused.append((pairs, kind, message))
        for p in pairs:
            self.kinds.setdefault(p, set()).add(kind)
        self.in_a_row += 1
        candidates = [p for p in pairs if self.consistent(p, kind)]
        if len(candidates) == 1:  # the only explanation: stop offering the target this value
            self.blocked.add(candidates[0])

    def verdict(self) -> tuple[list[str], str]:
        """(labels of the declined values, the message of a raise no declined value explains)."""
        unexplained = [(ps, k, m) for ps, k, m in self.refused if not self.explains(ps, k)]
        for ps, k, m in unexplained:
            if k != "NotImplementedError":  # raised for values it returns for elsewhere: a failure
                return [], m
        # The fewest values that explain every decline (greedy cover), named per option.
        todo = [(ps, k) for ps, k, _ in self.refused if self.explains(ps, k)]
        chosen: set = set()
        while todo:
            counts: dict = {}
            for ps, k in todo:
                for p in ps:
                    if self.consistent(p, k):
                        counts[p] = counts.get(p, 0) + 1
            best = max(counts, key=lambda p: (counts[p], repr(p)))
            chosen.add(best)
            todo = [(ps, k) for ps, k in todo if best not in ps]
        by_name: dict = {}
        for name, value in chosen:
            by_name.setdefault(name, []).append(value)
        returned = {}
        for name, value in self.returned:
            returned.setdefault(name, []).append(value)
        labels = [_label(n, vs, returned.get(n, [])) for n, vs in sorted(by_name.items())]
        labels += sorted({m for ps, k, m in unexplained})  # declined combinations, in their own words
        return labels, ""


def _hashable(v) -> bool:
    try:
        hash(v)
    except TypeError:
        return False
    return True


class _Cases:
    """The per-case loop: runs the body, keeps the worst comparison, handles declines."""

    def __init__(self, check: PropertyCheck, progress):
        self.check, self.progress = check, progress
        self.options = check.options or option_values
        self.cases = self.judged = self.inconclusive = 0
        self.worst = None
        self.resolution = None
        self.reason = ""  # the first inconclusive case's reason
        self.declines = _Declines()

    def __call__(self, case):
        """Judge one case (``cases`` is counted by the caller); returns its comparisons."""
        pairs = self.declines.pairs(self.options(case))
        if self.declines.blocks(pairs):
            reject()
        try:
            comparisons = self.check.body(case)
        except Declined as exc:
            self._refuse(pairs, "NotImplementedError", str(exc))
        except Mismatch as exc:
            raised = getattr(exc, "raised", None)
            if raised and self.declines.explains(pairs, raised):
                self._refuse(pairs, raised, str(exc))
            if not raised:
                self.declines.returned_for(pairs)
            raise
        self.declines.returned_for(pairs)
        return comparisons or ()

    def _refuse(self, pairs, kind, message):
        self.declines.refuse(pairs, kind, message)
        if self.judged == 0 and not self.declines.returned and self.declines.in_a_row >= GIVE_UP_AFTER:
            raise _SearchOver()
        reject()

    def record(self, comparisons):
        reasons = [c.inconclusive for c in comparisons if getattr(c, "inconclusive", "")]
        if reasons:
            self.inconclusive += 1
            self.reason = self.reason or reasons[0]
            return
        self.judged += 1
        for c in comparisons:
            if self.worst is None or c.worst_ratio > self.worst.worst_ratio:
                self.worst = c
            r = getattr(c, "resolution", None)
            if r is not None and (self.resolution is None or r > self.resolution):
                self.resolution = float(r)


@dataclass(frozen=True)
class _Looped:
    """A check whose body is the per-case loop (declines, option values) around its own."""

    check: PropertyCheck
    body: _Cases

    @property
    def strategy(self):
        return self.check.strategy


def _leaves(exc):
    """The exceptions inside (nested) exception groups — Hypothesis raises a group when it
    found several distinct failures."""
    inner = getattr(exc, "exceptions", None)
    if not inner:
        return [exc]
    return [leaf for e in inner for leaf in _leaves(e)]


def _verdict(exc) -> tuple[Status, str, object]:
    """Status, message and the failing comparison (or None) for what a check raised: a
    mismatch is a failure (the first one found wins, the others are counted); anything else
    is an error of the oracle."""
    leaves = _leaves(exc)
    mismatches = [e for e in leaves if isinstance(e, Mismatch)]
    if mismatches:
        message = str(mismatches[0])
        if len(leaves) > 1:
            message += f"\n  (Hypothesis found {len(leaves)} distinct failures; the first mismatch is shown)"
        return Status.FAIL, message, getattr(mismatches[0], "comparison", None)
    first = leaves[0]
    return Status.ERROR, "".join(traceback.format_exception_only(type(first), first)).strip(), None


def _discard(text) -> None:
    """A Hypothesis reporter that keeps nothing."""


def _allowed(comparison) -> float | None:
    if comparison is None or not comparison.worst_ratio:
        return None
    return comparison.worst_abs / comparison.worst_ratio


def run_check(check: PropertyCheck, profile: str = "dev", seed: int | None = None,
              progress: Callable[[str], None] | None = None, *, xfail: bool = False) -> CheckResult:
    """Run one check; ``xfail``: it is listed as expected to fail (fail -> xfail, pass -> xpass)."""
    _check_run_arguments([check], seed)
    ident = dict(id=check.check_id, target=check.target, kind=check.kind)
    if check.skip:
        return CheckResult(check.name, Status.SKIP, message=check.skip, **ident)
    tracker = loop = _Cases(check, progress)
    base, seed = hypothesis_settings(profile, seed)
    if check.max_examples is not None:
        base = settings(base, max_examples=min(base.max_examples, check.max_examples))
    name, coverage, check = check.name, check.coverage, _Looped(check, loop)

    # Derandomized profiles draw from a seed that Hypothesis derives from this function's source:
    # keep its text as it is, or every derandomized run (and its shrunk counterexamples) changes.
    @settings(base)
    @given(check.strategy)
    def prop(case):
        tracker.cases += 1  # every case tried counts, the failing and shrinking ones too
        tracker.record(check.body(case))
        if progress is not None:
            progress(f"{tracker.cases} cases")

    test = hypothesis_seed(seed)(prop) if seed is not None else prop
    # The coverage phases rewrap the same inner function (so its derandomized seed is the same)
    # around their own strategies; they run, in order, only while everything before passed.
    phases = [("", test)]
    for phase in (coverage(profile) if coverage is not None else ()):
        again = settings(base, max_examples=phase.max_examples)(given(phase.strategy)(prop.hypothesis.inner_test))
        phases.append((phase.label, hypothesis_seed(seed)(again) if seed is not None else again))
    start = time.perf_counter()
    status, message, failing = Status.PASS, "", None
    for label, test in phases:
        try:
            # Hypothesis's own lines ("Falsifying example", "You can reproduce this failure by
            # adding @seed(…)") would print once per declined or failing search on stdout: the
            # oracle's verdict and reproducer replace them, so they go nowhere.
            with with_reporter(_discard):
                test()
        except _SearchOver:
            pass
        except Unsatisfiable:  # every case rejected: the declines decide below
            pass
        except Exception as exc:  # a mismatch, a crashing implementation or an oracle bug: report, don't die
            status, message, failing = _verdict(exc)
            if label:  # said before the reproducer, which a user copies up to its end
                note = f"\n  found in the coverage phase: {label}"
                head, sep, tail = message.partition("\n  reproduce:")
                message = head + note + sep + tail
            break
    declines, raised = loop.declines.verdict()
    if status == Status.PASS:
        if raised:
            status, message = Status.FAIL, raised + (
                "\n  (the target raised this for a case whose every option value it handles in other cases: "
                "a decline must hold for every case of the value)")
        elif loop.judged == 0 and loop.declines.refused:
            status = Status.UNSUPPORTED
            message = _unsupported_message(loop.declines.refused)
        elif loop.judged == 0 and loop.inconclusive:
            status, message = Status.INCONCLUSIVE, f"every judged case was inconclusive: {loop.reason}"
        elif loop.judged == 0:
            status, message = Status.ERROR, "no case could be drawn (the strategy rejected every case)"
    worst = loop.worst
    result = CheckResult(
        name=name, status=status, cases=loop.cases,
        worst_abs=worst.worst_abs if worst else 0.0,
        worst_ratio=worst.worst_ratio if worst else 0.0,
        worst_quantity=worst.quantity if worst else "",
        resolution=loop.resolution, inconclusive=loop.inconclusive,
        declines=declines if status != Status.UNSUPPORTED else [],
        fail_abs=failing.worst_abs if failing is not None else None,
        fail_allowed=_allowed(failing),
        fail_quantity=failing.quantity if failing is not None else "",
        message=message, seconds=time.perf_counter() - start, **ident)
    if xfail:
        if result.status in (Status.FAIL, Status.ERROR):
            result.status, result.xfail_reason = Status.XFAIL, "listed in the xfail file"
        elif result.status == Status.PASS:
            result.status = Status.XPASS
            result.message = "expected to fail (xfail list) but passed"
    return result


def _unsupported_message(refused) -> str:
    """The target's own words, in full: the first decline, and how many cases were declined."""
    messages = []
    for _, _, m in refused:
        if m not in messages:
            messages.append(m)
    text = messages[0]
    if len(messages) > 1:
        text += f"\n  ({len(refused)} cases declined; {len(messages) - 1} other messages: " + " | ".join(
            s.splitlines()[0] for s in messages[1:4]) + (" | …" if len(messages) > 4 else "") + ")"
    return text


def run_checks(checks, profile: str = "dev", seed: int | None = None, progress=None, *,
               xfail: Callable[[PropertyCheck], bool] | None = None) -> list[CheckResult]:
    """Run ``checks`` in order. ``progress(text, end)``: called as they run (``end`` True on the
    line that finishes a check); ``xfail(check)``: whether a check is expected to fail."""
    results = []
    total = len(checks)
    for i, check in enumerate(checks, 1):
        label = f"[{i}/{total}] {check.check_id}"
        tick = None
        if progress is not None and not check.skip:
            progress(f"{label} ...", False)
            tick = lambda text, label=label: progress(f"\r{label} ... {text}", False)  # noqa: E731
        result = run_check(check, profile, seed, tick, xfail=bool(xfail and xfail(check)))
        if progress is not None and not check.skip:
            progress(f"\r{label} ... {result.status} ({result.cases} cases, {result.seconds:.1f} s)", True)
        results.append(result)
    return results


def verify(checks: list[PropertyCheck], profile: str = "dev", seed: int | None = None,
           progress=None) -> list[CheckResult]:
    """Run ``checks``; returns their results (the README's ``bpttcheck.properties.verify``)."""
    if not isinstance(checks, (list, tuple)):
        fail("checks", checks, "a list of PropertyCheck")
    _check_run_arguments(checks, seed)
    hypothesis_settings(profile, seed)  # a bad profile is refused even when no check runs
    return run_checks(checks, profile, seed, progress)


def _check_run_arguments(checks, seed) -> None:
    for i, check in enumerate(checks):
        if not isinstance(check, PropertyCheck):
            fail("check" if len(checks) == 1 else f"checks[{i}]", check,
                 "a PropertyCheck (e.g. from builtin_checks() or target_checks())")
    if seed is not None:
        check_int("seed", seed)
