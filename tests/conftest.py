"""Shared fixtures of the suite's own tests, and the suite's own Hypothesis settings.

The project's tests are deterministic (issue 12): they run under a derandomized profile of
their own, whatever $CI or $BPTTCHECK_PROFILE say, so a CI run cannot flip. The oracle's
profiles (``bpttcheck-dev``/``-ci``/``-thorough``, used by tests that call ``verify_target``)
are registered derandomized too, before the oracle registers its own (a registered name is
kept). ``dev`` stays random for users exploring; a test that passes a seed still gets it.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from bpttcheck.profiles import PREFIX, TABLE

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
for _name, _values in TABLE.items():
    settings.register_profile(PREFIX + _name, parent=settings.get_profile("default"), deadline=None,
                              suppress_health_check=_QUIET, **dict(_values, derandomize=True, database=None))
settings.register_profile("bpttcheck-tests", parent=settings.get_profile("default"), max_examples=25,
                          derandomize=True, database=None, deadline=None, print_blob=True,
                          suppress_health_check=_QUIET)
settings.load_profile("bpttcheck-tests")


def pytest_collection_modifyitems(config, items):
    try:
        import torch  # noqa: F401
        has_torch = True
    except ImportError:
        has_torch = False
    skip = pytest.mark.skip(reason="PyTorch is not installed (pip install 'bpttcheck[torch]')")
    for item in items:
        if "torch" in item.keywords and not has_torch:
            item.add_marker(skip)


@pytest.fixture
def rng():
    return np.random.default_rng(20261122)
