"""flax (linen), equinox and haiku cell classes as ``jax``-kind targets.

    import flax.linen as nn
    from bpttcheck.properties.oracle.adapters.jax_cells import flax_cell
    FlaxLSTM = flax_cell(nn.LSTMCell)           # bpttcheck verify --target mymod:FlaxLSTM

Each adapter builds the library's cell for every (input_size, hidden_size) the oracle draws
(cached by the ``jax`` kind), converts the state to torch's convention (h, or (h, c)) and names
the parameter layout of :mod:`.jax_layouts`; the ``jax`` kind does the rest.
"""

from __future__ import annotations

from functools import partial

from ..jax_checks import JaxCell
from ..targets import TargetError
from .jax_layouts import haiku_params

__all__ = ["equinox_cell", "flax_cell", "haiku_cell"]


def _cell_of_class(cls, names: dict, lib: str) -> str:
    for part, cell in names.items():
        if part in getattr(cls, "__name__", ""):
            return cell
    raise TargetError(f"{lib}_cell({cls!r}): expected one of {lib}'s cells ({', '.join(names)}) or a subclass")


def flax_cell(cls, *, nonlinearity: str = "tanh", **kwargs):
    """A :class:`JaxCell` from a flax.linen cell class (``nn.LSTMCell``, ``nn.OptimizedLSTMCell``,
    ``nn.GRUCell``, ``nn.SimpleCell``); ``kwargs`` go to the constructor with ``features=H``."""
    cell = _cell_of_class(cls, {"LSTM": "lstm", "GRU": "gru", "SimpleCell": "rnn"}, "flax")
    if kwargs.get("residual"):
        raise TargetError("flax_cell(SimpleCell, residual=True): h' = φ(... + h) is not torch's RNN")
    if cell == "rnn" and nonlinearity == "relu" and "activation_fn" not in kwargs:
        import jax

        kwargs["activation_fn"] = jax.nn.relu
    lstm = cell == "lstm"

    def make(D, H):
        module = cls(features=H, **kwargs)

        def step(p, x, s):
            carry, y = module.apply({"params": p}, (s[1], s[0]) if lstm else s, x)
            return y, ((carry[1], carry[0]) if lstm else carry)  # flax's LSTM carry is (c, h)
        return step

    return JaxCell(make=make, cell=cell, params="flax", nonlinearity=nonlinearity, name=f"flax {cls.__name__}")


def equinox_cell(cls, **kwargs):
    """A :class:`JaxCell` from ``equinox.nn.LSTMCell`` or ``equinox.nn.GRUCell`` (vmapped over
    the batch; ``kwargs`` go to the constructor)."""
    cell = _cell_of_class(cls, {"LSTM": "lstm", "GRU": "gru"}, "equinox")
    fields = ("weight_ih", "weight_hh", "bias") + (("bias_n",) if cell == "gru" else ())

    def make(D, H):
        import equinox as eqx
        import jax

        template = cls(D, H, use_bias=True, key=jax.random.PRNGKey(0), **kwargs)

        def step(p, x, s):
            m = eqx.tree_at(lambda m: [getattr(m, f) for f in fields], template, [p[f] for f in fields])
            s = jax.vmap(m)(x, s)
            return (s[0] if cell == "lstm" else s), s
        return step

    return JaxCell(make=make, cell=cell, params="equinox", name=f"equinox {cls.__name__}")


def haiku_cell(cls, **kwargs):
    """A :class:`JaxCell` from ``haiku.LSTM`` or ``haiku.VanillaRNN`` (relu), transformed here;
    ``kwargs`` go to the constructor with ``hidden_size=H``. ``haiku.GRU`` is refused (another
    convention, see the module docstring)."""
    if "GRU" in getattr(cls, "__name__", ""):
        raise TargetError("haiku_cell(hk.GRU): haiku's GRU applies the reset gate before the matmul (the 2014 "
                          "paper's convention); torch's GRU and the reference put it after, so they cannot judge it")
    cell = _cell_of_class(cls, {"LSTM": "lstm", "VanillaRNN": "rnn"}, "haiku")

    def make(D, H):
        import haiku as hk

        f = hk.without_apply_rng(hk.transform(lambda x, s: cls(H, **kwargs)(x, s)))

        def step(p, x, s):
            if cell == "lstm":
                y, new = f.apply(p, x, hk.LSTMState(hidden=s[0], cell=s[1]))
                return y, (new.hidden, new.cell)
            return f.apply(p, x, s)
        return step

    mapping = partial(haiku_params, cell, name=kwargs.get("name"), double_bias=kwargs.get("double_bias", True))
    return JaxCell(make=make, cell=cell, params=mapping, nonlinearity="relu" if cell == "rnn" else "tanh",
                   name=f"haiku {cls.__name__}")
