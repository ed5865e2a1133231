"""The Keras 3 adapter on real Keras (skipped where keras is not installed): under the torch
backend LSTM and GRU(reset_after=True) pass the float64 and float32 gradient checks, a float64
SimpleRNN fails them at float32 accuracy and the adapter warns that it computes below float64
(measured), GRU(reset_after=False) is refused with the reason. The backend is chosen when Keras
is imported, so each backend runs in a child process; the jax backend is slow-marked."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

# not imported here: Keras fixes its backend at import (its default, tensorflow, may be absent)
pytestmark = [pytest.mark.frameworks,
              pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="keras is not installed")]

SCRIPT = textwrap.dedent('''
    import json, warnings
    import keras
    from bpttcheck.properties.oracle.adapters.keras import BelowFloat64Warning, keras_target
    from bpttcheck.properties.oracle.api import run_one
    from bpttcheck.properties.oracle.api import target_checks
    from bpttcheck.properties.oracle.targets import TargetError
    out = {}
    for name in NAMES:
        fn = keras_target(getattr(keras.layers, name))
        for check in target_checks(fn, "numpy", dtypes=DTYPES):
            if "/gradients[" not in check.check_id:
                continue
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                r = run_one(check, "dev")
            out[name + " " + check.check_id] = [r.status, r.message.splitlines()[0] if r.message else "",
                                                [str(x.message) for x in w if issubclass(x.category, BelowFloat64Warning)]]
        out[name + " probe"] = fn.precision
    try:
        keras_target(keras.layers.GRU, reset_after=False)
    except TargetError as exc:
        out["reset_after=False"] = str(exc)
    print("RESULT" + json.dumps(out))
''')


def _run(backend, names, dtypes=("float64", "float32")):
    env = dict(os.environ, KERAS_BACKEND=backend)
    code = f"NAMES = {list(names)!r}\nDTYPES = {tuple(dtypes)!r}\n" + SCRIPT
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=1200)
    line = [s for s in proc.stdout.splitlines() if s.startswith("RESULT")]
    assert line, proc.stderr[-3000:]
    return json.loads(line[0][len("RESULT"):])


def test_keras_torch_backend():
    pytest.importorskip("torch")
    out = _run("torch", ["LSTM", "GRU", "SimpleRNN"])
    for name in ("LSTM", "GRU"):
        for dtype in ("float64", "float32"):
            status, message, warned = out[f"{name} numpy/{name.lower()}/gradients[cpu,{dtype}]"]
            assert status == "pass" and not warned, (name, dtype, message)
        assert out[f"{name} probe"]["below_float64"] is False
    status, message, warned = out["SimpleRNN numpy/rnn/gradients[cpu,float64]"]
    assert status == "fail" and "Mismatch" in message
    assert warned and "computes below float64" in warned[0]
    assert out["SimpleRNN numpy/rnn/gradients[cpu,float32]"][0] == "pass"
    assert out["SimpleRNN probe"]["below_float64"] is True
    assert "2014 paper" in out["reset_after=False"]


@pytest.mark.slow
def test_keras_jax_backend():
    pytest.importorskip("jax")
    out = _run("jax", ["GRU"], dtypes=("float32",))
    assert out["GRU numpy/gru/gradients[cpu,float32]"][0] == "pass", out
