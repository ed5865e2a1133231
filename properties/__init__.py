"""Hypothesis strategies, the tolerance policy, the comparison helper and property checks.

A thin public module: names resolve lazily from their submodules, so ``import
bpttcheck.properties`` stays cheap and never imports torch or SymPy. Area-specific checks live
in their submodules: ``truncation``, ``unbiased``, ``clipping``, ``gradcheck``, ``stability``,
``structure``, ``torch_checks``.
"""

from __future__ import annotations

import importlib
import sys
import types

_EXPORTS = {
    "strategies": ("REGIMES", "Case", "cases", "configs", "make_case", "scale_recurrent_weights", "sigma_for_regime"),
    "tolerance": ("PRECISIONS", "UNIT_ROUNDOFF", "Tolerance", "finite_difference_tolerance", "implementation_tolerance", "precision_of"),
    "compare": ("Comparison", "Mismatch", "assert_close", "compare"),
    "runner": ("PropertyCheck", "run_check", "verify"),
    "results": ("CheckResult", "Report", "Status"),
    # deprecated (removed in 0.3): the oracle is a layer above; import it from bpttcheck.properties.oracle
    "oracle.api": ("builtin_checks",),
    "torch_checks": ("compare_results", "compare_with_torch", "torch_layer", "run_torch_layer"),
    "sensitivity": ("rounding_sensitivity",),
    "gradcheck": ("check_gradients", "check_case_gradients"),
    "unbiased": ("statistical_test", "check_exactly_unbiased", "UnbiasednessReport"),
    "clipping": ("check_clipping", "check_loss_gradient", "LossClipsGradients", "gradient_lists"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'bpttcheck.properties' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The import system binds each submodule on its package once it is imported; for a public
    function named like its own submodule (``compare`` in ``compare``) the function keeps the
    name — ``from bpttcheck.properties import compare`` is the function, whatever was imported
    before — and the submodule stays importable by its full name."""

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and _WHERE.get(name) == name:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
