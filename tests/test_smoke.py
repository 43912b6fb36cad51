"""A short run of every registered experiment, and of each dataset variant that declares one, meets the minimum
its registry entry declares for CI."""

import pytest
import torch

from harness.engines import ENGINES
from harness.options import RunOptions
from harness.registry import load_registry, select, variants

from .conftest import ROOT

REGISTRY = load_registry(ROOT / "experiments")
# Every registered experiment, and the dataset variants that declare a smoke run of their own.
IDS = list(REGISTRY) + [v.id for v in variants(REGISTRY).values() if v.smoke]


@pytest.mark.parametrize("exp_id", IDS)
def test_short_run_meets_its_threshold(registry, data_dir, request, exp_id):
    (exp,) = select(registry, [exp_id])
    if exp.data["dataset"] != "iris":
        request.getfixturevalue("mnist" if exp.data["dataset"] == "mnist" else "fashion_mnist")
    smoke = exp.smoke
    epochs = smoke["epochs"] if smoke["epochs"] != exp.training["epochs"] else None
    options = RunOptions(data_dir=str(data_dir), epochs=epochs, train_limit=smoke["train_limit"])
    (outcome,) = ENGINES["fast"](exp, [0], torch.device("cpu"), options)
    assert outcome.status == "ok", outcome.message
    value = outcome.final[smoke["metric"]]
    assert value >= smoke["min"], f"{exp_id}: {smoke['metric']} {value:.4f} < {smoke['min']}"
