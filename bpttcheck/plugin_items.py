"""The conformance checks as pytest items, and their results (imported by the plugin only when
``--bpttcheck-target`` or ``--bpttcheck-report`` is given).

Collection: for each target a :class:`TargetCollector` (node id ``bpttcheck[<spec>]``) holds one
:class:`CheckItem` per check of ``bpttcheck.properties.oracle.target_checks``, named by the
check's stable id, so ``-k``, ``--deselect``, ``--lf`` and the skip/xfail files select checks by
id. A spec that cannot be loaded is a collection error of one line (the oracle's ``TargetError``).

Results travel in ``item.user_properties`` (``("bpttcheck", identity)`` from collection and
``("bpttcheck_result", result)`` after the run): pytest copies them into every test report, and
pytest-xdist sends the reports to its controller, so the process writing the JSON report sees the
same records with or without ``-n``. The report is the results model's
(:class:`~bpttcheck.properties.results.Report`): the same keys as ``bpttcheck verify --report``,
plus what pytest knows (``nodeid``, and the ``run`` block's xdist workers and exit status).
"""

from __future__ import annotations

import time

import pytest

from bpttcheck.properties.oracle.api import default_dtypes, target_checks
from bpttcheck.properties.oracle.kinds import spec_of
from bpttcheck.properties.oracle.sandbox import DEFAULT_TIMEOUT, WorkerPool, can_isolate, default_memory, stub
from bpttcheck.properties.oracle.sandbox_worker import Guard, guarded_result
from bpttcheck.properties.torch_checks import cuda_available
from bpttcheck.properties.oracle.targets import TargetError
from bpttcheck.properties.report_text import failure_signature
from bpttcheck.properties.results import CheckResult, Report, Status, environment, json_safe
from bpttcheck.properties.runner import run_check

from . import options as _options
from .api import CheckFailed

__all__ = ["CheckFailed", "CheckItem", "OracleCollection", "ResultLog", "TargetCollector", "environment"]

IDENTITY_KEY = "bpttcheck"
RESULT_KEY = "bpttcheck_result"


class CheckItem(pytest.Item):
    """One conformance check; ``runtest`` runs it with Hypothesis through ``run_check``."""

    def __init__(self, *, check, spec: str, **kwargs):
        super().__init__(**kwargs)
        self.check, self.spec = check, spec
        self.add_marker("bpttcheck")
        self.identity = {"target": spec, "kind": check.kind, "id": check.check_id, "name": check.name}
        self.user_properties.append((IDENTITY_KEY, self.identity))

    def runtest(self):
        # xfail stays pytest's business (the marker from the xfail file), so both tools agree.
        values = self.config.pluginmanager.get_plugin("bpttcheck-oracle").values
        if values["in-process"] or not can_isolate(self.spec):
            guard = Guard()
            result = guarded_result(run_check(self.check, values["profile"], values["seed"]), guard)
        else:
            result = _isolated(self.check, self.spec, values)
        result.nodeid = self.nodeid
        self.user_properties.append((RESULT_KEY, result.as_dict()))
        if result.status == Status.PASS:
            return
        if result.status in (Status.SKIP, Status.UNSUPPORTED, Status.INCONCLUSIVE):
            reason = result.message if result.status == Status.SKIP else f"{result.status}: {result.message}"
            try:  # point `-rs` at the check, not at this line (the keyword is pytest's, since 7.0)
                raise pytest.skip.Exception(reason, _use_item_location=True)
            except TypeError:
                pytest.skip(reason)
        raise CheckFailed(Report([result], targets=[self.spec]), result.message)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, CheckFailed):
            (r,) = excinfo.value.report.results
            head = f"{r.status.upper()}: {self.identity['id']} ({r.cases} cases; target {self.spec})"
            # One report per bug: the same shrunk failure in another group or precision is named, not repeated.
            first = self.parent.owner.first_with(failure_signature(r), self.nodeid)
            if first != self.nodeid:
                return f"{head}\n{r.message.splitlines()[0]}\n  the same failure as {first} (shown there in full)"
            return f"{head}\n{r.message}\n  re-run: pytest '{self.nodeid}'"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        # Where the target is defined (so `-rs` points at the user's code); a line number is
        # required: pytest's skip reports assert one.
        path, line = getattr(self.parent, "source", None) or (self.path, 0)
        return path, line, f"bpttcheck[{self.spec}]::{self.identity['id']}"


#: The plugin's workers: one at a time, for the target whose items are running (items of a target
#: are collected together, so a target's checks share its worker; the next target gets a fresh one).
_POOL = WorkerPool()


