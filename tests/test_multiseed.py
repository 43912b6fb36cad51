"""The multiseed engine: S seeds trained together agree with S single-seed runs of `fast`."""

import statistics
from functools import partial

import pytest
import torch

from harness.engines import ENGINES, MULTI_SEED_ENGINES
from harness.engines.multiseed import vmap_fallback_is_an_error
from harness.options import RunOptions

SEEDS = [0, 1]
SLOW_OP = partial(torch.histc, bins=4)  # an op vmap has no batching rule for (torch 2.14)


def outcomes(engine, exp, seeds, options, device="cpu"):
    device = torch.device(device)
    if engine in MULTI_SEED_ENGINES:
        result = ENGINES[engine](exp, seeds, device, options)
    else:
        result = [o for s in seeds for o in ENGINES[engine](exp, [s], device, options)]
    assert all(o.status == "ok" for o in result), [o.message for o in result]
    return result


@pytest.mark.parametrize(("exp_id", "device"), [
    ("mnist-mlp", "cpu"), ("mnist-cnn-50", "cpu"), ("iris-mse", "cpu"),
    # On CUDA both engines replay CUDA graphs. Not the CNN there: cuDNN may convolve in TF32 (torch's
    # default for convolutions), whose rounding is coarser than this bound allows.
    pytest.param("mnist-mlp", "cuda", marks=pytest.mark.cuda), pytest.param("iris-mse", "cuda", marks=pytest.mark.cuda),
])
def test_each_seed_follows_its_single_seed_run(registry, data_dir, request, exp_id, device):
    """Same initial weights, split and shuffling order per seed, so after a few dozen steps (two epochs,
    the second ordered after the first's evaluation draws) the weights differ only by rounding: batched
    matrix products sum in another order, a few ulps per step that the steps carry forward. Each
    parameter tensor must agree to 1e-4 of its norm: another batch order or seed is off by percents."""
    exp = registry[exp_id]
    if exp.data["dataset"] == "iris":
        options = RunOptions(epochs=20)
    else:
        request.getfixturevalue("mnist")
        options = RunOptions(data_dir=str(data_dir), epochs=2, train_limit=20 * exp.training["batch_size"] + 5, eval_limit=100)
    together = outcomes("multiseed", exp, SEEDS, options, device)
    alone = outcomes("fast", exp, SEEDS, options, device)
    for seed, multi, single in zip(SEEDS, together, alone):
        assert multi.state.keys() == single.state.keys()
        for name, value in single.state.items():
            difference = float((multi.state[name] - value).norm() / value.norm())
            assert difference < 1e-4, f"seed {seed} {name}: relative difference {difference:.2e}"
        for m_row, s_row in zip(multi.epochs, single.epochs):
            assert m_row["epoch"] == s_row["epoch"]
            assert m_row["train_loss"] == pytest.approx(s_row["train_loss"], rel=1e-4)
    # and the seeds really differ from one another
    assert not torch.equal(together[0].state[name], together[1].state[name])


def test_dropout_seeds_have_the_same_accuracy_distribution(registry, mnist):
    """With dropout the masks differ from single-seed runs, so compare distributions: the means over
    seeds agree within a few standard errors."""
    exp = registry["mnist-cnn-dropout-50"]
    seeds = list(range(4))
    options = RunOptions(data_dir=str(mnist), epochs=1, train_limit=600, eval_limit=300)
    accs = {e: [o.final["test_acc"] for o in outcomes(e, exp, seeds, options)] for e in ("multiseed", "fast")}
    spread = max(statistics.stdev(accs["multiseed"]), statistics.stdev(accs["fast"]), 0.01)
    assert abs(statistics.mean(accs["multiseed"]) - statistics.mean(accs["fast"])) < 3 * spread
    assert len(set(accs["multiseed"])) > 1, "seeds must differ"


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
@pytest.mark.parametrize("exp_id", ["mnist-cnn-dropout-50", "iris-mse", "iris-ce"])
def test_no_op_falls_back_to_the_slow_vmap_loop(registry, data_dir, request, exp_id, device):
    """Linear, conv2d, max_pool2d, relu, sigmoid, softmax, dropout, cross-entropy, MSE (and backward)
    all have batching rules: the per-seed loop vmap falls back to would warn, here an error."""
    exp = registry[exp_id]
    if exp.data["dataset"] == "iris":
        options = RunOptions(epochs=2)
    else:
        request.getfixturevalue("mnist")
        options = RunOptions(data_dir=str(data_dir), epochs=1, train_limit=45, eval_limit=40)
    with vmap_fallback_is_an_error():
        first, second = outcomes("multiseed", exp, [0, 1], options, device)
    assert first.final != second.final, "both seeds trained, each its own way"


def test_a_vmap_fallback_is_caught():
    """The guard above can fail: an op without a batching rule raises inside it."""
    if getattr(torch._C._functorch, "_set_vmap_fallback_warning_enabled", None) is None:
        pytest.skip("this torch cannot report vmap fallbacks")
    with pytest.raises(UserWarning, match="performance drop"), vmap_fallback_is_an_error():
        torch.func.vmap(SLOW_OP)(torch.ones(2, 3))
