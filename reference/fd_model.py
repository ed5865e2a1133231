"""The recurrent network as a batched function of one flat vector, for finite differences.

:class:`NetworkLoss` maps a batch of flat vectors θ (K, P) — the chosen parameters and,
when asked, the input x, h0 and c0, concatenated in :class:`FlatLayout` order — to K loss
values in one stacked call of :func:`bpttcheck.reference.forward`: every perturbation of a
sweep becomes one member of the parameter stack. The loss is either the cotangent form
``Σ⟨G, output⟩ + ⟨G_h, h_n⟩ + ⟨G_c, c_n⟩`` or a :class:`~bpttcheck.reference.LossSpec` loss
(plus optional state cotangents). Everything stays holomorphic, so the complex step applies.

:meth:`NetworkLoss.chunk_size` bounds K so that the arrays one call adds — the stacked
copies of the perturbed arrays and the stacked forward's caches — stay under a memory budget
(512 MB by default) whatever the model's size.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np

from .cells import cell_spec, cell_state_note
from .config import RecurrentConfig
from .validation import InvalidArgument, check_array, describe
from .losses import LossSpec, loss_and_grad
from .network import backward, forward

__all__ = ["CALL_BYTES", "DEFAULT_MEMORY_BUDGET", "FlatLayout", "NetworkLoss", "STATE_NAMES"]

#: Bytes a finite-difference call may add beyond the model's own arrays.
DEFAULT_MEMORY_BUDGET = 512 * 2**20

#: Preferred size of one call's arrays: measured fastest between 16 and 64 MB per call (RNN
#: and LSTM, H = 16, T = 20); a single call over every row was up to 2× slower.
CALL_BYTES = 32 * 2**20

#: Non-parameter quantities that can be differentiated (keys of ``backward``'s result).
STATE_NAMES = ("input", "h0", "c0")


@dataclass(frozen=True)
class FlatLayout:
    """Named arrays laid end to end in one vector: ``names[i]`` occupies ``slices[i]``."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(math.prod(s) for s in self.shapes)

    @property
    def size(self) -> int:
        return sum(self.sizes)

    @property
    def slices(self) -> dict[str, slice]:
        out, start = {}, 0
        for name, n in zip(self.names, self.sizes):
            out[name] = slice(start, start + n)
            start += n
        return out

    def flatten(self, arrays: dict) -> np.ndarray:
        """(P,) from ``arrays[name]`` of each name's shape."""
        return np.concatenate([np.asarray(arrays[n]).reshape(-1) for n in self.names])

    def unflatten(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """``{name: (*lead, *shape)}`` views of ``flat`` (*lead, P)."""
        lead = flat.shape[:-1]
        return {n: flat[..., s].reshape(lead + shape) for (n, s), shape in zip(self.slices.items(), self.shapes)}

    def locate(self, index: int) -> tuple[str, tuple[int, ...]]:
        """The name and element index of flat position ``index``."""
        for (name, s), shape in zip(self.slices.items(), self.shapes):
            if s.start <= index < s.stop:
                return name, tuple(int(i) for i in np.unravel_index(index - s.start, shape))
        raise InvalidArgument(f"index={index!r}: expected 0 <= index < {self.size}")


class NetworkLoss:
    """``f(thetas (K, P)) -> (K,)``: the network's loss at K values of the chosen quantities.

    ``wrt`` names what θ holds: parameter names (torch's) and any of ``"input"``, ``"h0"``,
    ``"c0"``; default every parameter, the input and the initial state(s). Quantities not in
    ``wrt`` stay at the values given. Cotangents ``d_output`` (layout of the output), ``d_h_n``
    and ``d_c_n`` define ``Σ⟨G, output⟩ + …``; or ``loss`` (a LossSpec) with ``target`` (and
    optionally a fixed ``readout``) replaces the output term.
    """

    def __init__(
        self,
        config: RecurrentConfig,
        params: dict,
        x,
        h0=None,
        c0=None,
        *,
        lengths=None,
        batch_first: bool = False,
        d_output=None,
        d_h_n=None,
        d_c_n=None,
        loss: LossSpec | None = None,
        target=None,
        readout=None,
        wrt=None,
    ):
        # One unstacked forward validates everything and fixes the shapes.
        base = forward(config, params, x, h0, c0, lengths=lengths, batch_first=batch_first)
        self.config, self.lengths, self.batch_first = config, base.lengths, batch_first
        self.params = {k: np.asarray(v) for k, v in params.items()}
        self.dtype = base.output.dtype
        self.x = np.asarray(x, dtype=self.dtype)
        LD = config.num_layers * config.num_directions
        B = base.h_n.shape[1]
        self.h0 = np.zeros((LD, B, config.output_size), self.dtype) if h0 is None else np.asarray(h0, self.dtype)
        self.c0 = None
        if cell_spec(config.cell).has_cell_state:
            self.c0 = np.zeros((LD, B, config.hidden_size), self.dtype) if c0 is None else np.asarray(c0, self.dtype)
        self._check_loss(base, d_output, d_h_n, d_c_n, loss, target, readout)
        self.wrt = self._check_wrt(wrt)
        values = self._values()
        self.layout = FlatLayout(self.wrt, tuple(values[n].shape for n in self.wrt))
        self.theta = self.layout.flatten(values)
        self._base = base
        #: For relu networks, each call appends a (K,) bool array: rows that cross a kink.
        self.kink_log: list | None = [] if config.nonlinearity == "relu" else None

    # -- set-up -------------------------------------------------------------------------

    def _check_loss(self, base, d_output, d_h_n, d_c_n, loss, target, readout):
        if loss is not None:
            if not isinstance(loss, LossSpec):
                raise InvalidArgument(f"loss={describe(loss)}: expected a LossSpec or None")
            if d_output is not None:
                raise InvalidArgument(f"d_output={describe(d_output)}: expected None when loss is given (the loss defines the output's cotangent)")
            # Validates target and readout once, on the unperturbed output.
            loss_and_grad(loss, self._time_major(base.output), target, readout=readout, lengths=base.lengths)
        elif d_output is None and d_h_n is None and d_c_n is None:
            raise InvalidArgument("d_output, d_h_n, d_c_n and loss are all None: expected a loss or at least one cotangent")
        else:
            for name, value in (("target", target), ("readout", readout)):
                if value is not None:
                    raise InvalidArgument(f"{name}={describe(value)}: expected None without a loss (only a LossSpec "
                                          "loss uses a target and a readout)")
        self.loss, self.target, self.readout = loss, target, readout
        self.d_output = None if d_output is None else check_array("d_output", d_output, base.output.shape)
        self.d_h_n = None if d_h_n is None else check_array("d_h_n", d_h_n, base.h_n.shape)
        if d_c_n is not None and base.c_n is None:
            raise InvalidArgument(f"d_c_n={describe(d_c_n)}: expected None, {cell_state_note()}")
        self.d_c_n = None if d_c_n is None else check_array("d_c_n", d_c_n, base.c_n.shape)

    def _check_wrt(self, wrt) -> tuple[str, ...]:
        names = tuple(self.config.param_shapes()) + STATE_NAMES[: 3 if cell_spec(self.config.cell).has_cell_state else 2]
        if wrt is None:
            return names
        if isinstance(wrt, str) or not hasattr(wrt, "__iter__") or not all(isinstance(n, str) for n in wrt):
            raise InvalidArgument(f"wrt={describe(wrt)}: expected a sequence of names among {list(names)}")
        wrt = tuple(wrt)
        unknown = [n for n in wrt if n not in names]
        if unknown or not wrt or len(set(wrt)) != len(wrt):
            raise InvalidArgument(
                f"wrt={describe(wrt)}: expected distinct names among {list(names)}"
                + (f" (unknown: {unknown})" if unknown else "")
            )
        return tuple(n for n in names if n in wrt)  # canonical order

    def _values(self) -> dict:
        values = dict(self.params, input=self.x, h0=self.h0)
        if self.c0 is not None:
            values["c0"] = self.c0
        return values

    def _time_major(self, output):
        return output.swapaxes(-3, -2) if self.batch_first else output

    # -- the function ---------------------------------------------------------------------

    def __call__(self, thetas) -> np.ndarray:
        """thetas (K, P) (real or complex) -> (K,) loss values, in one stacked forward."""
        thetas = np.asarray(thetas)
        if thetas.ndim != 2 or thetas.shape[1] != self.layout.size:
            raise InvalidArgument(f"thetas={describe(thetas)}: expected shape (K, P={self.layout.size})")
        K = thetas.shape[0]
        moved = self.layout.unflatten(thetas)
        stacked = {n: moved[n] if n in moved else np.broadcast_to(v, (K,) + v.shape) for n, v in self.params.items()}
        x = moved.get("input", self.x)
        h0 = moved.get("h0", np.broadcast_to(self.h0, (K,) + self.h0.shape))
        c0 = None if self.c0 is None else moved.get("c0", np.broadcast_to(self.c0, (K,) + self.c0.shape))
        res = forward(self.config, stacked, x, h0, c0, lengths=self.lengths, batch_first=self.batch_first,
                      keep_cache=self.kink_log is not None)  # the kink test reads φ′ from the caches
        if self.kink_log is not None:
            self.kink_log.append(self._crosses_kink(res, K))
        total = np.zeros(K, dtype=res.output.dtype)
        if self.loss is not None:
            total = total + self._spec_loss(res.output, K)
        for cot, arr in ((self.d_output, res.output), (self.d_h_n, res.h_n), (self.d_c_n, res.c_n)):
            if cot is not None:
                total = total + arr.reshape(K, -1) @ cot.reshape(-1)
        return total

    def _crosses_kink(self, res, K: int) -> np.ndarray:
        """(K,) bool: rows whose relu on/off pattern differs from the unperturbed one.

        Such a row straddles a kink of relu (not differentiable at 0), where no finite
        difference means anything; the checks leave those elements out. The pattern is the
        φ′ that a cell taking relu keeps in its cache (``derivative``: 0/1 for relu), compared
        over every step.
        """
        flags = np.zeros(K, dtype=bool)
        c = self.config
        for layer in range(c.num_layers):
            for direction in range(c.num_directions):
                d = res.layer_cache(layer, direction).derivative  # (T, K, B, H)
                d0 = self._base.layer_cache(layer, direction).derivative  # (T, B, H)
                flags |= np.any(d != d0[:, None], axis=tuple(i for i in range(d.ndim) if i != 1))
        return flags

    def _spec_loss(self, output, K: int) -> np.ndarray:
        """The LossSpec loss of each stack member, with the stack folded into the batch."""
        y = self._time_major(output)  # (K, T, B, F)
        _, T, B, F = y.shape
        y = y.transpose(1, 0, 2, 3).reshape(T, K * B, F)
        target = np.asarray(self.target)
        target = np.tile(target, (1, K, 1) if target.ndim == 3 else (1, K))
        lengths = None if self.lengths is None else np.tile(self.lengths, K)
        per = loss_and_grad(self.loss, y, target, readout=self.readout, lengths=lengths).per_step
        # The folded batch is K times larger, and so was each member's normaliser — except
        # for a summed cotangent loss, which is not normalised (losses.py).
        unnormalised = self.loss.kind == "cotangent" and self.loss.reduction == "sum"
        return per.reshape(T, K, B).sum(axis=(0, 2)) * (1 if unnormalised else K)

    # -- helpers for checks ---------------------------------------------------------------

    def value(self) -> float:
        return float(np.real(self(self.theta[None, :])[0]))

    def rounding_scale(self) -> float:
        """Σ of the absolute terms of the loss at θ, times √T: f's rounding is ~u times this."""
        base = self._base
        total = 0.0
        if self.loss is not None:
            per = loss_and_grad(self.loss, self._time_major(base.output), self.target,
                                readout=self.readout, lengths=base.lengths).per_step
            total += float(np.abs(per).sum())
        for cot, arr in ((self.d_output, base.output), (self.d_h_n, base.h_n), (self.d_c_n, base.c_n)):
            if cot is not None:
                total += float(np.abs(cot).reshape(-1) @ np.abs(arr).reshape(-1))
        T = self.x.shape[1 if self.batch_first else 0]
        return total * math.sqrt(T)

    def gradient(self, forward_fn=forward, backward_fn=backward) -> dict[str, np.ndarray]:
        """The analytic gradient of the same loss by ``forward_fn`` + ``backward_fn``
        (the reference's by default; an implementation under test otherwise), for ``wrt``."""
        for name, fn in (("forward_fn", forward_fn), ("backward_fn", backward_fn)):
            if not callable(fn):
                raise InvalidArgument(f"{name}={describe(fn)}: expected a callable with the signature of "
                                      f"the reference's {name[:-3]}()")
        if forward_fn is forward:  # the validating forward of __init__ is this very result
            res = self._base
        else:
            res = forward_fn(self.config, self.params, self.x, self.h0, self.c0,
                             lengths=self.lengths, batch_first=self.batch_first)
        d_output = self.d_output
        if self.loss is not None:  # the readout stays fixed: only ∂L/∂output is needed here
            lr = loss_and_grad(self.loss, self._time_major(res.output), self.target,
                               readout=self.readout, lengths=self.lengths)
            d_output = lr.d_output.swapaxes(0, 1) if self.batch_first else lr.d_output
        grads = backward_fn(self.params, res, d_output, self.d_h_n, self.d_c_n)
        return _returned_gradients(grads, self.wrt)

    def bytes_per_row(self, complex_rows: bool = False) -> int:
        """An upper bound on the bytes one row of a batch adds (see :meth:`chunk_size`).

        Per row: the row itself and its stacked copies (parameters, x, h0, c0), and per layer
        and direction the stacked forward's arrays: pre-activations and their derived
        coefficients (2 gate-sized arrays per step), 5 state-sized ones, 3 output-sized ones
        and the layer's output, over T+1 steps and B sequences. Calibrated with tracemalloc on
        every cell: the measured peak stays below 0.4 of this (tests/test_finite_diff_model.py).
        """
        c = self.config
        item = np.dtype(self.dtype).itemsize * (2 if complex_rows else 1)
        T = self.x.shape[1 if self.batch_first else 0]
        B = self.h0.shape[1]
        G, H, P = c.gates * c.hidden_size, c.hidden_size, c.output_size
        per_layer = (T + 1) * B * (2 * G + 5 * H + 3 * P + 2 * c.num_directions * P)
        elems = 3 * self.layout.size + 2 * sum(v.size for v in self.params.values())
        elems += 2 * (self.x.size + self.h0.size + (0 if self.c0 is None else self.c0.size))
        elems += c.num_layers * c.num_directions * per_layer
        if self.loss is not None:  # the folded readout logits and their intermediates
            K_out = c.num_directions * P if self.readout is None else np.shape(self.readout["weight_hy"])[0]
            elems += 6 * T * B * (K_out + c.num_directions * P)
        return int(elems * item)

    def chunk_size(self, complex_rows: bool = False, budget: int = DEFAULT_MEMORY_BUDGET) -> int:
        """Rows per call so that one call adds at most ``budget`` bytes.

        At least 1 row: a model whose single forward exceeds the budget gets one row per call,
        which is what an ordinary forward of the model costs anyway. Calls are also kept near
        :data:`CALL_BYTES`, where they ran fastest (arrays that stay in cache between the
        steps of the recurrence), and never below 16 rows for that reason alone.
        """
        per_row = self.bytes_per_row(complex_rows)
        by_budget = max(1, int(budget // per_row))
        by_speed = max(16, int(CALL_BYTES // per_row))
        return min(by_budget, by_speed)


def _returned_gradients(grads, wrt) -> dict[str, np.ndarray]:
    """The ``wrt`` entries of what a backward_fn returned, as arrays; anything else is refused
    here, naming what came back, instead of a KeyError or TypeError further on."""
    if not isinstance(grads, dict):
        raise InvalidArgument(f"backward_fn returned {describe(grads)}: expected a dict of gradients "
                              f"name -> array with the keys {list(wrt)}")
    missing = [n for n in wrt if n not in grads]
    if missing:
        raise InvalidArgument(f"backward_fn returned a dict with keys {sorted(grads)}: expected the keys "
                              f"{list(wrt)} (missing {missing})")
    out = {}
    for n in wrt:
        try:
            arr = np.asarray(grads[n])
        except (TypeError, ValueError):
            arr = None
        if arr is None or arr.dtype.kind not in "fciu":
            raise InvalidArgument(f"backward_fn returned {n}={describe(grads[n])}: expected a numeric array")
        out[n] = arr
    return out
