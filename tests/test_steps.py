"""Steps of a recipe's own ([steps]): a training and an evaluation step, as functions beside the recipe or as
methods of the model, in place of the standard forward pass and [loss]; and the one-line refusals of steps
that cannot run."""

import csv

import pytest

from .test_recipes import DATA, RECIPE as BASE, harness, user_registry

NET = '''import torch
from torch import nn
from torch.nn import functional as F


class Net(nn.Module):
    """Returns a tuple, as models with a second output do."""

    def __init__(self, width=8):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, 2))

    def forward(self, x):
        logits = self.body(x)
        return logits, logits.pow(2).mean()

    def training_step(self, batch):
        x, y = batch
        logits, penalty = self(x)
        return F.cross_entropy(logits, y) + 0.01 * penalty

    def validation_step(self, batch):
        x, y = batch
        return F.cross_entropy(self(x)[0], y)
'''

STEPS = '''from shutil import rmtree  # noqa: F401 - imported, so not the recipe's to name
from torch.nn import functional as F


def training_step(model, batch):
    x, y = batch
    logits, penalty = model(x)
    return F.cross_entropy(logits, y, reduction="sum") + 0.01 * penalty


def no_number(model, batch):
    return model(batch[0])[0]


def broken(model, batch):
    raise ValueError("the batch has no images")
'''

# The user recipe of test_recipes with steps of its own in place of its loss.
RECIPE = (BASE.replace('[loss]\nclass_path = "CrossEntropyLoss"', '[steps]\ntraining = "training_step"\nevaluation = "validation_step"')
          .replace("epochs = 2", "epochs = 3").replace("min = 0.5", "max = 1.0"))


def registry(tmp_path, recipe=RECIPE):
    directory = user_registry(tmp_path, recipe=recipe, net=NET, data=DATA)
    (directory / "steps.py").write_text(STEPS)
    return directory


def rows(results):
    with open(results / "runs.csv", newline="") as f:
        runs = list(csv.DictReader(f))
    with open(results / "epochs.csv", newline="") as f:
        return runs, list(csv.DictReader(f))


@pytest.mark.parametrize("recipe", [RECIPE, RECIPE.replace('training = "training_step"\nevaluation = "validation_step"',
                                                           'training = "steps:training_step"\nreduction = "sum"')])
def test_steps_of_its_own_train_alike_on_reference_and_fast(tmp_path, capsys, recipe):
    directory = registry(tmp_path, recipe)
    assert harness(capsys, "validate", "--experiments-dir", directory)[0] == 0
    found = {}
    for engine in ("reference", "fast"):
        status, out, err = harness(capsys, "run", "--experiments-dir", directory, "--results-dir", tmp_path / engine, "--engine", engine)
        assert status == 0, err
        runs, epochs = rows(tmp_path / engine)
        assert all(r["status"] == "ok" and r["test_loss"] and r["test_acc"] == "" and r["code_sha256"] for r in runs)
        found[engine] = sorted((r["seed"], r["weights_sha256"], r["test_loss"]) for r in runs)
        losses = [float(e["train_loss"]) for e in epochs if e["run_id"] == runs[0]["run_id"]]
        assert len(losses) == 3 and losses[-1] < losses[0]
    assert found["reference"] == found["fast"]
    # multiseed maps the steps over the seeds' stacked weights (torch.func): the same figures to rounding
    assert harness(capsys, "validate", "--experiments-dir", directory, "--engine", "multiseed")[0] == 0
    status, _, err = harness(capsys, "run", "--experiments-dir", directory, "--results-dir", tmp_path / "m", "--engine", "multiseed")
    assert status == 0, err
    runs, _ = rows(tmp_path / "m")
    for (seed, _, loss), run in zip(found["fast"], sorted(runs, key=lambda r: r["seed"])):
        assert run["seed"] == seed and abs(float(run["test_loss"]) - float(loss)) <= 1e-5 * float(loss)
    # ... but not an epoch-end step, which runs on one model
    ended = recipe.replace("[steps]", '[steps]\nepoch_end = "steps:at_epoch_end"')
    directory = registry(tmp_path / "ended", ended)
    (directory / "steps.py").write_text(STEPS + "\n\ndef at_epoch_end(model):\n    pass\n")
    status, _, err = harness(capsys, "run", "--experiments-dir", directory, "--results-dir", tmp_path / "e", "--engine", "multiseed")
    assert status == 2 and "'steps.epoch_end' runs once an epoch on one model" in err and err.count("\n") == 1


BAD = {
    "a method the model lacks": (('training = "training_step"', 'training = "trainig_step"'),
                                 "'steps.training' is 'trainig_step', but [model] net:Net has no method 'trainig_step' (did you mean 'training_step'?)"),
    "a function imported from elsewhere": (('training = "training_step"', 'training = "steps:rmtree"'),
                                           "'steps.training' 'steps:rmtree' is shutil.rmtree, defined outside the recipe's own modules; allowed: a function"),
    "a module outside the recipe": (('training = "training_step"', 'training = "os:remove"'),
                                    "'steps.training': module 'os' is not beside the recipe"),
    "a private method": (('training = "training_step"', 'training = "_apply"'), "'steps.training' is '_apply': name a public method"),
    "a step that gives no number": (('training = "training_step"', 'training = "steps:no_number"'),
                                    "'steps.training' steps:no_number gives a tensor of shape (16, 2), not one number"),
    "a step that raises": (('training = "training_step"', 'training = "steps:broken"'), "steps.py:16: ValueError: the batch has no images"),
    "a loss beside the steps": (("[optimizer]", '[loss]\nclass_path = "CrossEntropyLoss"\n\n[optimizer]'),
                                "[loss] with [steps]: the training step computes the loss itself; remove [loss]"),
    "declared metrics beside the steps": (("epochs = 3", 'epochs = 3\nmetrics = ["mse"]'),
                                          "'training.metrics' with [steps]: a step of the recipe's own reports its loss only"),
    "neither steps nor a loss": (('[steps]\ntraining = "training_step"\nevaluation = "validation_step"\n', ""), "missing section [loss]"),
    "an accuracy it cannot record": (("max = 1.0", 'metric = "test_acc"\nmin = 0.5'),
                                     "'smoke.metric' is 'test_acc', which no run of this recipe records"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_step_that_cannot_run_is_one_line_before_anything_trains(tmp_path, capsys, case):
    (old, new), expect = BAD[case]
    assert old in RECIPE
    directory = registry(tmp_path, RECIPE.replace(old, new))
    results = tmp_path / "res"
    for command in (["validate"], ["run", "--results-dir", results]):
        status, out, err = harness(capsys, *command, "--experiments-dir", directory)
        assert status == 2 and out == "" and err.count("\n") == 1, err
        assert expect in err, err
    assert not results.exists()
