"""A user's own recipe: objects named by class path, modules beside the recipe, and what each kind of
mistake in them gives (one line naming the file and the fix, exit 2, nothing written)."""

import csv
import os
import subprocess
import sys

import pytest
import torch

from harness.cli import main
from harness.registry import load_experiment
from harness.training import make_scheduler

from .conftest import ROOT

DATA = '''import torch


def load(seed=0, n=64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] > 0).long()
    return {"train": (x, y), "test": (x[:16], y[:16])}
'''

NET = '''from torch import nn


class Net(nn.Module):
    def __init__(self, width=8, outputs=2):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, outputs))

    def forward(self, x):
        return self.body(x)
'''

RECIPE = '''id = "mine"
title = "t"
source = "s"
seeds = 2

[data]
dataset = "data:load"

[model]
class_path = "net:Net"
init_args = { width = 8 }

[loss]
class_path = "CrossEntropyLoss"

[optimizer]
class_path = "SGD"
init_args = { lr = 0.1 }

[training]
batch_size = 16
epochs = 2

[smoke]
min = 0.5
'''


def user_registry(tmp_path, recipe=RECIPE, net=NET, data=DATA):
    directory = tmp_path / "mine"
    directory.mkdir(parents=True)
    (directory / "mine.toml").write_text(recipe)
    (directory / "net.py").write_text(net)
    (directory / "data.py").write_text(data)
    return directory


def harness(capsys, *args):
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def test_a_recipe_with_its_own_modules_runs_on_every_engine_and_records_its_code(tmp_path, capsys):
    directory = user_registry(tmp_path)
    results = tmp_path / "res"
    for engine in ("reference", "fast", "multiseed"):
        status, out, err = harness(capsys, "run", "mine", "--experiments-dir", directory, "--results-dir", results, "--engine", engine)
        assert status == 0, err
    rows = list(csv.DictReader(open(results / "runs.csv")))
    assert len(rows) == 6 and {r["status"] for r in rows} == {"ok"}
    digests = {r["code_sha256"] for r in rows}
    assert len(digests) == 1 and len(digests.pop()) == 64
    by = {(r["engine"], r["seed"]): r for r in rows}
    for seed in ("0", "1"):  # reference and fast: the same final weights, bit for bit
        assert by[("reference", seed)]["weights_sha256"] == by[("fast", seed)]["weights_sha256"] != ""
    # Editing the user's code is a new recipe: its rows are no longer the current ones.
    before = load_experiment(directory / "mine.toml").config_hash()
    (directory / "net.py").write_text(NET.replace("nn.ReLU()", "nn.Tanh()"))
    assert load_experiment(directory / "mine.toml").config_hash() != before


def test_two_registry_directories_with_a_module_of_the_same_name_do_not_collide(tmp_path, capsys):
    first = user_registry(tmp_path / "a")
    second = user_registry(tmp_path / "b", net=NET.replace("outputs=2", "outputs=3"))
    a, b = load_experiment(first / "mine.toml"), load_experiment(second / "mine.toml")
    from harness.models import build_model

    assert build_model(a).body[-1].out_features == 2 and build_model(b).body[-1].out_features == 3