def _worker(spec, values):
    """The target's worker (started, or the one already running for it); the others are closed."""
    device = values["device"]
    dtypes = tuple(values["dtype"]) or default_dtypes(device)
    memory = values["memory"] if values["memory"] is not None else (
        0 if device in ("cuda", "all") and cuda_available() else default_memory())
    key = _POOL.key(spec, values["kind"], device, dtypes, memory)
    for other in [k for k in _POOL.workers if k != key]:
        _POOL.release(other)
    return _POOL.get(spec, values["kind"], device=device, dtypes=dtypes, memory=memory,
                     timeout=values["timeout"] or DEFAULT_TIMEOUT)


def _isolated(check, spec, values):
    worker = _worker(spec, values)
    described = next((d for d in worker.checks if d["id"] == check.check_id), None)
    if described is None:  # the worker's checks differ from the collected ones
        if check.body is None:
            return CheckResult(check.name, Status.ERROR, id=check.check_id, target=spec, kind=check.kind,
                               message=f"the target's worker no longer lists {check.check_id} (its checks changed "
                                       "between collection and the run)")
        guard = Guard()
        return guarded_result(run_check(check, values["profile"], values["seed"]), guard)
    return worker.run(described, False, profile=values["profile"], seed=values["seed"],
                      timeout=values["timeout"] or DEFAULT_TIMEOUT)


class TargetCollector(pytest.Collector):
    """The checks of one target; a spec that cannot be loaded fails collection in one line."""

    def __init__(self, *, spec: str, owner: "OracleCollection", **kwargs):
        super().__init__(**kwargs)
        self.spec, self.owner = spec, owner

    def collect(self):
        values = self.owner.values
        dtypes = tuple(values["dtype"]) or default_dtypes(values["device"])
        try:
            if values["in-process"] or not can_isolate(self.spec):
                checks = target_checks(self.spec, values["kind"], device=values["device"], dtypes=dtypes)
            else:  # listed by the target's worker: pytest's process never imports the target
                checks = [stub(d) for d in _worker(self.spec, values).checks]
        except TargetError as exc:
            raise self.CollectError(f"bpttcheck: {exc}") from None
        self.source = _source_of(self.spec)
        seen: dict[str, int] = {}
        for check in checks:
            name = check.check_id
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:  # node ids must be unique; ids should be, but never lose a check
                name = f"{name}#{seen[name]}"
            # The node id given as a string, so that pytest parses it as it parses the ids it stores
            # (--lf, --ff) and the ones pasted on the command line: "[cpu,float64]" as parameters.
            item = CheckItem.from_parent(self, name=name, nodeid=f"{self.nodeid}::{name}", check=check, spec=self.spec)
            self.owner.mark(item)
            yield item


def _source_of(spec: str):
    """(file, 0-based line) where the target is defined, or None (a builtin, a C extension, a
    name made at run time). Read from the module's source on sys.path, never imported: the
    target's import-time code runs in its worker only."""
    import ast
    import sys
    from pathlib import Path

    module, _, name = spec.partition(":")
    parts, top = module.split("."), name.split(".")[0]
    for entry in sys.path:
        base = Path(entry or ".").joinpath(*parts)
        for path in (base.with_suffix(".py"), base / "__init__.py"):
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"))
            except (OSError, SyntaxError, ValueError):
                continue
            for node in tree.body:
                names = [getattr(node, "name", None)] + [t.id for t in getattr(node, "targets", []) if
                                                         isinstance(t, ast.Name)]
                if top in names:
                    return path, node.lineno - 1
            return path, 0
    return None


