import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.cli import main
from harness.errors import HarnessError
from harness.catalogue import EPOCH_COLUMNS, RUN_COLUMNS
from harness.bounds import parse_seeds
from harness.runner import parse_devices

EARLIEST_RUN_COLUMNS = (
    "run_id, experiment, seed, device, device_name, engine, epochs, faithful, status, train_loss, train_acc, "
    "valid_loss, valid_acc, test_loss, test_acc, wall_time_s, train_time_s, train_samples_per_s, started_at, "
    "config_hash, git_commit, torch_version, python_version, host"
).split(", ")
EARLIEST_EPOCH_COLUMNS = "run_id, epoch, train_loss, train_acc, valid_loss, valid_acc, test_loss, test_acc, epoch_time_s, samples_per_s".split(", ")
PROJECT = Path(__file__).resolve().parent.parent
METRICS = ["train_loss", "train_acc", "valid_loss", "valid_acc", "test_loss", "test_acc"]


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_parse_seeds():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0,3,7") == [0, 3, 7]
    assert parse_seeds("5,0-2,1") == [0, 1, 2, 5]
    for bad in ("", "a", "3-1", "1-", "-1", "0..4"):
        with pytest.raises(HarnessError, match="--seeds"):
            parse_seeds(bad)


def test_parse_devices():
    assert parse_devices("cpu") == ["cpu"]
    assert parse_devices("auto")[0] == "cpu"
    with pytest.raises(HarnessError, match="unknown device 'gpu'"):
        parse_devices("gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_refused_without_cuda(capsys):
    assert main(["run", "iris-mse", "--devices", "cuda", "--results-dir", "unused"]) == 2
    err = capsys.readouterr().err
    assert "no CUDA device" in err and "--devices auto" in err and "Traceback" not in err


@pytest.mark.slow
def test_csv_schema_and_identical_reruns(tmp_path, capsys):
    out = tmp_path / "res"
    args = ["run", "iris-mse", "--seeds", "0-2", "--devices", "cpu", "--results-dir", str(out)]
    assert main(args) == 0
    first = read(out / "runs.csv")
    assert list(first[0]) == RUN_COLUMNS and RUN_COLUMNS[: len(EARLIEST_RUN_COLUMNS)] == EARLIEST_RUN_COLUMNS
    epochs = read(out / "epochs.csv")
    assert list(epochs[0]) == EPOCH_COLUMNS and EPOCH_COLUMNS[: len(EARLIEST_EPOCH_COLUMNS)] == EARLIEST_EPOCH_COLUMNS
    assert len(first) == 3 and {r["seed"] for r in first} == {"0", "1", "2"}
    for row in first:
        assert row["status"] == "ok" and row["faithful"] == "true" and row["epochs"] == "2000"
        assert row["valid_loss"] == "" and 0 <= float(row["test_acc"]) <= 1  # no validation split: empty
        assert row["started_at"].endswith("+00:00")
        assert {e["run_id"] for e in epochs if e["run_id"] == row["run_id"]}
    # Finished cells are skipped...
    assert main(args) == 0
    assert len(read(out / "runs.csv")) == 3
    assert "skipping 3 finished" in capsys.readouterr().out
    # ...and --force runs them again, with identical metrics.
    assert main(args + ["--force"]) == 0
    rows = read(out / "runs.csv")
    assert len(rows) == 6
    for a, b in zip(rows[:3], rows[3:]):
        assert [a[m] for m in METRICS] == [b[m] for m in METRICS]
        assert a["config_hash"] == b["config_hash"] and a["run_id"] != b["run_id"]


def test_epochs_override_marks_rows_unfaithful(tmp_path):
    out = tmp_path / "res"
    assert main(["run", "iris-ce", "--seeds", "0", "--epochs", "300", "--results-dir", str(out)]) == 0
    (row,) = read(out / "runs.csv")
    assert row["faithful"] == "false" and row["epochs"] == "300" and row["overrides"] == '{"epochs": 300}'
    assert [int(e["epoch"]) for e in read(out / "epochs.csv")] == [100, 200, 300]  # log_every = 100


@pytest.mark.slow
def test_bad_command_line_is_exit_2_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "iris-mes", "--results-dir", "x"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "did you mean 'iris-mse'" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "--seeds", "4-1"], capture_output=True, text=True)
    assert proc.returncode == 2 and "runs backwards" in proc.stderr


