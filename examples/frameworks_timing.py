"""Time to verdict of a JAX target: the jax kind (one jit per target, JAX's shape cache) vs a
numpy-kind adapter that jit-compiles a lax.scan in every call (what a user's adapter did).

    python examples/frameworks_timing.py [dev|ci]

Prints cases/s (wall and CPU) of the float64 LSTM gradients check for each. Needs jax.
"""

from __future__ import annotations

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from bpttcheck.properties.oracle.api import run_one, target_checks
from bpttcheck.properties.oracle.jax_checks import JaxCell, x64
import bpttcheck.properties.oracle.jax_checks as jc


def lstm_step(p, x, s):
    h, c = s
    i, f, g, o = jnp.split(x @ p["W"] + h @ p["U"] + p["b"], 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return h, (h, c)


def from_torch(t):
    return {"W": t["weight_ih"].T, "U": t["weight_hh"].T, "b": t.get("bias_ih", 0.0) + t.get("bias_hh", 0.0)}


def scan_adapter(config, params, x, h0, c0, d_output, d_h_n, d_c_n):
    """The numpy protocol by hand: lax.scan under a fresh jax.jit each call (recompiles every case)."""
    if config["cell"] != "lstm" or config["num_layers"] != 1 or config["bidirectional"] or config["proj_size"]:
        raise NotImplementedError("one-layer LSTM only")
    with x64(x.dtype == np.float64):
        tp = {k[:-3]: jnp.asarray(v) for k, v in params.items()}

        def run(tp, x, h, c):
            (h, c), ys = jax.lax.scan(lambda s, xt: (lstm_step(from_torch(tp), xt, s)[1],) * 2, (h, c), x)
            return ys[0], h[None], c[None]

        @jax.jit
        def both(tp, x, h, c, dy, dh, dc):
            out, pull = jax.vjp(run, tp, x, h, c)
            return out, pull((dy, dh, dc))

        (y, hn, cn), (g, gx, gh, gc) = both(tp, x, h0[0], c0[0], d_output, d_h_n, d_c_n)
        res = {"output": y, "h_n": hn, "c_n": cn, "input": gx, "h0": gh[None], "c0": gc[None]}
        res.update({k + "_l0": v for k, v in g.items()})
        return {k: np.asarray(v) for k, v in res.items()}


def timed(check, profile):
    """Wall and CPU seconds (all threads of this process: JAX compiles on several), the CPU
    figure being the one that holds on a machine shared with other jobs."""
    t, c = time.perf_counter(), time.process_time()
    r = run_one(check, profile)
    return r.status, r.cases, time.perf_counter() - t, time.process_time() - c


if __name__ == "__main__":
    profile = sys.argv[1] if len(sys.argv) > 1 else "dev"
    kind_check = target_checks(JaxCell(lstm_step, cell="lstm", params=from_torch), "jax", dtypes=("float64",))[0]
    # the same cases and judge, the adapter swapped in for the kind's engine
    scan_check = target_checks(JaxCell(lstm_step, cell="lstm", params=from_torch), "jax", dtypes=("float64",))[0]
    for label, check in (("jax kind (cached jit)", kind_check), ("lax.scan jit per call", scan_check)):
        if check is scan_check:
            jc.run_jax_cell = lambda target, *args: scan_adapter(*args)
        status, cases, dt, cpu = timed(check, profile)
        print(f"{profile}: {label}: {status}, {cases} cases in {dt:.1f} s wall = {cases / dt:.2f} cases/s; "
              f"{cpu:.1f} s CPU = {cases / cpu:.2f} cases per CPU-second")
