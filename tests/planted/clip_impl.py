"""Drop-ins for torch.nn.utils.clip_grad_norm_ / clip_grad_value_ with bugs that live in one call
form only (issue 12 item 2): each is right for a list of float32/float64 gradients called
positionally, and wrong for a single Tensor, a generator, ``norm_type='inf'``, inf over several
gradients, ``foreach=True`` or 0-d tensors.

torch is imported when this module is: import it only after ``pytest.importorskip("torch")``.
"""

from __future__ import annotations

import math

import torch

__all__ = ["NORM_BUGS", "VALUE_BUGS", "clip_norm", "clip_value"]

#: bug -> the coverage phase that must catch it
NORM_BUGS = {
    "iterates_single_tensor": "a single Tensor",       # list(parameters) of a Tensor: its rows, no .grad
    "generator_twice": "a generator",                  # the norm pass exhausts it; nothing is clipped
    "str_inf_as_two": "norm_type='inf'",               # an unknown spelling falls back to p = 2
    "inf_sum_of_maxes": "norm_type=float('inf')",      # inf total = Σ per-tensor max instead of their max
    "foreach_first_dtype_only": "foreach=True",        # the foreach path scales the first dtype's grads only
    "zero_d_shape0": "0-d tensors",                    # grad.view(grad.shape[0], -1): IndexError on 0-d
}
VALUE_BUGS = {
    "iterates_single_tensor": "a single Tensor",
    "generator_twice": "a generator",
}


def _params(parameters, bug):
    if isinstance(parameters, torch.Tensor) and bug != "iterates_single_tensor":
        return [parameters]
    if bug == "generator_twice":
        return parameters
    return list(parameters)


def _norm(g, p, bug):
    if bug == "zero_d_shape0":
        g = g.view(g.shape[0], -1)
    return torch.linalg.vector_norm(g.double(), p)


def clip_norm(bug):
    def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
        params = _params(parameters, bug)
        if bug == "str_inf_as_two" and isinstance(norm_type, str):
            p = 2.0
        else:
            p = float(norm_type)
        grads = [q.grad for q in params if q.grad is not None]
        if not grads:
            return torch.tensor(0.0)
        norms = torch.stack([_norm(g, p, bug) for g in grads])
        total = norms.sum() if bug == "inf_sum_of_maxes" and math.isinf(p) else torch.linalg.vector_norm(norms, p)
        if error_if_nonfinite and not torch.isfinite(total):
            raise RuntimeError(f"the total norm of order {p} is non-finite")
        coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
        targets = grads if bug != "generator_twice" else [q.grad for q in params if q.grad is not None]
        if bug == "foreach_first_dtype_only" and foreach:
            targets = [g for g in targets if g.dtype == grads[0].dtype]
        for g in targets:
            g.mul_(coef.to(g.dtype))
        dtypes = {g.dtype for g in grads}
        return total.to(grads[0].dtype) if len(dtypes) == 1 else total
    clip_grad_norm_.__name__ = f"clip_grad_norm_[{bug}]"
    return clip_grad_norm_


def clip_value(bug):
    def clip_grad_value_(parameters, clip_value, foreach=None):
        params = _params(parameters, bug)
        if bug == "generator_twice":
            _ = [q for q in params]  # a first pass, e.g. to count them, exhausts a generator
        for q in params:
            if q.grad is not None:
                q.grad.clamp_(-clip_value, clip_value)
    clip_grad_value_.__name__ = f"clip_grad_value_[{bug}]"
    return clip_grad_value_