class OracleCollection:
    """Adds each target's checks to the session's items; applies the skip/xfail files, the
    ``select`` option and node ids given as arguments."""

    def __init__(self, config, values: dict):
        self.config, self.values = config, values
        self.failures: dict[str, str] = {}  # failure signature -> the first node id that showed it
        self.patterns = {}
        for which in ("skip", "xfail"):
            path = values[which]
            try:
                self.patterns[which] = _options.read_id_file(path) if path else []
            except OSError as exc:
                raise pytest.UsageError(f"{_options.OPTIONS[which].pytest_flag}={path}: {exc}") from None

    def mark(self, item: CheckItem) -> None:
        pattern = _options.id_matches(item.spec, item.identity["id"], self.patterns["skip"])
        if pattern is not None:
            item.add_marker(pytest.mark.skip(reason=f"listed in the skip file ({pattern})"))
            return
        pattern = _options.id_matches(item.spec, item.identity["id"], self.patterns["xfail"])
        if pattern is not None:
            item.add_marker(pytest.mark.xfail(reason=f"listed in the xfail file ({pattern})", strict=False))

    def first_with(self, signature: str, nodeid: str) -> str:
        """The node id that first reported this failure in this process (``nodeid`` if none)."""
        return self.failures.setdefault(signature, nodeid)

    def _wanted(self, item) -> bool:
        if not isinstance(item, CheckItem):
            return True
        select = self.values["select"]
        if select and select not in item.identity["id"] and select not in item.identity["name"]:
            return False
        ids = self.values["nodeids"]
        return not ids or any(item.nodeid == n or item.nodeid.startswith(n + "::") for n in ids)

    # tryfirst: before pytest's own -k/-m/--deselect/--lf filtering, which must see these items too.
    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, session, config, items):
        for spec in self.values["target"]:
            collector = TargetCollector.from_parent(session, name=f"bpttcheck[{spec}]",
                                                    nodeid=f"bpttcheck[{spec}]", spec=spec, owner=self)
            # Through the hooks, so a failure is reported (and counted) like any collection error.
            report = session.ihook.pytest_make_collect_report(collector=collector)
            session.ihook.pytest_collectreport(report=report)
            if report.passed:
                items.extend(n for n in report.result if isinstance(n, pytest.Item))
        unwanted = [i for i in items if not self._wanted(i)]
        if unwanted:
            items[:] = [i for i in items if self._wanted(i)]
            config.hook.pytest_deselected(items=unwanted)


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        text = str(longrepr[2])
        return text[len("Skipped: "):] if text.startswith("Skipped: ") else text
    return str(longrepr or "")


class ResultLog:
    """Gathers the results from the test reports; writes ``--bpttcheck-report`` and says, at the
    end, which passes came with declines."""

    def __init__(self, config, values: dict):
        self.config, self.values = config, values
        self.records: dict[str, dict] = {}
        self.started = time.time()
        self.path = None

    def pytest_runtest_logreport(self, report):
        props = dict((k, v) for k, v in getattr(report, "user_properties", ()) if isinstance(k, str))
        if IDENTITY_KEY not in props:
            return
        identity = props[IDENTITY_KEY]
        rec = self.records.setdefault(report.nodeid, dict(identity, status="error"))
        rec["nodeid"] = report.nodeid
        if RESULT_KEY in props and report.when == "call":  # later phases repeat it: keep the verdict
            rec.update(props[RESULT_KEY])
        xfail = hasattr(report, "wasxfail")
        if report.when == "setup":
            if report.skipped:
                rec.update(status="skip", message=_skip_reason(report))
            elif report.failed:
                rec.update(status="error", message=report.longreprtext)
        elif report.when == "call":
            if report.passed:
                rec["status"] = "xpass" if xfail else "pass"
                if xfail:
                    rec["message"] = f"expected to fail ({report.wasxfail}) but passed"
            elif report.skipped:
                if xfail:
                    rec.update(status="xfail", xfail_reason=report.wasxfail)
                else:
                    rec.update(status=props.get(RESULT_KEY, {}).get("status", "skip"), message=_skip_reason(report))
            elif RESULT_KEY not in props:
                rec.update(status="error", message=report.longreprtext)
        elif report.when == "teardown" and report.failed:
            rec.update(status="error", message=report.longreprtext)

    def report(self, exitstatus: int = 0) -> Report:
        records = sorted(self.records.values(), key=lambda r: (r["target"], r["id"], r.get("nodeid", "")))
        results = [CheckResult.from_dict(dict(r, name=r.get("name") or r["id"])) for r in records]
        try:
            env = environment(self.values["device"])
        except Exception as exc:  # never lose the results for want of a version number
            env = {"error": f"{type(exc).__name__}: {exc}"}
        v = self.values
        return Report(results, json_safe(env), [spec_of(t) for t in v["target"]], v["profile"], v["seed"],
                      kind=v["kind"], device=v["device"], dtypes=list(v["dtype"]) or None, select=v["select"],
                      skip_file=v["skip"], xfail_file=v["xfail"])

    def pytest_sessionfinish(self, session, exitstatus):
        if not self.values["report"]:
            return
        run = {"seconds": round(time.time() - self.started, 3),
               "xdist_workers": getattr(self.config.option, "numprocesses", None) or 0,
               "exitstatus": int(exitstatus)}
        self.report(int(exitstatus)).write_json(self.values["report"], run=run)
        self.path = self.values["report"]

    def pytest_terminal_summary(self, terminalreporter):
        if self.values["quiet"]:
            return
        for r in self.report().results:
            if r.status == Status.PASS and (r.declines or r.inconclusive):
                extra = [f"declines: {', '.join(r.declines)}"] if r.declines else []
                extra += [f"{r.inconclusive} inconclusive cases"] if r.inconclusive else []
                terminalreporter.write_line(f"bpttcheck: {r.id} passed ({'; '.join(extra)})")
        if self.path:
            terminalreporter.write_line(f"bpttcheck: JSON report written to {self.path}")
