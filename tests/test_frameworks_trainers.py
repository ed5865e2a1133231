"""The TBPTT trainer recipes of examples/tbptt_trainers.py, verified by the oracle's tbptt kind
(subsequence scheme), and the planted trainer bugs each recipe guards against: reading .grad
after a per-chunk zero_grad (only the last chunk's gradient: diagnosed as such), a real
optimizer (weights change: InputMutated), and no first-state wrapper (the first chunk starts
from zeros). The ignite recipe runs where pytorch-ignite is installed and skips otherwise."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import importlib.util  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

from bpttcheck.properties.oracle import target_checks  # noqa: E402
from bpttcheck.properties.oracle.api import run_one  # noqa: E402

# examples/ is loaded by path under its own name: a site-packages may hold an `examples` package
_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "tbptt_trainers.py")
_SPEC = importlib.util.spec_from_file_location("bpttcheck_example_trainers", _PATH)
recipes = importlib.util.module_from_spec(_SPEC)
sys.modules["bpttcheck_example_trainers"] = recipes
_SPEC.loader.exec_module(recipes)
FirstState, ManualTBPTT, RecordingOptimizer = recipes.FirstState, recipes.ManualTBPTT, recipes.RecordingOptimizer
fresh_leaves, recorded_gradients, cotangent_loss = recipes.fresh_leaves, recipes.recorded_gradients, recipes.cotangent_loss
MODULE = "bpttcheck_example_trainers"

pytestmark = pytest.mark.torch


def _subsequence(checks, cells=("rnn", "lstm", "gru")):
    return [c for c in checks if "/subsequence/" in c.check_id and any(f"/{cell}[" in c.check_id for cell in cells)]


def _run(checks):
    return {c.check_id: run_one(c, "dev") for c in checks}


def manual_last_chunk_only(module, x, hx, cotangent, k, scheme):
    """Planted: zero_grad(); backward() per chunk, as ignite does, and .grad read at the end."""
    x, hx = fresh_leaves(x, hx)
    h = hx
    for lo in range(0, x.shape[0], k):
        module.zero_grad()
        out, h = module(x[lo:lo + k], h)
        cotangent_loss(out, cotangent[lo:lo + k]).backward()
        h = tuple(s.detach() for s in h) if isinstance(h, tuple) else h.detach()
    got = {n: p.grad.clone() for n, p in module.named_parameters()}
    for key, t in zip(("input", "h0", "c0"), (x, *(hx if isinstance(hx, tuple) else (hx,)))):
        got[key] = t.grad
    return got


def manual_real_optimizer(module, x, hx, cotangent, k, scheme):
    """Planted: the manual loop with a real optimizer, parameters moving between chunks."""
    x, hx = fresh_leaves(x, hx)
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    ManualTBPTT(module, opt, k, first_state=hx).training_step((x, cotangent))
    return {n: torch.zeros_like(p) for n, p in module.named_parameters()} | {"input": x, "h0": x}


def test_manual_loop_equals_the_subsequence_scheme():
    results = _run(_subsequence(target_checks(f"{MODULE}:manual_tbptt", "tbptt", device="cpu")))
    assert len(results) == 3 and all(r.status == "pass" for r in results.values()), results


@pytest.mark.slow
def test_manual_loop_declines_other_schemes():
    checks = [c for c in target_checks(f"{MODULE}:manual_tbptt", "tbptt", device="cpu")
              if "/k/rnn[" in c.check_id]
    assert run_one(checks[0], "dev").status == "unsupported"


def test_last_chunk_only_is_diagnosed():
    (check,) = _subsequence(target_checks(manual_last_chunk_only, "tbptt", device="cpu"),
                            cells=("rnn",))
    r = run_one(check, "dev")
    assert r.status == "fail" and "only the last chunk's" in r.message, r.message
    assert "RecordingOptimizer" in r.message


@pytest.mark.slow
def test_real_optimizer_is_caught():
    (check,) = _subsequence(target_checks(manual_real_optimizer, "tbptt", device="cpu"),
                            cells=("gru",))
    r = run_one(check, "dev")
    assert r.status == "fail" and "InputMutated" in r.message, r.message


def test_recording_optimizer_holds_parameters_fixed():
    m = torch.nn.RNN(2, 3, dtype=torch.float64)
    before = [p.detach().clone() for p in m.parameters()]
    opt = RecordingOptimizer(m.named_parameters())
    for _ in range(2):
        opt.zero_grad()
        m(torch.ones(4, 1, 2, dtype=torch.float64))[0].sum().backward()
        opt.step()
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters()))
    assert all(torch.allclose(opt.recorded[n], 2 * p.grad) for n, p in m.named_parameters())


def test_first_state_feeds_the_state():
    m = torch.nn.GRU(1, 2, dtype=torch.float64)
    h = torch.ones(1, 1, 2, dtype=torch.float64)
    x = torch.zeros(1, 1, 1, dtype=torch.float64)
    assert torch.equal(FirstState(m, h)(x)[1], m(x, h)[1])


# ------------------------------------------------------------------ pytorch-ignite (optional)


def ignite_no_first_state(module, x, hx, cotangent, k, scheme):
    """Planted: ignite's trainer on the bare module (its first chunk starts from zeros)."""
    from ignite.contrib.engines import create_supervised_tbptt_trainer

    x, hx = fresh_leaves(x, hx)
    opt = RecordingOptimizer(module.named_parameters())
    create_supervised_tbptt_trainer(module, opt, cotangent_loss, tbtt_step=k, dim=0).run([(x, cotangent)], max_epochs=1)
    return recorded_gradients(opt, x, hx)


def test_ignite_trainer_equals_the_subsequence_scheme():
    pytest.importorskip("ignite")
    results = _run(_subsequence(target_checks(f"{MODULE}:ignite_tbptt", "tbptt", device="cpu")))
    assert len(results) == 3 and all(r.status == "pass" for r in results.values()), results


@pytest.mark.slow
def test_ignite_without_first_state_is_caught():
    pytest.importorskip("ignite")
    (check,) = _subsequence(target_checks(ignite_no_first_state, "tbptt", device="cpu"),
                            cells=("lstm",))
    r = run_one(check, "dev")
    assert r.status == "fail" and "GradientMismatch" in r.message, r.message
