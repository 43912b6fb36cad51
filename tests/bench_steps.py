"""Per-step timings with pytest-benchmark; not collected by `pytest` (run by `make bench`).

One training step (zero_grad, forward, loss, backward, SGD step) of each model at the recipes'
batch size on the CPU, on a fixed random batch: the floor under every engine's time per step.
"""

import pytest
import torch

from harness.registry import load_registry
from harness.training import eager_step, fresh_model, labels_for, make_loss, make_optimizer, standard_forward

from .conftest import ROOT

REGISTRY = load_registry(ROOT / "experiments")


@pytest.mark.parametrize("exp_id", ["mnist-mlp", "mnist-cnn", "mnist-cnn-dropout-50"])
def test_training_step(benchmark, exp_id):
    exp = REGISTRY[exp_id]
    training = exp.training
    model = fresh_model(exp, 0, torch.device("cpu"))
    step = eager_step(standard_forward(model, make_loss(exp)), make_optimizer(exp, model.parameters()))
    x = torch.randn(training["batch_size"], 1, 28, 28)
    y = labels_for(exp, torch.randint(0, 10, (training["batch_size"],)))
    outputs, loss = benchmark(step, x, y)
    assert torch.isfinite(loss)