BAD = {
    "missing module": (("class_path = \"net:Net\"", "class_path = \"nett:Net\""),
                       "'model.class_path': module 'nett' is not beside the recipe (no {dir}/nett.py) and outside the namespaces a model comes from"),
    "missing attribute": (("class_path = \"net:Net\"", "class_path = \"net:Nett\""),
                          "'model.class_path': module 'net' has no class or function 'Nett' (did you mean 'Net'?)"),
    "unknown argument": (("init_args = { width = 8 }", "init_args = { widht = 8 }"),
                         "'model.init_args.widht' is not an argument of net:Net (did you mean 'width'?); allowed: width, outputs"),
    "outside the namespaces": (("class_path = \"net:Net\"", "class_path = \"shutil:rmtree\""),
                               "module 'shutil' is not beside the recipe (no {dir}/shutil.py) and outside the namespaces a model comes from"),
    "unknown dataset argument": (('dataset = "data:load"', 'dataset = "data:load"\ninit_args = { count = 64 }'),
                                 "'data.init_args.count' is not an argument of data:load; allowed: n"),
    "the seed given twice": (('dataset = "data:load"', 'dataset = "data:load"\ninit_args = { seed = 1 }'),
                             "'data.init_args.seed': the harness passes 'seed' itself; remove it"),
    "a dataset's missing function": (('dataset = "data:load"', 'dataset = "data:lod"'),
                                      "'data.dataset': module 'data' has no class or function 'lod' (did you mean 'load'?)"),
    "a seed to a dataset that takes none": (('dataset = "data:load"', 'dataset = "data:fixed"\ninit_args = { seed = 1 }'),
                                            "'data.init_args.seed' is not an argument of data:fixed; allowed: n"),
    "wrong output shape": (("init_args = { width = 8 }", "init_args = { width = 8, outputs = 1 }"),
                           "[model] net:Net gives 1 outputs per sample, but data:load has 2 classes"),
    "a regression's outputs unlike its targets": ((('dataset = "data:load"', 'dataset = "data:load"\ntargets = "values"'),
                                                   ("min = 0.5", "max = 10.0")),
                                                  "[model] net:Net gives (16, 2) for targets of shape (16,); a regression's outputs must have"),
    "a regression scored by accuracy": (('dataset = "data:load"', 'dataset = "data:load"\ntargets = "values"'),
                                        "'smoke.metric' is 'test_loss' (better lower): give 'smoke.max'"),
    # What only a training step shows: settings that overflow or blow up.
    "a weight decay that overflows": (("init_args = { lr = 0.1 }", "init_args = { lr = 0.1, weight_decay = 1e300 }"),
                                      "[optimizer] torch.optim:SGD {{'lr': 0.1, 'weight_decay': 1e+300}} cannot take a training step"),
    "a step to infinity": (("init_args = { lr = 0.1 }", "init_args = { lr = 10.0, weight_decay = 1e38 }"),
                           "makes the weights infinite or NaN; check its init_args"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_each_bad_recipe_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, case):
    replacements, expect = BAD[case]
    text = RECIPE
    for old, new in replacements if isinstance(replacements[0], tuple) else (replacements,):
        assert old in text
        text = text.replace(old, new)
    directory = user_registry(tmp_path, recipe=text, data=DATA + "\n\ndef fixed(n=64):\n    return load(0, n)\n")
    results = tmp_path / "res"
    for command in (["validate"], ["run", "--results-dir", results]):
        status, out, err = harness(capsys, *command, "--experiments-dir", directory)
        assert status == 2 and out == "" and err.count("\n") == 1, err
        assert str(directory / "mine.toml") in err and expect.format(dir=directory) in err, err
    assert not results.exists()


def test_a_recipe_records_its_own_code_whichever_object_names_it(tmp_path):
    """The model alone from the recipe's directory (the dataset a built-in one) makes that code part of the
    recipe; a recipe of built-in objects only records none."""
    from harness import objects

    text = RECIPE.replace('dataset = "data:load"', 'dataset = "iris"').replace("{ width = 8 }", "{ width = 8, outputs = 3 }")
    directory = user_registry(tmp_path, recipe=text)
    exp = load_experiment(directory / "mine.toml")
    assert exp.code_sha256 and exp.code_sha256 == objects.code_digest(directory)
    (directory / "plain.toml").write_text(text.replace('id = "mine"', 'id = "plain"').replace('"net:Net"', '"harness.models:mlp"')
                                          .replace("{ width = 8, outputs = 3 }", "{ sizes = [4, 8, 3] }"))
    assert load_experiment(directory / "plain.toml").code_sha256 == ""
    # The model the user's, the dataset a torchvision class named by its path: still the user's code.
    (directory / "fake.toml").write_text(text.replace('id = "mine"', 'id = "fake"')
                                         .replace('dataset = "iris"', 'dataset = "torchvision.datasets:FakeData"'))
    assert load_experiment(directory / "fake.toml").code_sha256 == exp.code_sha256


USER_ERRORS = {
    # a dataset callable that raises
    "dataset": ({"data": DATA.replace('    g = torch', '    raise FileNotFoundError("digits.csv is missing")\n    g = torch')},
                "data.py:5: FileNotFoundError: digits.csv is missing"),
    # a module that fails as it is imported
    "import": ({"net": "import torch\n\nraise ImportError('needs torchaudio')\n" + NET}, "net.py:3: ImportError: needs torchaudio"),
    # a model whose forward pass fails
    "forward": ({"net": NET.replace("return self.body(x)", "return self.body(x.reshape(-1, 3))")},
                "net.py:10: RuntimeError: shape '[-1, 3]' is invalid"),
    # a model whose constructor fails
    "constructor": ({"net": NET.replace("super().__init__()", "super().__init__()\n        assert width > 8, 'width must exceed 8'")},
                    "net.py:7: AssertionError: width must exceed 8"),
}


@pytest.mark.parametrize("case", list(USER_ERRORS))
def test_an_error_in_the_users_code_names_the_users_file_and_line(tmp_path, capsys, case):
    files, expect = USER_ERRORS[case]
    directory = user_registry(tmp_path, **files)
    results = tmp_path / "res"
    status, out, err = harness(capsys, "run", "--experiments-dir", directory, "--results-dir", results)
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"harness: error: {directory}/") and expect in err, err
    assert not results.exists()


