"""The four pytorch/examples scripts, as published, run through script mode (examples/*/script/): each file
is byte for byte upstream's, and each run's recorded figures are those the harness's own recipe of it
gives at the same seed, to the decimals the script prints (the time sequence's, which prints every digit,
exactly). What the scripts need and do not take is the recipe's to give: the seed of one that takes none
(`seed_globals`), the one outcome of one that seeds itself (`own_seed`), the stop of one that stops itself
(`stop_metric`), a torch setting (`env`)."""

import csv
import hashlib
import os
import shutil
import subprocess
import sys

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.slow

# Each script's git blob id at pytorch/examples commit 77f55b912142e11fcfdf5b530231fb9c52f181e8.
UPSTREAM = {
    "pytorch-regression/script/main.py": "cb41ad70eca2387eff4535a85f791b10726c2d25",
    "pytorch-mnist-rnn/script/main.py": "550bd4948ff869a7815a1f1fac57c01a3591a3e8",
    "pytorch-vae/script/main.py": "63909658102e8f7e0ab7f2ee12d229841cc45e02",
    "pytorch-time-sequence/script/train.py": "2ccc85dc5a8f340c632bfa307e7b049d9fc2286e",
    "pytorch-time-sequence/script/generate_sine_wave.py": "2b6cdf0f46986ea6207bb04b3d7b6ba6e1bea403",
}


@pytest.mark.parametrize("path", UPSTREAM)
def test_each_script_is_upstreams_byte_for_byte(path):
    content = (ROOT / "examples" / path).read_bytes()
    assert hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest() == UPSTREAM[path]


def _start(recipe_dir, exp_id, results, *arguments):
    """`harness run`, started: the script's run and the recipe's go side by side, a core each."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "harness", "run", exp_id, "--experiments-dir", str(recipe_dir),
                             "--results-dir", str(results), *map(str, arguments)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _rows(*processes):
    """Each finished `harness run`'s runs and epochs, by seed."""
    found = []
    for process, results in processes:
        out, err = process.communicate()
        assert process.returncode == 0, err
        runs = {int(r["seed"]): r for r in csv.DictReader(open(results / "runs.csv"))}
        epochs = list(csv.DictReader(open(results / "epochs.csv")))
        found.append((runs, epochs))
    return found


def _checkout(tmp_path, example, data_dir=None):
    """The script's folder as a pytorch/examples checkout holds it, MNIST in its ../data."""
    folder = tmp_path / "checkout" / example
    shutil.copytree(ROOT / "examples" / example / "script", folder)
    if data_dir is not None:
        (tmp_path / "checkout" / "data").symlink_to(data_dir)
    return folder


def test_regression_script_takes_the_seed_the_harness_gives_its_generators(tmp_path):
    """regression/main.py sets no seed: seeded by the harness (`seed_globals`), it stops after the batch the
    recipe pytorch-regression stops after, seed by seed, at its loss to the 6 decimals it prints."""
    script = _start(_checkout(tmp_path, "pytorch-regression"), "pytorch-regression-script", tmp_path / "S", "--seeds", "0-2")
    recipe = _start(ROOT / "examples" / "pytorch-regression", "pytorch-regression", tmp_path / "R", "--seeds", "0-2")
    (scripted, _), (recipes, _) = _rows((script, tmp_path / "S"), (recipe, tmp_path / "R"))
    assert sorted(scripted) == [0, 1, 2]
    for seed, run in scripted.items():
        ours = recipes[seed]
        assert run["status"] == "ok" and run["epochs"] == ours["epochs"] and int(run["epochs"]) < 10000, (run, ours)
        assert float(run["train_loss"]) == round(float(ours["train_loss"]), 6)
        assert run["message"] == f"stopped after epoch {run['epochs']}: train_loss {float(run['train_loss'])!r} passed 0.001"
    assert len({r["epochs"] for r in scripted.values()}) == 3  # each seed its own draw


