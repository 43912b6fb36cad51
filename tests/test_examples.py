"""The examples that reproduce pytorch/examples scripts beyond classification, each against the script run as
written (tests/tutorials: seeded and shortened by marked lines only): the final weights tensor by tensor, and
every figure it prints after each epoch."""

import csv
import math
import os
import shutil
import subprocess
import sys

import pytest
import torch

from .conftest import ROOT

pytestmark = pytest.mark.slow


def _harness_run(recipe_dir, exp_id, results, *arguments):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "harness", "run", exp_id, "--experiments-dir", str(recipe_dir),
                           "--save-weights", "--results-dir", str(results), *arguments], cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    (run,) = csv.DictReader(open(results / "runs.csv"))
    assert run["status"] == "ok" and run["threads"] == "1", run
    weights = torch.load(results / "weights" / f"{run['run_id']}.pt", weights_only=True)
    return run, list(csv.DictReader(open(results / "epochs.csv"))), weights


def _one_thread(script, *args, **kwargs):
    threads = torch.get_num_threads()
    try:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            return script(*args, **kwargs)
    finally:
        torch.set_num_threads(threads)


def _assert_same_weights(weights: dict, model) -> None:
    """The harness's saved weights are the script's model's, tensor by tensor, names in the same order."""
    theirs = model.state_dict()
    assert list(weights) == list(theirs)
    for name, value in theirs.items():
        assert torch.equal(weights[name], value), name


@pytest.mark.parametrize("engine", ["reference", "fast"])
def test_pytorch_time_sequence_recipe_ends_with_the_scripts_weights(tmp_path, engine):
    """`harness run pytorch-time-sequence --seeds 0 --epochs 2` on waves of 200 steps (the recipe's one change:
    `data.init_args.length`) ends with the weights train.py ends with for --steps 2 on generate_sine_wave.py's
    waves of L = 200: a float64 model, LBFGS stepped with a closure, real-valued targets. Each epoch records
    the script's printed figures: the closure's first training loss and the test loss, each a one-batch mean
    as the harness takes any split's loss (the batch's mean times its samples, over the samples)."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    from .tutorials.pytorch_examples_time_sequence import generate_sine_wave, main as script

    data = generate_sine_wave(length=200)
    figures, seq = _one_thread(script, data, steps=2)
    recipe = tmp_path / "recipe"
    shutil.copytree(ROOT / "examples" / "pytorch-time-sequence", recipe, ignore=shutil.ignore_patterns("__pycache__"))
    toml = recipe / "pytorch-time-sequence.toml"
    text = toml.read_text()
    assert 'targets = "values"\n' in text
    toml.write_text(text.replace('targets = "values"\n', 'targets = "values"\ninit_args = { length = 200 }  # shortened\n'))
    run, epochs, weights = _harness_run(recipe, "pytorch-time-sequence", tmp_path / "R", "--seeds", "0", "--epochs", "2", "--engine", engine)

    _assert_same_weights(weights, seq)
    assert all(value.dtype == torch.float64 for value in weights.values())
    assert [int(e["epoch"]) for e in epochs] == [1, 2]
    train_n, test_n = 97, 3
    for row in epochs:
        printed = figures[int(row["epoch"])]
        assert len(printed["losses"]) > 1  # LBFGS evaluated its closure more than once in the step
        assert float(row["train_loss"]) == printed["losses"][0] * train_n / train_n
        assert float(row["test_loss"]) == printed["test_loss"] * test_n / test_n
        assert row["train_acc"] == row["test_acc"] == ""  # a regression has no accuracy
    # The declared metrics, against scikit-learn's over every value of the test waves (R² about their one mean).
    with torch.no_grad():
        predicted = seq(torch.from_numpy(data[:3, :-1])).numpy().ravel()
    truth = data[:3, 1:].ravel()
    last = epochs[-1]
    for column, expected in (("test_mse", mean_squared_error(truth, predicted)), ("test_mae", mean_absolute_error(truth, predicted)),
                             ("test_r2", r2_score(truth, predicted))):
        assert math.isclose(float(last[column]), expected, rel_tol=1e-12), (column, last[column], expected)
        assert float(run[column]) == float(last[column])


@pytest.mark.parametrize("engine", ["reference", "fast"])
def test_pytorch_mnist_rnn_recipe_ends_with_the_scripts_weights(tmp_path, data_dir, mnist, engine):
    """`harness run pytorch-mnist-rnn --seeds 1 --epochs 2 --train-limit 2560` ends with the weights mnist_rnn's
    main.py ends with for --seed 1 --epochs 2 on its first 2,560 training samples, tensor by tensor, and the
    same test correct count and printed test loss after each epoch. Its test loader shuffles: each pass draws
    from the global RNG, which moves the second epoch's training order, so the weights agree only where the
    evaluation draws as the script's does."""
    from .tutorials.pytorch_examples_mnist_rnn import main as script

    figures, net = _one_thread(script, 1, epochs=2, root=str(data_dir), train_limit=2560)
    run, epochs, weights = _harness_run(ROOT / "examples" / "pytorch-mnist-rnn", "pytorch-mnist-rnn", tmp_path / "R", "--seeds", "1",
                                        "--epochs", "2", "--train-limit", "2560", "--engine", engine, "--data-dir", str(data_dir))
    _assert_same_weights(weights, net)
    assert [round(float(e["test_acc"]) * 10000) for e in epochs] == [figures[1]["test_correct"], figures[2]["test_correct"]]
    assert [f"{float(e['test_loss']):.4f}" for e in epochs] == [figures[1]["test_loss"], figures[2]["test_loss"]]


