"""The pytest plugin (registered through the ``pytest11`` entry point).

Installed next to a project's own tests it changes nothing about them: no Hypothesis profile is
loaded or changed (the oracle's checks carry their own settings, :mod:`bpttcheck.profiles`), no
item is added, neither torch nor SymPy is imported. Only when a target is named does it add the
conformance checks, one pytest item per check id:

    pytest --bpttcheck-target=mypkg.layers:MyLSTM [--bpttcheck-kind=module]
           [--bpttcheck-device=cpu|cuda|all] [--bpttcheck-profile=dev|ci|thorough] [...]

Every option is also an environment variable (``BPTTCHECK_TARGET``, …) and a flag of
``bpttcheck verify``: the option table is :mod:`bpttcheck.options`. The items are
``bpttcheck[<target>]::<check id>`` (:mod:`bpttcheck.plugin_items`, imported only then); such a
node id can be pasted back on the command line (``pytest 'bpttcheck[pkg:MyLSTM]::module/…'``),
and ``--lf``/``--ff`` work on them.
"""

from __future__ import annotations

import argparse
import re

from . import options as _options
from .profiles import PROFILES, default_profile, profile_name

__all__ = ["ENV_PROFILE", "NODEID", "PROFILES", "default_profile", "run_settings"]

ENV_PROFILE = _options.OPTIONS["profile"].env
_PLUGIN_NAME = "bpttcheck-oracle"
_LOG_PLUGIN_NAME = "bpttcheck-results"
#: a node id of the oracle's items, as pytest prints it
NODEID = re.compile(r"^bpttcheck\[(?P<target>[^\]]+)\](?:::(?P<id>.+))?$")
#: where the node ids given on the command line travel (an internal option: not in the table)
_NODEID_DEST = "bpttcheck_nodeids"


def pytest_addoption(parser):
    group = parser.getgroup("bpttcheck", "bpttcheck: the BPTT correctness oracle")
    _options.add_pytest_options(group)
    group.addoption("--bpttcheck-nodeid", dest=_NODEID_DEST, action="append", default=None, help=argparse.SUPPRESS)


def pytest_load_initial_conftests(early_config, parser, args):
    """Node ids of the oracle's items given as arguments (pasted from a report) become the
    targets and ids to run: pytest itself would take them for paths and refuse the brackets."""
    positional = list(getattr(early_config.known_args_namespace, "file_or_dir", None) or [])
    ours = [a for a in positional if NODEID.match(a)]
    if not ours:
        return
    for arg in ours:
        args[args.index(arg)] = f"--bpttcheck-nodeid={arg}"
    if len(ours) == len(positional):  # only ours: collect none of the project's own tests
        args.append("--ignore-glob=*")


def run_settings(config) -> dict:
    """Every bpttcheck option's value for this run: the command line, else the environment
    variable, else the default (``profile`` resolved to a concrete profile name), plus the
    targets and ids of node ids given as arguments (``nodeids``)."""
    values = {name: _options.resolve(opt, config.getoption(opt.dest)) for name, opt in _options.OPTIONS.items()}
    values["profile"] = values["profile"] or default_profile()
    values["nodeids"] = list(config.getoption(_NODEID_DEST) or [])
    for nodeid in values["nodeids"]:
        target = NODEID.match(nodeid).group("target")
        if target not in values["target"]:
            values["target"].append(target)
    return values


def pytest_configure(config):
    import pytest

    try:
        values = run_settings(config)
    except ValueError as exc:  # a bad environment variable: one line, not a traceback
        raise pytest.UsageError(str(exc)) from None
    if values["profile"] not in PROFILES:
        raise pytest.UsageError(f"{ENV_PROFILE}={values['profile']!r}: expected one of {', '.join(PROFILES)}")
    config.addinivalue_line("markers", "bpttcheck: a conformance check of a --bpttcheck-target")
    if not values["target"] and not values["report"]:
        return
    from . import plugin_items

    config.pluginmanager.register(plugin_items.OracleCollection(config, values), _PLUGIN_NAME)
    # The results are gathered by the process that sees every report: the xdist controller, or
    # the only process without xdist (workers carry a ``workerinput`` attribute).
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(plugin_items.ResultLog(config, values), _LOG_PLUGIN_NAME)


def pytest_report_header(config):
    targets = _options.resolve(_options.OPTIONS["target"], config.getoption("bpttcheck_target"))
    if not targets or _options.resolve(_options.OPTIONS["quiet"], config.getoption("bpttcheck_quiet")):
        return None
    profile = _options.resolve(_options.OPTIONS["profile"], config.getoption("bpttcheck_profile")) or default_profile()
    return (f"bpttcheck: targets {', '.join(targets)}; profile {profile} (the checks' own Hypothesis profile "
            f"{profile_name(profile) if profile in PROFILES else profile!r}; other tests keep theirs)")