def test_mnist_rnn_script_prints_what_the_recipe_records(tmp_path, data_dir, mnist):
    """mnist_rnn/main.py --seed 1 --epochs 1 on the whole of MNIST: its test loss (4 decimals) and correct
    count are those of `harness run pytorch-mnist-rnn --seeds 1 --epochs 1`."""
    script = _start(_checkout(tmp_path, "pytorch-mnist-rnn", data_dir), "pytorch-mnist-rnn-script", tmp_path / "S", "--seeds", "1", "--epochs", "1")
    recipe = _start(ROOT / "examples" / "pytorch-mnist-rnn", "pytorch-mnist-rnn", tmp_path / "R", "--seeds", "1", "--epochs", "1",
                    "--data-dir", data_dir)
    (scripted, epochs), (recipes, _) = _rows((script, tmp_path / "S"), (recipe, tmp_path / "R"))
    run, ours = scripted[1], recipes[1]
    assert run["status"] == "ok" and [e["epoch"] for e in epochs] == ["1"]
    assert run["test_loss"] == f"{float(ours['test_loss']):.4f}"
    assert round(float(run["test_acc"]) * 10000) == round(float(ours["test_acc"]) * 10000) > 5000


def test_vae_script_prints_what_the_recipe_records(tmp_path, data_dir, mnist):
    """vae/main.py --seed 1 --epochs 2 --no-accel: each epoch's average training and test loss (4 decimals) are
    those of `harness run pytorch-vae --seeds 1 --epochs 2`; its images go to its own results/."""
    folder = _checkout(tmp_path, "pytorch-vae", data_dir)
    script = _start(folder, "pytorch-vae-script", tmp_path / "S", "--seeds", "1", "--epochs", "2")
    recipe = _start(ROOT / "examples" / "pytorch-vae", "pytorch-vae", tmp_path / "R", "--seeds", "1", "--epochs", "2", "--data-dir", data_dir)
    (scripted, epochs), (_, our_epochs) = _rows((script, tmp_path / "S"), (recipe, tmp_path / "R"))
    assert scripted[1]["status"] == "ok"
    for metric in ("train_loss", "test_loss"):
        assert [e[metric] for e in epochs] == [f"{float(e[metric]):.4f}" for e in our_epochs], metric
    assert (folder / "results" / "sample_2.png").is_file()


def test_time_sequence_script_seeds_itself_and_gives_the_recipes_test_loss_exactly(tmp_path):
    """time_sequence_prediction/train.py seeds itself with 0 (`own_seed`): its one run is seed 0's, and after its
    first LBFGS step on generate_sine_wave.py's waves the test loss it prints, every digit, is the recipe's.
    Other seeds are refused in one line; without the torch setting its recipe gives (`env`), torch refuses
    the NumPy array it loads, and the run is an error row saying so."""
    folder = _checkout(tmp_path, "pytorch-time-sequence")
    subprocess.run([sys.executable, "generate_sine_wave.py"], cwd=folder, check=True)
    refused = subprocess.run([sys.executable, "-m", "harness", "run", "pytorch-time-sequence-script", "--experiments-dir", folder,
                              "--seeds", "0-2", "--results-dir", tmp_path / "X"], cwd=ROOT, capture_output=True, text=True)
    assert refused.returncode == 2 and "seeds itself with 0" in refused.stderr and "--seeds 0" in refused.stderr
    assert not (tmp_path / "X" / "runs.csv").exists()

    script = _start(folder, "pytorch-time-sequence-script", tmp_path / "S", "--epochs", "1")
    recipe = _start(ROOT / "examples" / "pytorch-time-sequence", "pytorch-time-sequence", tmp_path / "R", "--seeds", "0", "--epochs", "1")
    (scripted, _), (recipes, _) = _rows((script, tmp_path / "S"), (recipe, tmp_path / "R"))
    assert list(scripted) == [0] and scripted[0]["status"] == "ok"
    assert float(scripted[0]["test_loss"]) == float(recipes[0]["test_loss"])
    assert (folder / "predict0.pdf").is_file()

    recipe_file = folder / "pytorch-time-sequence-script.toml"
    recipe_file.write_text(recipe_file.read_text().replace('env = { TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD = "1" }\n', ""))
    failed = subprocess.run([sys.executable, "-m", "harness", "run", "pytorch-time-sequence-script", "--experiments-dir", folder,
                             "--epochs", "1", "--results-dir", tmp_path / "F"], cwd=ROOT, capture_output=True, text=True)
    (row,) = csv.DictReader(open(tmp_path / "F" / "runs.csv"))
    assert failed.returncode == 1 and row["status"] == "error"
    assert "train.py ended with exit status 1" in row["message"] and "weights_only" in row["message"]