def test_multiseed_refuses_a_model_it_cannot_batch_before_training(tmp_path, capsys):
    branching = NET.replace("return self.body(x)", "return self.body(x) if x.mean() > 0 else -self.body(x)")  # data-dependent
    directory = user_registry(tmp_path, net=branching)
    results = tmp_path / "res"
    status, out, err = harness(capsys, "run", "--experiments-dir", directory, "--results-dir", results, "--engine", "multiseed")
    assert status == 2 and err.count("\n") == 1
    assert "mine: the multiseed engine cannot batch net:Net with torch.func.vmap" in err and "use --engine fast or reference" in err
    assert not results.exists()
    assert harness(capsys, "run", "--experiments-dir", directory, "--results-dir", results, "--engine", "fast")[0] == 0


def test_multiseed_refuses_an_optimiser_that_mixes_elements(tmp_path, capsys):
    directory = user_registry(tmp_path, recipe=RECIPE.replace('class_path = "SGD"', 'class_path = "Adafactor"'))
    status, _, err = harness(capsys, "validate", "--experiments-dir", directory, "--engine", "multiseed")
    assert status == 2 and "element-wise optimiser (torch.optim:Adafactor is not known to be one)" in err


@pytest.mark.parametrize("interval,steps", [("epoch", 2), ("step", 8)])
def test_a_scheduler_steps_per_epoch_or_per_step(tmp_path, monkeypatch, interval, steps):
    """StepLR(step_size=1, gamma=0.5) over 2 epochs of 4 batches: stepped 2 times per epoch, 8 per step."""
    import harness.training as training
    from harness.engines import ENGINES
    from harness.options import RunOptions

    text = RECIPE.replace("[training]", "[scheduler]\nclass_path = \"StepLR\"\ninit_args = { step_size = 1, gamma = 0.5 }\n"
                                        f"interval = \"{interval}\"\n[training]")
    exp = load_experiment(user_registry(tmp_path, recipe=text) / "mine.toml")
    built = []

    def recording(experiment, optimizer):
        built.append(make_scheduler(experiment, optimizer))
        return built[-1]

    monkeypatch.setattr(training, "make_scheduler", recording)
    (outcome,) = ENGINES["reference"](exp, [0], torch.device("cpu"), RunOptions())
    assert outcome.status == "ok" and len(built) == 1
    assert built[0].last_epoch == steps and built[0].get_last_lr() == [pytest.approx(0.1 * 0.5**steps)]


