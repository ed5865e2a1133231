"""Keras-style stateful training (``stateful=True``, ``shuffle=False``), as a reference.

Long sequences are cut into chunks of m steps; the dataset holds, batch after batch, sample i
of batch j = chunk j of sequence i, so the final state of sample i in one batch is the
initial state of sample i in the next. Each batch is a separate forward and backward with
the carried state as a constant. Its forward equals the whole sequence's; with the
parameters held fixed its accumulated gradient equals the subsequence scheme with k = m
(SPEC §3).

Layouts: sequences time-major (T, B, D); the Keras dataset batch-first (n·B, m, D) with
n = T / m batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import RecurrentConfig
from .network import backward, forward
from .validation import InvalidArgument, check_array, check_instance, check_int
from .truncation import check_problem

__all__ = ["StatefulResult", "from_stateful_batches", "stateful_backward", "to_stateful_batches"]


def to_stateful_batches(x, m: int) -> np.ndarray:
    """(T, B, D) sequences -> the Keras stateful dataset (n·B, m, D), n = T / m."""
    x = check_array("x", x, (None, None, None), dims=("T", "B", "D"))
    m = check_int("m", m, minimum=1)
    T, B, D = x.shape
    if T % m:
        raise InvalidArgument(
            f"m={m} (type=int): expected a divisor of T={T}; Keras stateful samples all have the "
            "same length, pad or trim the sequences first"
        )
    n = T // m
    return x.reshape(n, m, B, D).transpose(0, 2, 1, 3).reshape(n * B, m, D)


def from_stateful_batches(X, batch_size: int) -> np.ndarray:
    """Inverse of :func:`to_stateful_batches`: (n·B, m, D) -> (T, B, D)."""
    X = check_array("X", X, (None, None, None), dims=("n*B", "m", "D"))
    B = check_int("batch_size", batch_size, minimum=1)
    if X.shape[0] % B:
        raise InvalidArgument(f"X has {X.shape[0]} samples: expected a multiple of batch_size={B}")
    n, m, D = X.shape[0] // B, X.shape[1], X.shape[2]
    return X.reshape(n, B, m, D).transpose(0, 2, 1, 3).reshape(n * m, B, D)


@dataclass(frozen=True)
class StatefulResult:
    """output (n·B, m, P) in the dataset's layout; h_n, c_n the state after the last batch;
    grads accumulated over the batches ("input" in the dataset's layout; "h0"/"c0" reach the
    first batch only)."""

    output: np.ndarray
    h_n: np.ndarray
    c_n: np.ndarray | None
    grads: dict


def stateful_backward(config, params, X, d_output, batch_size: int, h0=None, c0=None) -> StatefulResult:
    """Run the dataset batch by batch, carrying each sample's state, summing the gradients.

    X (n·B, m, D) and d_output (n·B, m, P), batch-first as Keras feeds them.
    """
    B = check_int("batch_size", batch_size, minimum=1)
    check_instance("config", config, RecurrentConfig, "a RecurrentConfig")
    X = check_array("X", X, (None, None, config.input_size), dims=("n*B", "m", "input_size"))
    d_output = check_array("d_output", d_output, X.shape[:2] + (config.output_size,), dims=("n*B", "m", "P"))
    seq = from_stateful_batches(X, B)
    seq_d = from_stateful_batches(d_output, B)
    check_problem(config, params, seq, seq_d, h0, c0)
    n = X.shape[0] // B
    h, c = h0, c0
    outs, total = [], None
    dX = np.zeros(X.shape)
    for j in range(n):
        rows = slice(j * B, (j + 1) * B)
        r = forward(config, params, X[rows], h, c, batch_first=True)
        g = backward(params, r, d_output[rows])
        outs.append(r.output)
        dX[rows] = g.pop("input")
        if j > 0:  # the carried state is a constant: only the first batch reaches h0/c0
            g.pop("h0")
            g.pop("c0", None)
        total = g if total is None else {k: total[k] + g[k] if k in g else total[k] for k in total}
        h, c = r.h_n, r.c_n  # carried by value, like Keras between batches
    total["input"] = dX
    return StatefulResult(np.concatenate(outs, axis=0), h, c, total)
