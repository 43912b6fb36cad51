"""Same seed, device and engine: bit-identical numbers on the CPU; another seed: other numbers."""

import pytest
import torch

from harness.engines import ENGINES
from harness.options import RunOptions

CPU = torch.device("cpu")


def run_once(exp, seed, engine="reference", data_dir=None, **overrides):
    options = RunOptions(data_dir=str(data_dir) if data_dir else None, **overrides)
    (outcome,) = ENGINES[engine](exp, [seed], CPU, options)
    assert outcome.status == "ok", outcome.message
    return outcome


def metrics(outcome):
    return [{k: v for k, v in e.items() if not k.endswith(("time_s", "per_s"))} for e in outcome.epochs]


def test_iris_same_seed_bit_identical_other_seed_differs(registry):
    exp = registry["iris-ce"]
    a, b, c = (run_once(exp, s, epochs=300) for s in (3, 3, 4))
    assert metrics(a) == metrics(b)
    assert metrics(a) != metrics(c)


@pytest.mark.parametrize("exp_id", ["mnist-mlp", "mnist-cnn-dropout-50"])
def test_mnist_same_seed_bit_identical_other_seed_differs(registry, mnist, exp_id):
    exp = registry[exp_id]
    a, b, c = (run_once(exp, s, "fast", data_dir=mnist, epochs=1, train_limit=2000) for s in (0, 0, 1))
    assert metrics(a) == metrics(b)
    assert metrics(a) != metrics(c)
    assert a.trace == b.trace