def test_new_writes_a_recipe_that_runs_as_it_stands(tmp_path, capsys):
    directory = tmp_path / "reg"
    status, out, err = harness(capsys, "new", "my-recipe", "--experiments-dir", directory)
    assert status == 0, err
    assert (directory / "my-recipe.toml").is_file() and (directory / "my_recipe_model.py").is_file()
    assert harness(capsys, "validate", "--experiments-dir", directory)[0] == 0
    status, out, err = harness(capsys, "run", "--experiments-dir", directory, "--results-dir", tmp_path / "res", "--seeds", "0")
    assert status == 0, err
    status, _, err = harness(capsys, "new", "my-recipe", "--experiments-dir", directory)
    assert status == 2 and "already exists" in err and err.count("\n") == 1


@pytest.mark.parametrize("engine", ["reference", "fast"])
def test_pytorch_examples_mnist_recipe_ends_with_the_scripts_weights(tmp_path, data_dir, mnist, engine):
    """`harness run pytorch-mnist --seeds 1 --epochs 2 --train-limit 2560 --save-weights` (one thread) ends with
    the weights pytorch/examples' main.py ends with for --seed 1 --epochs 2 on its first 2,560 training samples,
    tensor by tensor, and the same test correct count after each epoch."""
    from .tutorials.pytorch_examples_mnist import main as script

    torch_threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            figures, net = script(1, epochs=2, root=str(data_dir), train_limit=2560)
    finally:
        torch.set_num_threads(torch_threads)
        torch.use_deterministic_algorithms(deterministic)
    results = tmp_path / "R"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "pytorch-mnist", "--experiments-dir", "examples/pytorch-mnist",
                           "--seeds", "1", "--epochs", "2", "--train-limit", "2560", "--save-weights", "--results-dir", str(results),
                           "--engine", engine, "--data-dir", str(data_dir)], cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    (run,) = csv.DictReader(open(results / "runs.csv"))
    assert run["threads"] == "1"
    weights = torch.load(results / "weights" / f"{run['run_id']}.pt", weights_only=True)
    theirs = net.state_dict()
    assert list(weights) == list(theirs)
    for name, value in theirs.items():
        assert torch.equal(weights[name], value), name
    epochs = list(csv.DictReader(open(results / "epochs.csv")))
    assert [round(float(e["test_acc"]) * 10000) for e in epochs] == [figures[1]["test_correct"], figures[2]["test_correct"]]
    assert [f"{float(e['test_loss']):.4f}" for e in epochs] == [figures[1]["test_loss"], figures[2]["test_loss"]]


def test_a_torchvision_dataset_class_gives_what_the_named_dataset_gives(tmp_path, capsys, mnist):
    """`dataset = "MNIST"` (torchvision's class, over a data directory already holding its files: no network)
    trains the very numbers `dataset = "mnist"` does."""
    text = (ROOT / "experiments" / "mnist-mlp.toml").read_text().split("[fashion_thresholds]")[0]  # a named dataset's
    directory = tmp_path / "reg"
    directory.mkdir()
    (directory / "by-name.toml").write_text(text.replace('id = "mnist-mlp"', 'id = "by-name"'))
    (directory / "by-class.toml").write_text(text.replace('id = "mnist-mlp"', 'id = "by-class"').replace('dataset = "mnist"', 'dataset = "MNIST"'))
    results = tmp_path / "res"
    for engine in ("reference", "fast"):
        status, _, err = harness(capsys, "run", "by-name", "by-class", "--experiments-dir", directory, "--results-dir", results,
                                 "--seeds", "0", "--epochs", "1", "--train-limit", "500", "--eval-limit", "200", "--engine", engine,
                                 "--data-dir", mnist)
        assert status == 0, err
    rows = list(csv.DictReader(open(results / "runs.csv")))
    assert len({r["weights_sha256"] for r in rows}) == 1 and len({r["test_loss"] for r in rows}) == 1
    assert load_experiment(directory / "by-class.toml").dataset == "torchvision.datasets:MNIST"
