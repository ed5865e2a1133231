"""Every public module states its ``__all__`` truthfully, and the light imports stay light."""

import importlib
import pkgutil
import subprocess
import sys

import pytest

import bpttcheck.bench
import bpttcheck.commands
import bpttcheck.properties
import bpttcheck.reference


def _modules(package):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if not info.name.rsplit(".", 1)[-1].startswith("_"):
            yield info.name


PUBLIC = sorted({*_modules(bpttcheck.reference), *_modules(bpttcheck.properties), *_modules(bpttcheck.bench),
                 *_modules(bpttcheck.commands), "bpttcheck", "bpttcheck.reference", "bpttcheck.properties",
                 "bpttcheck.plugin", "bpttcheck.plugin_items", "bpttcheck.cli", "bpttcheck.options",
                 "bpttcheck.profiles", "bpttcheck.api"})


@pytest.mark.parametrize("name", PUBLIC)
def test_all_names_exist(name):
    module = importlib.import_module(name)
    names = getattr(module, "__all__", None)
    assert names is not None, f"{name} has no __all__"
    missing = [n for n in names if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it lacks: {missing}"


@pytest.mark.parametrize("statement", [
    "import bpttcheck; bpttcheck.__all__",
    "import bpttcheck.options, bpttcheck.profiles",
    "import bpttcheck.properties.oracle.kinds",
    "import bpttcheck.reference",
    "import bpttcheck.properties",
    "import bpttcheck.plugin",
    "import bpttcheck.cli; bpttcheck.cli.build_parser()",
])
def test_light_imports_pull_in_neither_sympy_nor_torch(statement):
    code = f"{statement}; import sys; print('sympy' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"], f"{statement!r} imported sympy/torch: {out}"


def test_the_package_resolves_its_names_lazily():
    import bpttcheck

    assert bpttcheck.check.__module__ == "bpttcheck.api" and issubclass(bpttcheck.CheckFailed, AssertionError)
    assert bpttcheck.Status.PASS == "pass"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        bpttcheck.nope


def test_old_public_places_keep_working():
    """Names the README and the first API documented, after the moves of issue 11."""
    from bpttcheck.properties import CheckResult, verify
    from bpttcheck.properties.oracle import Report as OracleReport
    from bpttcheck.properties.oracle.report import Report as ReportModuleReport
    from bpttcheck.properties.results import CheckResult as ResultsCheckResult, Report
    from bpttcheck.properties.runner import CheckResult as RunnerCheckResult

    assert CheckResult is RunnerCheckResult is ResultsCheckResult
    assert OracleReport is ReportModuleReport is Report
    import bpttcheck.properties.runner  # noqa: F401  (importing submodules must not change the name)

    assert callable(verify) and bpttcheck.properties.verify is verify


def test_compare_is_the_function_even_after_its_submodule_is_imported():
    import importlib

    importlib.import_module("bpttcheck.properties.compare")
    from bpttcheck.properties import compare

    assert callable(compare) and compare.__name__ == "compare"
    assert importlib.import_module("bpttcheck.properties.compare").compare is compare