def test_a_shuffling_evaluation_is_what_makes_the_mnist_rnn_weights_agree(tmp_path, data_dir, mnist):
    """The planted case: the same recipe with `eval_shuffle = false` trains the second epoch in another order, and
    ends with other weights than the script's (the test above can fail)."""
    from .tutorials.pytorch_examples_mnist_rnn import main as script

    recipe = tmp_path / "recipe"
    shutil.copytree(ROOT / "examples" / "pytorch-mnist-rnn", recipe, ignore=shutil.ignore_patterns("__pycache__"))
    toml = recipe / "pytorch-mnist-rnn.toml"
    toml.write_text(toml.read_text().replace("eval_shuffle = true", "eval_shuffle = false"))
    figures, net = _one_thread(script, 1, epochs=2, root=str(data_dir), train_limit=2560)
    _, epochs, weights = _harness_run(recipe, "pytorch-mnist-rnn", tmp_path / "R", "--seeds", "1", "--epochs", "2",
                                      "--train-limit", "2560", "--engine", "fast", "--data-dir", str(data_dir))
    assert round(float(epochs[0]["test_acc"]) * 10000) == figures[1]["test_correct"]  # the first epoch trains alike
    assert not all(torch.equal(weights[name], value) for name, value in net.state_dict().items())


@pytest.mark.parametrize("engine", ["reference", "fast"])
def test_pytorch_vae_recipe_ends_with_the_scripts_weights(tmp_path, data_dir, mnist, engine):
    """`harness run pytorch-vae --seeds 1 --epochs 2 --train-limit 2560` (steps of the recipe's own: a model that
    returns a tuple, a loss over the inputs summed over the batch, a draw after each epoch) ends with the weights
    vae/main.py ends with for --seed 1 --epochs 2 on its first 2,560 training samples, tensor by tensor, and
    records the average training and test loss it prints after each epoch, and the loss's two parts beside it."""
    from .tutorials.pytorch_examples_vae import main as script

    figures, net = _one_thread(script, 1, epochs=2, root=str(data_dir), train_limit=2560)
    run, epochs, weights = _harness_run(ROOT / "examples" / "pytorch-vae", "pytorch-vae", tmp_path / "R", "--seeds", "1",
                                        "--epochs", "2", "--train-limit", "2560", "--engine", engine, "--data-dir", str(data_dir))
    _assert_same_weights(weights, net)
    for row in epochs:
        printed = figures[int(row["epoch"])]
        assert f"{float(row['train_loss']):.4f}" == printed["train_loss"]
        assert f"{float(row['test_loss']):.4f}" == printed["test_loss"]
        for split in ("train", "test"):  # the loss's two parts, its own metrics, add up to it
            parts = float(row[f"{split}_bce"]) + float(row[f"{split}_kld"])
            assert math.isclose(parts, float(row[f"{split}_loss"]), rel_tol=1e-6) and float(row[f"{split}_kld"]) > 0
    assert run["test_loss"] == epochs[-1]["test_loss"] and run["test_acc"] == "" and run["test_kld"] == epochs[-1]["test_kld"]


def test_the_vae_weights_agree_only_with_the_draw_after_each_epoch(tmp_path, data_dir, mnist):
    """The planted case: without `steps.epoch_end` (the script's 64 codes drawn after each epoch) the second epoch
    shuffles from another point of the RNG, and the weights part from the script's."""
    from .tutorials.pytorch_examples_vae import main as script

    recipe = tmp_path / "recipe"
    shutil.copytree(ROOT / "examples" / "pytorch-vae", recipe, ignore=shutil.ignore_patterns("__pycache__"))
    toml = recipe / "pytorch-vae.toml"
    toml.write_text(toml.read_text().replace('epoch_end = "vae:sample"\n', ""))
    figures, net = _one_thread(script, 1, epochs=2, root=str(data_dir), train_limit=2560)
    _, epochs, weights = _harness_run(recipe, "pytorch-vae", tmp_path / "R", "--seeds", "1", "--epochs", "2", "--train-limit", "2560",
                                      "--data-dir", str(data_dir))
    assert f"{float(epochs[0]['train_loss']):.4f}" == figures[1]["train_loss"]  # the first epoch trains alike
    assert not all(torch.equal(weights[name], value) for name, value in net.state_dict().items())


@pytest.mark.parametrize("engine", ["reference", "fast"])
def test_pytorch_regression_recipe_stops_where_the_script_stops_with_its_weights(tmp_path, engine):
    """`harness run pytorch-regression --seeds 0-2` (the target function drawn before the model, a fresh batch
    every step, a stop once the loss is below 1e-3) ends each seed after the batch regression/main.py (seeded
    by a marked line) stops after, with its loss and its weights, tensor by tensor."""
    from .tutorials.pytorch_examples_regression import main as script

    results = tmp_path / "R"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "pytorch-regression", "--experiments-dir",
                           str(ROOT / "examples" / "pytorch-regression"), "--seeds", "0-2", "--engine", engine, "--save-weights",
                           "--results-dir", str(results)], cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    runs = list(csv.DictReader(open(results / "runs.csv")))
    assert len(runs) == 3
    for run in runs:
        figures, fc = _one_thread(script, int(run["seed"]))
        assert run["status"] == "ok" and int(run["epochs"]) == figures["batches"] < 10000
        assert float(run["train_loss"]) == figures["exact_loss"] and f"{float(run['train_loss']):.6f}" == figures["loss"]
        assert run["message"].startswith(f"stopped after epoch {figures['batches']}: train_loss")
        weights = torch.load(results / "weights" / f"{run['run_id']}.pt", weights_only=True)
        for name, value in fc.state_dict().items():
            assert torch.equal(weights[name], value), (run["seed"], name)
