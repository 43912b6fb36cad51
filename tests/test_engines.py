"""What the engines share beyond each recipe's own test (test_each_recipe.py): an evaluation limit that
shortens evaluation alone, and on CUDA, `fast`'s replayed graphs against `reference`'s eager steps."""

import pytest
import torch

from harness.engines import ENGINES
from harness.options import RunOptions

from .test_each_recipe import quick_options


def without_timings(rows):
    return [{k: v for k, v in r.items() if not k.endswith(("time_s", "per_s"))} for r in rows]


def run(engine, exp, options, device="cpu", seed=0):
    (outcome,) = ENGINES[engine](exp, [seed], torch.device(device), options)
    assert outcome.status == "ok", outcome.message
    return outcome


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
