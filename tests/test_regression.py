"""Regressions: real-valued targets of any shape, their declared metrics (MSE, MAE, R²) in the rows, a summed
loss reported as a summing script reports it, float64, an optimiser stepped with a closure, and the recipe
rules that keep a regression's metrics and a classifier's apart."""

import csv
import math

import pytest
import torch

from .test_recipes import NET, RECIPE as BASE, harness, user_registry

DATA = '''import torch


def load(seed=0, n=96):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g, dtype=torch.float64)
    y = torch.stack([x[:, 0] - 2 * x[:, 1], x[:, 2] * x[:, 3]], dim=1) + 0.1 * torch.randn(n, 2, generator=g, dtype=torch.float64)
    return {"train": (x[:64], y[:64]), "test": (x[64:], y[64:])}
'''

# The user recipe of test_recipes as a regression: real targets, a mean squared error, its metrics declared.
RECIPE = (BASE.replace('dataset = "data:load"', 'dataset = "data:load"\ntargets = "values"')
          .replace('class_path = "CrossEntropyLoss"', 'class_path = "MSELoss"').replace("lr = 0.1", "lr = 0.05")
          .replace("epochs = 2", 'epochs = 3\nmetrics = ["mse", "mae", "r2"]').replace("min = 0.5", "max = 10.0"))


def _rows(results):
    with open(results / "runs.csv", newline="") as f:
        runs = list(csv.DictReader(f))
    with open(results / "epochs.csv", newline="") as f:
        return runs, list(csv.DictReader(f))


def _predictions(directory, run, dtype):
    """The saved final weights' outputs on the test split, and its targets."""
    import importlib.util

    def module(name):
        spec = importlib.util.spec_from_file_location(name, directory / f"{name}.py")
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
        return loaded

    net = module("net").Net(width=8).to(dtype)
    net.load_state_dict(torch.load(directory.parent / "res" / "weights" / f"{run['run_id']}.pt", weights_only=True))
    x, y = module("data").load(int(run["seed"]))["test"]
    with torch.no_grad():
        return net(x.to(dtype)).double().numpy(), y.numpy()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_regression_records_its_declared_metrics_as_scikit_learn_computes_them(tmp_path, capsys, dtype):
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    recipe = RECIPE.replace("metrics = [", f'dtype = "{dtype}"\nmetrics = [')
    directory = user_registry(tmp_path, recipe=recipe, net=NET, data=DATA)
    results = tmp_path / "res"
    status, out, err = harness(capsys, "run", "--experiments-dir", directory, "--results-dir", results, "--save-weights")
    assert status == 0, err
    assert "test_mse" in out and "test_acc" not in out  # the progress line names the regression's own metric
    runs, epochs = _rows(results)
    assert len(runs) == 2 and len(epochs) == 6
    for run in runs:
        assert run["status"] == "ok" and run["train_acc"] == run["test_acc"] == ""
        predicted, truth = _predictions(directory, run, getattr(torch, dtype))
        for column, expected in (("test_mse", mean_squared_error(truth.ravel(), predicted.ravel())),
                                 ("test_mae", mean_absolute_error(truth.ravel(), predicted.ravel())),
                                 ("test_r2", r2_score(truth.ravel(), predicted.ravel()))):
            assert math.isclose(float(run[column]), expected, rel_tol=1e-5 if dtype == "float32" else 1e-12), (column, run[column], expected)
        weights = torch.load(results / "weights" / f"{run['run_id']}.pt", weights_only=True)
        assert all(t.dtype == getattr(torch, dtype) for t in weights.values())
    check = harness(capsys, "check", "--experiments-dir", directory, "--results-dir", results)
    assert check[0] == 0, check


def test_a_regression_trains_the_same_numbers_on_every_engine(tmp_path, capsys):
    directory = user_registry(tmp_path, recipe=RECIPE, net=NET, data=DATA)
    digests = {}
    for engine in ("reference", "fast", "multiseed"):
        results = tmp_path / engine
        status, _, err = harness(capsys, "run", "--experiments-dir", directory, "--results-dir", results, "--engine", engine)
        assert status == 0, err
        runs, _ = _rows(results)
        digests[engine] = sorted((r["seed"], r["weights_sha256"], r["test_r2"]) for r in runs)
        assert all(r["test_r2"] not in ("", "nan") for r in runs)
    assert digests["reference"] == digests["fast"]
    # multiseed batches the seeds' models (other kernels): the same figures to rounding, not bit for bit
    for (_, _, a), (_, _, b) in zip(digests["reference"], digests["multiseed"]):
        assert math.isclose(float(a), float(b), rel_tol=1e-4)


