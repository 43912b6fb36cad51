"""Script mode ([script]): a plain training script, registered in a few lines of TOML and run unchanged once per
seed as a subprocess; its printed figures become rows that report, compare, check and plan read. Its failures
(an exit status, a timeout, figures missing) are error rows that run again, and a recipe that cannot work is
one line before anything runs."""

import csv
import math
import signal
import subprocess
import sys

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.slow  # each run starts processes of its own

SCRIPT = '''import argparse
import math
import os
import random
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--seed", type=int, default=int(os.environ.get("SEED", "0")))
parser.add_argument("--epochs", type=int, default=3)
args = parser.parse_args()
random.seed(args.seed)
accuracy = 0.5
for epoch in range(1, args.epochs + 1):
    accuracy = min(0.99, accuracy + random.uniform(0.05, 0.15))
    print(f"Epoch {epoch}: train loss {-1.1 * math.log(accuracy):.4f}")
    print(f"Test: loss {-math.log(accuracy):.4f}, accuracy {100 * accuracy:.2f}%")
    print(f"seed {args.seed}", file=sys.stderr)
'''

RECIPE = '''id = "toy"
title = "a plain training script, run as it is"
source = "me"
seeds = 10

[script]
path = "train.py"
args = ["--seed", "{seed}", "--epochs", "{epochs}"]
epochs = 3
metrics = ["test_acc", "test_loss", "train_loss"]
patterns = ['Epoch (?P<epoch>\\d+): train loss (?P<train_loss>[0-9.]+)', 'Test: loss (?P<test_loss>[0-9.]+), accuracy (?P<test_acc>[0-9.]+)%']
scale = { test_acc = 0.01 }
'''


def registry(tmp_path, recipe=RECIPE, script=SCRIPT, name="toy"):
    directory = tmp_path / "reg"
    directory.mkdir(exist_ok=True)
    (directory / f"{name}.toml").write_text(recipe)
    (directory / "train.py").write_text(script)
    return directory


def harness(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "harness", *map(str, args)], cwd=cwd, capture_output=True, text=True)


def rows(results):
    with open(results / "runs.csv", newline="") as f:
        runs = list(csv.DictReader(f))
    if not (results / "epochs.csv").exists():  # no run logged an epoch
        return runs, []
    with open(results / "epochs.csv", newline="") as f:
        return runs, list(csv.DictReader(f))


def printed(script_dir, seed, epochs=3):
    """What the script prints for a seed, run by hand."""
    out = subprocess.run([sys.executable, "train.py", "--seed", str(seed), "--epochs", str(epochs)], cwd=script_dir,
                         capture_output=True, text=True, check=True).stdout.splitlines()
    return [line.split("accuracy ")[1].rstrip("%") for line in out if line.startswith("Test")]


def test_a_plain_script_runs_ten_seeds_in_two_processes_and_reports(tmp_path):
    directory = registry(tmp_path)
    results = tmp_path / "R"
    run = harness("run", "--experiments-dir", directory, "--results-dir", results, "--jobs", "2")
    assert run.returncode == 0, run.stderr
    assert "running cells in 2 processes" in run.stdout and "done: 10/10 runs" in run.stdout
    runs, epochs = rows(results)
    assert sorted(int(r["seed"]) for r in runs) == list(range(10))
    for r in runs:
        assert r["status"] == "ok" and r["engine"] == "script" and r["epochs"] == "3" and r["code_sha256"]
        mine = [e for e in epochs if e["run_id"] == r["run_id"]]
        assert [e["epoch"] for e in mine] == ["1", "2", "3"]
        assert [f"{100 * float(e['test_acc']):.2f}" for e in mine] == printed(directory, int(r["seed"]))
        assert r["test_acc"] == mine[-1]["test_acc"] and r["train_samples_per_s"] == "" and r["weights_sha256"] == ""
    again = harness("run", "--experiments-dir", directory, "--results-dir", results)
    assert again.returncode == 0 and "skipping 10 finished run(s)" in again.stdout and "nothing to run" in again.stdout
    report = harness("report", "--experiments-dir", directory, "--results-dir", results)
    assert report.returncode == 0, report.stderr
    assert "| toy          | cpu      | script   | 10      | test_acc" in (results / "REPORT.md").read_text()
    assert harness("check", "--experiments-dir", directory, "--results-dir", results).returncode == 0
    compare = harness("compare", results, results, "--experiments-dir", directory)
    assert compare.returncode == 0 and "10 of 10 cells bit for bit" in compare.stdout
    plan = harness("plan", "toy", "--experiments-dir", directory, "--results-dir", results, "--engine", "script", "--delta", "0.05")
    assert plan.returncode == 0 and "test_acc" in plan.stdout, plan.stderr


