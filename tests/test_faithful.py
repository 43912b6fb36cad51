"""The tutorials' own code gives, bit for bit, what `reference` and `fast` give on the CPU: every figure
it prints at every epoch, and the final weights (tests/faithful.py; shortened here, full length in
`make faithful`)."""

import dataclasses
import subprocess
import sys

import pytest

from .conftest import ROOT
from .faithful import CASES, compare, experiment_of, first_difference


@pytest.mark.parametrize("exp_id", [pytest.param(i, marks=pytest.mark.slow) if experiment_of(i).data["dataset"] != "iris" else i
                                    for i in CASES])
def test_tutorial_code_gives_the_engines_figures_and_weights(data_dir, request, exp_id):
    experiment = experiment_of(exp_id)
    if experiment.data["dataset"] != "iris":
        request.getfixturevalue("mnist")
    options = dataclasses.replace(CASES[exp_id].short, data_dir=str(data_dir))
    result = compare(experiment, 0, options)
    assert result.differences == {"reference": None, "fast": None}
    assert any(result.tutorial.values()), "the tutorial printed figures"
    if experiment.data["dataset"] != "iris":
        assert result.epochs >= 3


def test_an_evaluation_the_tutorial_does_not_do_shows_as_a_difference(registry, mnist):
    """Testing after every epoch (which T1 #7 does not) draws from the RNG and shifts later shuffles:
    the comparison names where the harness then leaves the tutorial."""
    experiment = registry["mnist-mlp"]
    every_epoch = dataclasses.replace(experiment, training={**experiment.training, "tutorial_test": "every-epoch"})
    options = dataclasses.replace(CASES["mnist-mlp"].short, data_dir=str(mnist), epochs=2, train_limit=1000)
    result = compare(every_epoch, 0, options, engines=("reference",))
    assert result.differences["reference"].startswith(("epoch 2 ", "final weights"))


def test_first_difference_names_epoch_figure_and_both_values():
    tutorial = {1: {"loss": 0.5, "test_correct": 90}, 2: {"loss": 0.25, "test_correct": 95}}
    assert first_difference(tutorial, {1: dict(tutorial[1]), 2: dict(tutorial[2])}) is None
    harness = {1: dict(tutorial[1]), 2: {"loss": 0.25, "test_correct": 94}}
    assert first_difference(tutorial, harness) == "epoch 2 test_correct: tutorial 95, harness 94"
    # One ulp apart is a difference.
    harness = {1: {"loss": 0.5000000000000001, "test_correct": 90}, 2: dict(tutorial[2])}
    assert first_difference(tutorial, harness).startswith("epoch 1 loss:")


@pytest.mark.slow
def test_unknown_experiment_is_one_line_and_exit_2():
    done = subprocess.run([sys.executable, "-m", "tests.faithful", "mnist-mlp-mylinear"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "mnist-mlp-mylinear" in done.stderr and "choose from" in done.stderr