def test_a_summed_loss_is_reported_as_the_sum_over_the_samples(tmp_path, capsys):
    """reduction = "sum": each split's loss is the sum of its batches' sums over its samples (a VAE script's
    `train_loss / len(train_loader.dataset)`): an MSE summed over each sample's 2 targets is twice the mean squared
    error over every target value, where a mean MSE is that error itself (and not 16 times either, as batch sums
    weighted by batch sizes would be)."""
    summed = RECIPE.replace('class_path = "MSELoss"', 'class_path = "MSELoss"\ninit_args = { reduction = "sum" }')
    for name, recipe, factor in (("mean", RECIPE, 1), ("sum", summed, 2)):
        directory = user_registry(tmp_path / name, recipe=recipe.replace("lr = 0.05", "lr = 0.001"), net=NET, data=DATA)
        status, _, err = harness(capsys, "run", "--experiments-dir", directory, "--results-dir", tmp_path / name / "res", "--seeds", "0")
        assert status == 0, err
        for row in _rows(tmp_path / name / "res")[1]:
            for split in ("train", "test"):
                assert math.isclose(float(row[f"{split}_loss"]), factor * float(row[f"{split}_mse"]), rel_tol=1e-5), (name, row)


def test_lbfgs_is_stepped_with_a_closure_on_every_engine_that_can(tmp_path, capsys):
    lbfgs = RECIPE.replace('class_path = "SGD"\ninit_args = { lr = 0.05 }', 'class_path = "LBFGS"\ninit_args = { lr = 0.5, max_iter = 4 }')
    directory = user_registry(tmp_path, recipe=lbfgs, net=NET, data=DATA)
    assert harness(capsys, "validate", "--experiments-dir", directory)[0] == 0
    digests = []
    for engine in ("reference", "fast"):
        status, _, err = harness(capsys, "run", "--experiments-dir", directory, "--results-dir", tmp_path / engine, "--engine", engine)
        assert status == 0, err
        runs, epochs = _rows(tmp_path / engine)
        digests.append(sorted((r["seed"], r["weights_sha256"]) for r in runs))
        losses = [float(e["train_loss"]) for e in epochs if e["run_id"] == runs[0]["run_id"]]
        assert losses[-1] < losses[0]  # it learns
    assert digests[0] == digests[1]
    status, _, err = harness(capsys, "run", "--experiments-dir", directory, "--results-dir", tmp_path / "m", "--engine", "multiseed")
    assert status == 2 and "element-wise optimiser" in err and err.count("\n") == 1


