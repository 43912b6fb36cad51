"""Every registered recipe, one test each: it trains, reproduces itself bit for bit, parts from another seed,
and its short run reaches the minimum its registry file declares for CI. Recipes without the tutorial's own
code to compare with (tests/faithful.py) are also held to `fast` == `reference`, bit for bit; for the others
test_faithful.py shows both equal to the tutorial. Recipes on MNIST are `slow` (make test-fast leaves them out).
"""

import pytest
import torch

from harness.engines import ENGINES
from harness.options import RunOptions
from harness.registry import load_registry, select, variants

from .conftest import ROOT
from .faithful import CASES

REGISTRY = load_registry(ROOT / "experiments")
# Every registered experiment, and the dataset variants that declare a smoke run of their own.
IDS = list(REGISTRY) + [v.id for v in variants(REGISTRY).values() if v.smoke]
CPU = torch.device("cpu")


def recipe_param(exp_id: str):
    on_mnist = select(REGISTRY, [exp_id])[0].data["dataset"] != "iris"
    return pytest.param(exp_id, marks=pytest.mark.slow) if on_mnist else exp_id


def quick_options(exp, data_dir) -> RunOptions:
    """Short runs that still cover what matters: two epochs (the second draws its order after the first's
    evaluation) with a last partial batch (n % batch != 0), or, where the recipe traces the running loss,
    one epoch long enough for a trace row; evaluation on 200 samples per split."""
    if exp.data["dataset"] == "iris":
        return RunOptions(epochs=200)
    batch, trace_every = exp.training["batch_size"], exp.training["trace_every"]
    epochs, steps = (1, trace_every) if trace_every else (2, 100)
    return RunOptions(data_dir=str(data_dir), epochs=epochs, train_limit=steps * batch + batch // 2, eval_limit=200)


def run(engine, exp, options, seed=0):
    (outcome,) = ENGINES[engine](exp, [seed], CPU, options)
    assert outcome.status == "ok", outcome.message
    return outcome


def figures(outcome) -> tuple:
    """What a run computed: every epoch's figures (not its timings), its trace, its final weights."""
    epochs = [{k: v for k, v in e.items() if not k.endswith(("time_s", "per_s"))} for e in outcome.epochs]
    return epochs, outcome.trace, {name: t.clone() for name, t in outcome.state.items()}


def assert_same(a, b) -> None:
    assert a[0] == b[0] and a[1] == b[1]
    assert a[2].keys() == b[2].keys() and all(torch.equal(a[2][k], b[2][k]) for k in a[2]), "final weights differ"


@pytest.mark.parametrize("exp_id", [recipe_param(i) for i in IDS])
def test_recipe_trains_reproduces_itself_and_reaches_its_minimum(data_dir, request, exp_id):
    (exp,) = select(REGISTRY, [exp_id])
    if exp.data["dataset"] != "iris":
        request.getfixturevalue("mnist" if exp.data["dataset"] == "mnist" else "fashion_mnist")
    quick = quick_options(exp, data_dir)
    first, again, other = (figures(run("fast", exp, quick, seed)) for seed in (0, 0, 1))
    assert_same(first, again)
    assert first[0] != other[0], "another seed gives other numbers"
    assert len(first[0]) == quick.epochs // exp.training["log_every"]
    if exp.training["trace_every"]:
        assert first[1], "the run is long enough to trace"
    if exp_id not in CASES and not exp.variant_of:
        assert_same(figures(run("reference", exp, quick)), first)

    smoke = exp.smoke
    epochs = smoke["epochs"] if smoke["epochs"] != exp.training["epochs"] else None
    outcome = run("fast", exp, RunOptions(data_dir=str(data_dir), epochs=epochs, train_limit=smoke["train_limit"]))
    value = outcome.final[smoke["metric"]]
    assert value >= smoke["min"], f"{exp_id}: {smoke['metric']} {value:.4f} < {smoke['min']}"