def test_json_lines_a_seed_in_the_environment_and_epochs_from_the_command_line(tmp_path):
    script = SCRIPT.replace('print(f"Epoch {epoch}: train loss {-1.1 * math.log(accuracy):.4f}")',
                            'print(json.dumps({"epoch": epoch, "test_acc": accuracy, "lr": 0.1}))').replace("import math", "import json, math")
    recipe = (RECIPE.replace('args = ["--seed", "{seed}", "--epochs", "{epochs}"]', 'args = ["--epochs", "{epochs}"]\nseed_env = "SEED"')
              .replace('metrics = ["test_acc", "test_loss", "train_loss"]', 'metrics = ["test_acc"]')
              .split("patterns =")[0] + "json_lines = true\n")
    directory = registry(tmp_path, recipe, script)
    results = tmp_path / "R"
    # The registry named relative to the working directory, as a user in it names it.
    run = harness("run", "--experiments-dir", "reg", "--results-dir", "R", "--seeds", "4,5", "--epochs", "2", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    runs, epochs = rows(results)
    for r in runs:
        assert r["faithful"] == "false" and r["epochs"] == "2" and r["test_loss"] == ""
        mine = [e for e in epochs if e["run_id"] == r["run_id"]]
        assert [f"{100 * float(e['test_acc']):.2f}" for e in mine] == printed(directory, int(r["seed"]), epochs=2)


FAILURES = {
    "an exit status": ("sys.exit(3)", "train.py ended with exit status 3: seed 0 | seed 0"),
    "a crash": ("os.kill(os.getpid(), 9)", "train.py ended with signal SIGKILL: seed 0 | seed 0"),
    "figures cut short": ("break", "train.py reported figures up to epoch 2, not to 3 as asked"),
    "no figures": ("sys.exit(0)", "train.py printed no figures matching 'script.patterns'"),
    "a timeout": ("import time; time.sleep(600)", "stopped after its timeout of 3 s (script.timeout)"),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_a_script_that_fails_leaves_an_error_row_that_runs_again(tmp_path, case):
    statement, message = FAILURES[case]
    anchor = '    print(f"seed {args.seed}", file=sys.stderr)\n'
    if case == "no figures":
        script = SCRIPT.replace("accuracy = 0.5\n", "accuracy = 0.5\nsys.exit(0)\n")
    else:
        script = SCRIPT.replace(anchor, anchor + f"    if epoch == 2:\n        {statement}\n")
    directory = registry(tmp_path, RECIPE.replace("epochs = 3\n", "epochs = 3\ntimeout = 3\n"), script)
    results = tmp_path / "R"
    run = harness("run", "--experiments-dir", directory, "--results-dir", results, "--seeds", "0")
    assert run.returncode == 1, run.stdout + run.stderr
    (row,), _ = rows(results)
    assert row["status"] == "error" and row["message"] == message, row["message"]
    assert "1 run(s) failed" in run.stdout
    again = harness("run", "--experiments-dir", directory, "--results-dir", results, "--seeds", "0")
    assert again.returncode == 1 and "skipping" not in again.stdout  # an error row is no finished run


def test_the_scripts_code_is_part_of_its_config(tmp_path):
    directory = registry(tmp_path)
    results = tmp_path / "R"
    assert harness("run", "--experiments-dir", directory, "--results-dir", results, "--seeds", "0").returncode == 0
    (directory / "train.py").write_text(SCRIPT.replace("0.05, 0.15", "0.05, 0.16"))
    run = harness("run", "--experiments-dir", directory, "--results-dir", results, "--seeds", "0")
    assert run.returncode == 0 and "skipping" not in run.stdout  # the edited script's runs are new cells
    runs, _ = rows(results)
    assert len({r["config_hash"] for r in runs}) == 2 and len({r["code_sha256"] for r in runs}) == 2


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_ends_the_script_with_the_harness(tmp_path, jobs):
    """In the harness's own process (--jobs 1) or in a worker the harness stops (--jobs 2): the script goes too."""
    directory = registry(tmp_path, script=SCRIPT.replace("accuracy = 0.5\n", "accuracy = 0.5\nimport time; time.sleep(600)\n"))
    process = subprocess.Popen([sys.executable, "-m", "harness", "run", "--experiments-dir", str(directory), "--results-dir",
                                str(tmp_path / "R"), "--seeds", "0", "--jobs", jobs], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    import time

    deadline = time.monotonic() + 60
    while not _script_running(directory) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _script_running(directory)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    assert process.returncode != 0
    deadline = time.monotonic() + 10
    while _script_running(directory) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _script_running(directory)


def _script_running(directory) -> bool:
    found = subprocess.run(["pgrep", "-f", str(directory / "train.py")], capture_output=True, text=True)
    return bool(found.stdout.strip())


BAD = {
    "no seed": (('args = ["--seed", "{seed}", "--epochs", "{epochs}"]', 'args = ["--epochs", "{epochs}"]'),
                "[script] passes the script no seed: put {seed} in 'script.args'"),
    "an unknown placeholder": (('"{epochs}"]', '"{epoch}"]'), "holds {epoch}; the placeholders are {seed}, {epochs}, {device}"),
    "an unknown metric": (('"train_loss"]', '"train_los"]'), "'script.metrics' names 'train_los' (did you mean 'train_loss'?)"),
    "a broken pattern": (("(?P<epoch>\\d+)", "(?P<epoch>\\d+"), "'script.patterns[0]' is not a regular expression"),
    "a group that is no metric": (("(?P<epoch>\\d+)", "(?P<step>\\d+)"), "'script.patterns[0]' has a group 'step'"),
    "a metric no pattern reads": (('"train_loss"]', '"train_loss", "valid_acc"]'), "'script.metrics' names 'valid_acc', which no pattern reads"),
    "a scale of another metric": (("scale = { test_acc = 0.01 }", "scale = { valid_acc = 0.01 }"), "'script.scale.valid_acc' must map a metric"),
    "a model beside the script": (("[script]", '[model]\nclass_path = "Linear"\n\n[script]'), "[model] beside [script]: a script says itself"),
    "a path outside": (('path = "train.py"', 'path = "../train.py"'), "'script.path' is '../train.py': name a Python file beside the recipe"),
    "a missing script": (('path = "train.py"', 'path = "trian.py"'), "'script.path' 'trian.py': no such file beside the recipe"),
    "a setting that is not torch's": (("[script]", "[script]\nenv = { LD_PRELOAD = \"/tmp/x.so\" }"),
                                      "'script.env' sets 'LD_PRELOAD'; a recipe may set torch's own settings only"),
    "the seed two ways": (("[script]", "[script]\nseed_globals = true"), "[script] gives the seed two ways ({seed} or 'script.seed_env' "
                                                                          "and 'script.seed_globals')"),
    "seeds beside its own": (('args = ["--seed", "{seed}", "--epochs", "{epochs}"]', 'args = ["--epochs", "{epochs}"]\nown_seed = 7'),
                             "'seeds' is 10, but the script seeds itself ('script.own_seed')"),
    "a bound without its metric": (("[script]", "[script]\nstop_at = 0.1"), "'script.stop_metric' and 'script.stop_at' go together"),
    "a threshold it does not report": (("[script]", "[thresholds]\nvalid_acc = 0.9\n\n[script]"),
                                       "'thresholds.valid_acc' is 'valid_acc', which no run of this recipe records; this script reports"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_script_recipe_that_cannot_work_is_one_line_before_anything_runs(tmp_path, case):
    (old, new), expect = BAD[case]
    assert old in RECIPE
    directory = registry(tmp_path, RECIPE.replace(old, new))
    for command in (["validate"], ["run", "--results-dir", tmp_path / "R"]):
        done = harness(*command, "--experiments-dir", directory)
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and expect in done.stderr, done.stderr
    assert not (tmp_path / "R").exists()


@pytest.mark.parametrize("arguments,expect", [
    (["--engine", "fast"], "toy: a script recipe runs on the script engine only (not --engine fast)"),
    (["--vary", "init"], "toy: --vary seeds each source of randomness on its own; a script takes one seed"),
    (["--train-limit", "10"], "toy: --train-limit and --eval-limit are the harness's own data limits"),
    (["--executor", "ray"], "toy: a script runs on the local executor (--jobs N runs N at once), not on Ray"),
])
def test_what_a_script_cannot_give_is_refused_in_one_line(tmp_path, arguments, expect):
    directory = registry(tmp_path)
    done = harness("run", "--experiments-dir", directory, "--results-dir", tmp_path / "R", *arguments)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and expect in done.stderr, done.stderr
    assert not (tmp_path / "R").exists()


@pytest.mark.cuda
def test_a_script_not_told_its_device_runs_on_the_cpu_only(tmp_path):
    directory = registry(tmp_path)
    done = harness("run", "--experiments-dir", directory, "--results-dir", tmp_path / "R", "--devices", "cuda")
    assert done.returncode == 2 and "the script is not told its device (no {device} in 'script.args')" in done.stderr, done.stderr
    assert not (tmp_path / "R").exists()


def test_epochs_a_script_does_not_take_a_syntax_error_and_variance_by_source_are_refused(tmp_path):
    directory = registry(tmp_path, RECIPE.replace('"{epochs}"]', '"3"]'))
    done = harness("run", "--experiments-dir", directory, "--results-dir", tmp_path / "R", "--epochs", "2")
    assert done.returncode == 2 and "put {epochs} in 'script.args' to let --epochs change them" in done.stderr
    variance = harness("variance", "toy", "--experiments-dir", directory, "--results-dir", tmp_path / "R")
    assert variance.returncode == 2 and "variance by source needs a recipe the harness builds" in variance.stderr
    (directory / "train.py").write_text(SCRIPT.replace("random.seed(args.seed)", "random.seed(args.seed"))
    done = harness("validate", "--experiments-dir", directory)
    assert done.returncode == 2 and f"{directory / 'train.py'}:11: SyntaxError" in done.stderr, done.stderr
    assert not (tmp_path / "R").exists()


def test_scripts_and_recipes_are_run_by_commands_of_their_own(tmp_path):
    directory = registry(tmp_path)
    (directory / "iris.toml").write_text((ROOT / "experiments" / "iris-ce.toml").read_text().replace('id = "iris-ce"', 'id = "iris"'))
    done = harness("run", "--experiments-dir", directory, "--results-dir", tmp_path / "R")
    assert done.returncode == 2 and "toy is a script and run on the script engine" in done.stderr, done.stderr
    assert harness("validate", "--experiments-dir", directory).returncode == 0  # each on its own engine


def test_the_digits_script_example_records_what_it_prints(tmp_path):
    """examples/digits-script: train.py run unchanged for two seeds (2 epochs); each epoch's row holds the figures
    the script prints when run by hand with the same arguments."""
    example = ROOT / "examples" / "digits-script"
    results = tmp_path / "R"
    run = harness("run", "--experiments-dir", example, "--results-dir", results, "--seeds", "0,1", "--epochs", "2")
    assert run.returncode == 0, run.stderr
    runs, epochs = rows(results)
    for r in runs:
        lines = subprocess.run([sys.executable, "train.py", "--seed", r["seed"], "--epochs", "2"], cwd=example, capture_output=True,
                               text=True, check=True).stdout.splitlines()
        mine = [e for e in epochs if e["run_id"] == r["run_id"]]
        for line, row in zip(lines, mine, strict=True):
            correct = int(line.split("test accuracy ")[1].split("/")[0])
            assert f"train loss {float(row['train_loss']):.4f}, test loss {float(row['test_loss']):.4f}" in line
            assert round(float(row["test_acc"]) * 450) == correct


SEEDLESS = """import random
import numpy
import torch
print(f"epoch 1: train loss {random.random():.17f} {numpy.random.rand():.17f} {torch.rand(1).item():.17f}")
"""


def test_a_script_that_takes_no_seed_draws_from_generators_seeded_with_the_runs_seed(tmp_path):
    """`seed_globals`: Python's, NumPy's and torch's global generators hold the run's seed when the script
    starts, so seed 3 draws what a script that seeded itself with 3 would, and seed 4 draws otherwise."""
    import random

    import numpy
    import torch

    recipe = (RECIPE.replace('args = ["--seed", "{seed}", "--epochs", "{epochs}"]', "seed_globals = true").replace("epochs = 3", "epochs = 1")
              .replace('metrics = ["test_acc", "test_loss", "train_loss"]', 'metrics = ["train_loss"]').split("patterns =")[0]
              + "patterns = ['epoch (?P<epoch>\\d+): train loss (?P<train_loss>[0-9.]+) (?P<valid_loss>[0-9.]+) (?P<test_loss>[0-9.]+)']\n")
    recipe = recipe.replace('metrics = ["train_loss"]', 'metrics = ["train_loss", "valid_loss", "test_loss"]')
    directory = registry(tmp_path, recipe, SEEDLESS)
    run = harness("run", "--experiments-dir", directory, "--results-dir", tmp_path / "R", "--seeds", "3,4")
    assert run.returncode == 0, run.stderr
    runs, _ = rows(tmp_path / "R")
    drawn = {r["seed"]: (float(r["train_loss"]), float(r["valid_loss"]), float(r["test_loss"])) for r in runs}
    random.seed(3)
    numpy.random.seed(3)
    torch.manual_seed(3)
    expected = (random.random(), numpy.random.rand(), torch.rand(1).item())
    assert drawn["3"] == pytest.approx(expected, abs=1e-15) and drawn["4"] != drawn["3"]


STOPPING = """import sys
loss = 1.0
for batch in range(1, 1000):
    loss *= 0.9
    if loss < float(sys.argv[1]):
        break
print(f"Loss: {loss:.6f} after {batch} batches")
"""


@pytest.mark.parametrize("stops_at,status", [("0.01", "ok"), ("0.02", "error")])
def test_a_script_that_stops_itself_counts_where_its_last_figure_passes_the_bound(tmp_path, stops_at, status):
    """`stop_metric`, `stop_at`: a run that ends before `epochs` is ok where its last figure passes the bound,
    an error row where it stopped short of it (here: the script stops at 0.02, the recipe's bound is 0.01)."""
    recipe = (RECIPE.replace('args = ["--seed", "{seed}", "--epochs", "{epochs}"]', f'args = ["{stops_at}"]\nseed_globals = true')
              .replace("epochs = 3", "epochs = 1000").replace('metrics = ["test_acc", "test_loss", "train_loss"]', 'metrics = ["train_loss"]')
              .split("patterns =")[0] + "patterns = ['Loss: (?P<train_loss>[0-9.]+) after (?P<epoch>\\d+) batches']\n"
              + 'stop_metric = "train_loss"\nstop_at = 0.01\n')
    directory = registry(tmp_path, recipe, STOPPING)
    run = harness("run", "--experiments-dir", directory, "--results-dir", tmp_path / "R", "--seeds", "0")
    (row,), epochs = rows(tmp_path / "R")
    assert row["status"] == status and run.returncode == (0 if status == "ok" else 1), run.stderr
    if status == "ok":
        assert row["epochs"] == "44" and row["message"] == "stopped after epoch 44: train_loss 0.009698 passed 0.01"
    else:
        assert row["message"] == ("train.py reported figures up to epoch 38, not to 1000 as asked, nor a train_loss past 0.01 "
                                  "('script.stop_at')")


def test_a_script_reports_a_metric_of_its_recipes_own_and_its_printed_figure_is_judged_by_it(tmp_path):
    """[metrics.kl] beside [script]: the figure the script prints is recorded as test_kl, read by the report's
    tables (the seeds' mean), `check` (a maximum: lower is better) and a published figure of it."""
    script = SCRIPT.replace('    print(f"seed {args.seed}", file=sys.stderr)\n',
                            '    print(f"seed {args.seed}", file=sys.stderr)\n    print(f"KL {1 - accuracy:.4f}")\n')
    recipe = (RECIPE.replace('metrics = ["test_acc", "test_loss", "train_loss"]', 'metrics = ["test_acc", "test_loss", "train_loss", "test_kl"]')
              .replace("(?P<test_acc>[0-9.]+)%']", "(?P<test_acc>[0-9.]+)%', 'KL (?P<test_kl>[0-9.]+)']")
              + '\n[metrics.kl]\nlabel = "KL divergence"\nbetter = "lower"\n\n[thresholds]\ntest_kl = 0.0001\n'
              + '\n[published]\nmetric = "test_kl"\nepoch = 3\nvalue = 0.2\n')
    directory = registry(tmp_path, recipe, script)
    results = tmp_path / "R"
    run = harness("run", "--experiments-dir", directory, "--results-dir", results, "--seeds", "0-3", "--jobs", "2")
    assert run.returncode == 0, run.stderr
    runs, epochs = rows(results)
    for r in runs:
        assert math.isclose(float(r["test_kl"]), 1 - float(r["test_acc"]), abs_tol=1e-4) and r["train_kl"] == ""
    assert len([e for e in epochs if e["test_kl"]]) == 12
    assert harness("report", "--experiments-dir", directory, "--results-dir", results).returncode == 0
    report = (results / "REPORT.md").read_text()
    assert any(line.startswith("| toy ") and "test_kl" in line and "±" in line for line in report.splitlines())
    assert "test_kl" in report.split("## The printed runs")[1].split("##")[0]
    check = harness("check", "--experiments-dir", directory, "--results-dir", results)
    assert check.returncode == 1 and "test_kl" in check.stdout + check.stderr