BAD = {
    "a regression's metric on a classifier": (('targets = "values"\n', ""), ("max = 10.0", "min = 0.5")),
    "an unknown metric": (("metrics = [\"mse\", \"mae\", \"r2\"]", "metrics = [\"rmse\"]"),),
    "a classifier's accuracy on a regression": (("[smoke]", "[thresholds]\ntest_acc = 0.9\n\n[smoke]"),),
    "a minimum for a metric better lower": (("max = 10.0", "min = 0.5"),),
    "a float64 of no such type": (("metrics = [", 'dtype = "float16"\nmetrics = ['),),
}
EXPECT = {
    "a regression's metric on a classifier": "'training.metrics' names 'mse', a regression's; set 'data.targets' = \"values\"",
    "an unknown metric": "'training.metrics' names 'rmse'; allowed: mse, mae, r2 (did you mean 'mse'?)",
    "a classifier's accuracy on a regression": "'thresholds.test_acc' is 'test_acc', which no run of this recipe records",
    "a minimum for a metric better lower": "'smoke.metric' is 'test_mse' (better lower): give 'smoke.max'",
    "a float64 of no such type": "'training.dtype' is 'float16'; allowed: float32, float64",
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_recipe_naming_a_metric_its_runs_do_not_record_is_one_line(tmp_path, capsys, case):
    text = RECIPE
    for old, new in BAD[case]:
        assert old in text
        text = text.replace(old, new)
    directory = user_registry(tmp_path, recipe=text, net=NET, data=DATA)
    status, out, err = harness(capsys, "validate", "--experiments-dir", directory)
    assert status == 2 and out == "" and err.count("\n") == 1, err
    assert EXPECT[case] in err, err


def test_float_labels_of_a_classifier_name_the_regression_setting(tmp_path, capsys):
    directory = user_registry(tmp_path, recipe=RECIPE.replace('targets = "values"\n', "").replace("max = 10.0", "min = 0.5")
                              .replace('metrics = ["mse", "mae", "r2"]\n', ""), net=NET, data=DATA)
    status, _, err = harness(capsys, "validate", "--experiments-dir", directory)
    assert status == 2 and "the labels of 'train' are torch.float64: class indices are integers; for real-valued targets" in err, err


POLY = '''import torch


def polynomial(batch=8):
    weights = torch.randn(2, 1)

    def draw():
        x = torch.randn(batch, 2)
        return x, x.mm(weights)

    return {"train": draw, "test": (torch.ones(4, 2), torch.ones(4, 1))}
'''
LINEAR = RECIPE.replace('dataset = "data:load"', 'dataset = "poly:polynomial"').replace(
    'class_path = "net:Net"\ninit_args = { width = 8 }', 'class_path = "Linear"\ninit_args = { in_features = 2, out_features = 1 }').replace(
    "batch_size = 16\nepochs = 3", "batches_per_epoch = 2\nepochs = 500\nstop_metric = \"train_loss\"\nstop_at = 0.01")


def test_fresh_batches_train_until_the_bound_and_stop_there(tmp_path, capsys):
    directory = user_registry(tmp_path, recipe=LINEAR, net=NET, data=DATA)
    (directory / "poly.py").write_text(POLY)
    results = tmp_path / "res"
    status, out, err = harness(capsys, "run", "--experiments-dir", directory, "--results-dir", results)
    assert status == 0, err
    runs, epochs = _rows(results)
    for run in runs:
        mine = [e for e in epochs if e["run_id"] == run["run_id"]]
        stopped = int(run["epochs"])
        assert 1 < stopped < 500 and int(mine[-1]["epoch"]) == stopped  # the stopping epoch is logged, and the last
        assert float(run["train_loss"]) < 0.01 and all(float(e["train_loss"]) >= 0.01 for e in mine[:-1])
        assert run["message"] == f"stopped after epoch {stopped}: train_loss {float(run['train_loss'])!r} passed 0.01"
        assert run["test_mse"] != ""  # the last epoch evaluated
        assert run["test_r2"] == "" and run["train_r2"] != ""  # R² of targets that do not vary (all ones) is undefined
    assert harness(capsys, "check", "--experiments-dir", directory, "--results-dir", results)[0] == 0
    status, _, err = harness(capsys, "run", "--experiments-dir", directory, "--results-dir", tmp_path / "m", "--engine", "multiseed")
    assert status == 2 and "drawn batch by batch" in err and err.count("\n") == 1


@pytest.mark.parametrize("old,new,expect", [
    ("batches_per_epoch = 2\n", "", "'training.batches_per_epoch' is missing: the dataset's training split is a function"),
    ("batches_per_epoch = 2\n", "batches_per_epoch = 2\nbatch_size = 4\n", "a training split drawn batch by batch has no samples"),
    ("stop_at = 0.01", "", "'training.stop_metric' and 'training.stop_at' go together"),
    ('stop_metric = "train_loss"', 'stop_metric = "test_mse"\nlog_every = 5', "is evaluated on logged epochs only"),
    ('stop_metric = "train_loss"', 'stop_metric = "train_acc"', "'training.stop_metric' is 'train_acc', which no run of this recipe records"),
])
def test_a_drawn_split_or_a_bound_it_cannot_keep_is_one_line(tmp_path, capsys, old, new, expect):
    assert old in LINEAR
    directory = user_registry(tmp_path, recipe=LINEAR.replace(old, new), net=NET, data=DATA)
    (directory / "poly.py").write_text(POLY)
    status, out, err = harness(capsys, "validate", "--experiments-dir", directory)
    assert status == 2 and out == "" and err.count("\n") == 1 and expect in err, err
