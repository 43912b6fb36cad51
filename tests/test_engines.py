"""Engines agree: `fast` is bit-identical to `reference` on the CPU for every registered experiment."""

import pytest
import torch

from harness.engines import ENGINES
from harness.options import RunOptions
from harness.registry import load_registry

from .conftest import ROOT

IDS = list(load_registry(ROOT / "experiments"))


def quick_options(exp, data_dir):
    """Short runs that still cover what matters: two epochs (the second draws its order after the
    first's evaluation) with a last partial batch (n % batch != 0), or, where the recipe traces the
    running loss, one epoch long enough for a trace row; evaluation on 200 samples per split."""
    if exp.data["dataset"] == "iris":
        return RunOptions(epochs=200)
    batch, trace_every = exp.training["batch_size"], exp.training["trace_every"]
    epochs, steps = (1, trace_every) if trace_every else (2, 100)
    return RunOptions(data_dir=str(data_dir), epochs=epochs, train_limit=steps * batch + batch // 2, eval_limit=200)


def without_timings(rows):
    return [{k: v for k, v in r.items() if not k.endswith(("time_s", "per_s"))} for r in rows]


def run(engine, exp, options, device="cpu", seed=0):
    (outcome,) = ENGINES[engine](exp, [seed], torch.device(device), options)
    assert outcome.status == "ok", outcome.message
    return outcome


@pytest.mark.parametrize("exp_id", IDS)
def test_fast_is_bit_identical_to_reference(registry, data_dir, request, exp_id):
    exp = registry[exp_id]
    if exp.data["dataset"] != "iris":
        request.getfixturevalue("mnist")
    options = quick_options(exp, data_dir)
    reference, fast = run("reference", exp, options), run("fast", exp, options)
    assert len(reference.epochs) == options.epochs // exp.training["log_every"]
    assert without_timings(fast.epochs) == without_timings(reference.epochs)
    assert fast.trace == reference.trace
    if exp.training["trace_every"]:
        assert fast.trace, "the run is long enough to trace"
    assert fast.state.keys() == reference.state.keys()
    for name, value in reference.state.items():
        assert torch.equal(fast.state[name], value), name


def test_eval_limit_is_an_override_and_shortens_evaluation(registry, mnist):
    exp = registry["mnist-mlp"]
    options = RunOptions(data_dir=str(mnist), epochs=1, train_limit=200, eval_limit=30)
    assert options.overrides == {"epochs": 1, "train_limit": 200, "eval_limit": 30}
    outcome = run("fast", exp, options)
    # 30 samples: every accuracy is a multiple of 1/30
    assert round(outcome.final["test_acc"] * 30, 6).is_integer()
    full = run("fast", exp, RunOptions(data_dir=str(mnist), epochs=1, train_limit=200))
    assert full.final["train_loss"] == outcome.final["train_loss"]  # training is untouched
    assert full.final["test_acc"] != outcome.final["test_acc"]


@pytest.mark.cuda
@pytest.mark.parametrize("exp_id", ["mnist-mlp", "mnist-cnn", "iris-ce"])
def test_cuda_graph_step_matches_eager_steps(registry, data_dir, request, exp_id):
    """`fast` on CUDA replays captured graphs; `reference` there steps eagerly through the same kernels."""
    exp = registry[exp_id]
    if exp.data["dataset"] != "iris":
        request.getfixturevalue("mnist")
    options = quick_options(exp, data_dir)
    reference, fast = run("reference", exp, options, "cuda"), run("fast", exp, options, "cuda")
    for ref_row, fast_row in zip(without_timings(reference.epochs), without_timings(fast.epochs)):
        assert fast_row == pytest.approx(ref_row, rel=1e-4, abs=1e-3)
    for name, value in reference.state.items():
        torch.testing.assert_close(fast.state[name], value, rtol=1e-4, atol=1e-5)
