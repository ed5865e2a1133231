"""bpttcheck: a correctness oracle for backpropagation through time.

    >>> import bpttcheck
    >>> bpttcheck.check(MyLSTM)          # doctest: +SKIP  (raises bpttcheck.CheckFailed on a bug)

The layers live in sub-packages: :mod:`bpttcheck.reference` (NumPy reference and hand-written
BPTT), :mod:`bpttcheck.properties` (strategies, tolerance policy, property checks, the oracle)
and :mod:`bpttcheck.symbolic` (SymPy derivations; imported only on demand, it is slow); the
command line, the pytest plugin and :func:`check` sit on top (docs/architecture.md). The names
below resolve lazily: ``import bpttcheck`` imports nothing else.
"""

import importlib as _importlib
import os as _os

from bpttcheck._version import __version__

_EXPORTS = {"CheckFailed": "bpttcheck.api", "NothingChecked": "bpttcheck.api", "check": "bpttcheck.api",
            "verify_target": "bpttcheck.properties.oracle.api", "Report": "bpttcheck.properties.results",
            "CheckResult": "bpttcheck.properties.results", "Status": "bpttcheck.properties.results"}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bpttcheck' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


# Installed, the layers sit inside this package. In a source checkout they are the
# repository's top-level folders (reference/, properties/, symbolic/); when this folder is
# imported straight from the checkout (the checkout's root on sys.path, e.g. `python -c` run
# there), let the namespace find them beside it.
_here = _os.path.dirname(_os.path.abspath(__file__))
_root = _os.path.dirname(_here)
if not _os.path.isdir(_os.path.join(_here, "reference")) and _os.path.isfile(
    _os.path.join(_root, "reference", "__init__.py")
) and _os.path.isfile(_os.path.join(_root, "pyproject.toml")):
    __path__.append(_root)
del _here, _root