def test_list_shows_every_experiment(registry, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for exp_id in registry:
        assert exp_id in out
    assert "9278/10000" in out
    (header,) = [line for line in out.splitlines() if line.startswith("| id ")]
    (iris,) = [line for line in out.splitlines() if line.startswith("| iris-mse ")]
    seeds_column = [c.strip() for c in header.split("|")].index("seeds")
    assert iris.split("|")[seeds_column].strip() == "50"  # runs without --seeds train seeds 0-49


def test_list_mentions_variants_and_lists_them_on_request(registry, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "mnist-mlp@fashion-mnist" not in out and "--dataset fashion-mnist" in out
    assert main(["list", "--variants"]) == 0
    out = capsys.readouterr().out
    for exp in registry.values():
        assert (f"{exp.id}@fashion-mnist" in out) == (exp.data["dataset"] == "mnist")


TINY_MNIST = """
id = "tiny"
title = "t"
source = "s"
[data]
dataset = "mnist"
[model]
class_path = "harness.models:mlp"
init_args = {{ sizes = [784, 10] }}
[loss]
class_path = "CrossEntropyLoss"
[optimizer]
class_path = "SGD"
init_args = {{ lr = 0.1 }}
[training]
batch_size = 500
epochs = 1
[smoke]
min = 0.5
[fashion_thresholds]
test_acc = {minimum}
"""


def test_fashion_variant_runs_records_its_own_rows_and_is_checked(tmp_path, mnist, fashion_mnist, capsys):
    registry_dir = tmp_path / "experiments"
    registry_dir.mkdir()
    (registry_dir / "tiny.toml").write_text(TINY_MNIST.format(minimum=0.5))
    out = tmp_path / "res"
    common = ["--experiments-dir", str(registry_dir), "--results-dir", str(out), "--data-dir", str(mnist), "--seeds", "0"]
    assert main(["run", "tiny", *common]) == 0
    assert main(["run", "tiny", "--dataset", "fashion-mnist", *common]) == 0
    assert main(["run", "tiny@fashion-mnist", *common]) == 0  # the same cell by its id: already finished
    assert "skipping 1 finished" in capsys.readouterr().out
    mnist_row, fashion_row = read(out / "runs.csv")
    assert (mnist_row["experiment"], fashion_row["experiment"]) == ("tiny", "tiny@fashion-mnist")
    assert mnist_row["config_hash"] != fashion_row["config_hash"]
    assert mnist_row["dataset_md5"] != fashion_row["dataset_md5"]
    assert fashion_row["status"] == "ok" and fashion_row["faithful"] == "true"
    assert float(fashion_row["test_acc"]) != float(mnist_row["test_acc"])
    # The variant's threshold comes from [fashion_thresholds]: met at 0.5, missed at 0.99.
    assert main(["check", "--experiments-dir", str(registry_dir), "--results-dir", str(out)]) == 0
    (registry_dir / "tiny.toml").write_text(TINY_MNIST.format(minimum=0.99))
    assert main(["check", "--experiments-dir", str(registry_dir), "--results-dir", str(out)]) == 1
    assert "tiny@fashion-mnist [cpu, fast]: mean test_acc" in capsys.readouterr().out


def test_variants_without_results_are_not_required_by_check(registry, tmp_path):
    from harness.check import threshold_failures

    failures = threshold_failures(registry, tmp_path)
    assert any(line.startswith("mnist-mlp:") for line in failures)  # registered experiments are
    assert not any("@" in line for line in failures)


def test_dataset_option_refuses_what_cannot_run_on_it(capsys):
    assert main(["run", "iris-ce", "--dataset", "fashion-mnist", "--results-dir", "unused"]) == 2
    err = capsys.readouterr().err
    assert "iris-ce trains on iris" in err and "Traceback" not in err


def test_run_without_seeds_uses_each_experiments_default(tmp_path):
    registry_dir = tmp_path / "experiments"
    registry_dir.mkdir()
    for exp_id, seeds in (("iris-ce", 3), ("iris-mse", 2)):
        text = (PROJECT / "experiments" / f"{exp_id}.toml").read_text(encoding="utf-8")
        (registry_dir / f"{exp_id}.toml").write_text(text.replace("\nseeds = 50\n", f"\nseeds = {seeds}\n"), encoding="utf-8")
    common = ["--epochs", "1", "--experiments-dir", str(registry_dir), "--results-dir", str(tmp_path / "res")]
    assert main(["run", "iris-ce", "iris-mse", *common]) == 0
    seeds = {(r["experiment"], int(r["seed"])) for r in read(tmp_path / "res" / "runs.csv")}
    assert seeds == {("iris-ce", 0), ("iris-ce", 1), ("iris-ce", 2), ("iris-mse", 0), ("iris-mse", 1)}
    assert main(["run", "iris-ce", "--seeds", "7", *common]) == 0  # --seeds overrides every default
    assert {int(r["seed"]) for r in read(tmp_path / "res" / "runs.csv")} == {0, 1, 2, 7}


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_passes_seeds_only_when_set():
    def run_line(*variables):
        out = subprocess.run(["make", "-n", "run", "VENV=/nonexistent-venv", *variables], cwd=PROJECT,
                             capture_output=True, text=True, check=True).stdout
        (line,) = [x for x in out.splitlines() if "-m harness run" in x]
        return line

    assert "--seeds" not in run_line()  # each experiment's registry default
    assert "--seeds 0-2 " in run_line("SEEDS=0-2")

