"""The Ray executor: same rows as the local executor, recorded by the driver alone; clear errors."""

import csv
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile

import pytest
import torch

from harness.cli import main
from harness.options import RunOptions
from harness.errors import HarnessError
from harness.runner import Cell, run_cell, run_matrix

METRICS = ["train_loss", "train_acc", "valid_loss", "valid_acc", "test_loss", "test_acc"]
IRIS = ["iris-ce", "iris-mse", "iris-mylinear"]
QUICK = ["--seeds", "0-1", "--epochs", "100"]


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def harness(*args, prelude="pass"):
    code = f"import sys; {prelude}; from harness.cli import main; sys.exit(main({list(args)!r}))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


@pytest.fixture(scope="module")
def ray_instance():
    """A local Ray instance with 2 CPUs, its session files in a short-lived directory of its own."""
    ray = pytest.importorskip("ray", reason="ray is not installed (`make setup-ray`)")
    from harness.ray_executor import runtime_env

    temp_dir = tempfile.mkdtemp(prefix="harness-ray-")  # short: Ray's socket paths must fit 107 bytes
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=100 * 2**20,
             runtime_env=runtime_env(), _temp_dir=temp_dir)
    yield ray
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)


def test_cells_and_options_pickle(registry):
    cell = Cell(registry["mnist-cnn"], (0, 3), "cpu")
    options = RunOptions(data_dir="/data", mirror="/mirror", epochs=2, train_limit=100)
    assert pickle.loads(pickle.dumps(cell)) == cell
    assert pickle.loads(pickle.dumps(options)) == options


@pytest.mark.slow
def test_ray_rows_match_local_rows(ray_instance, tmp_path, capsys):
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    assert main(["run", *IRIS, *QUICK, "--results-dir", str(local)]) == 0
    assert main(["run", *IRIS, *QUICK, "--results-dir", str(on_ray), "--executor", "ray"]) == 0
    out = capsys.readouterr().out
    assert "[6/6 runs (100%)]" in out and "ray: 6 cell(s) submitted" in out

    def by_cell(rows):
        return {(r["experiment"], r["seed"]): r for r in rows}

    local_rows, ray_rows = by_cell(read(local / "runs.csv")), by_cell(read(on_ray / "runs.csv"))
    assert len(ray_rows) == 6 and ray_rows.keys() == local_rows.keys()
    for key, row in ray_rows.items():
        assert [row[m] for m in METRICS] == [local_rows[key][m] for m in METRICS], key
        assert row["status"] == "ok" and row["threads"] == "1"  # one CPU per task, one torch thread
        assert row["config_hash"] == local_rows[key]["config_hash"]
        assert row["git_commit"] == local_rows[key]["git_commit"]
    # Every run's epoch rows came back with it, identical to the local ones.
    local_epochs, ray_epochs = read(local / "epochs.csv"), read(on_ray / "epochs.csv")
    for key, row in ray_rows.items():
        mine = [[e[m] for m in METRICS] for e in ray_epochs if e["run_id"] == row["run_id"]]
        theirs = [[e[m] for m in METRICS] for e in local_epochs if e["run_id"] == local_rows[key]["run_id"]]
        assert mine == theirs and len(mine) == 1, key  # 100 epochs, logged every 100

    # Resumable: a second run finds every cell finished and adds nothing.
    assert main(["run", *IRIS, *QUICK, "--results-dir", str(on_ray), "--executor", "ray"]) == 0
    assert "skipping 6 finished" in capsys.readouterr().out
    assert len(read(on_ray / "runs.csv")) == 6


def test_indexed_gpu_refused_on_ray(ray_instance, tmp_path, capsys):
    assert main(["run", "iris-mse", "--devices", "cuda:0", "--executor", "ray", "--results-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--devices" in err and "Traceback" not in err


def test_task_resources(registry):
    pytest.importorskip("ray", reason="ray is not installed (`make setup-ray`)")
    from harness.ray_executor import RayExecutor

    executor = RayExecutor(cpus_per_task=3)
    assert executor.resources(Cell(registry["mnist-cnn"], (0,), "cpu")) == {"num_cpus": 3, "num_gpus": 0}
    assert executor.resources(Cell(registry["mnist-cnn"], (0,), "cuda")) == {"num_cpus": 1, "num_gpus": 1}
    with pytest.raises(HarnessError, match="--cpus-per-task"):
        RayExecutor(cpus_per_task=0)


@pytest.mark.cuda
def test_cuda_cell_runs_on_the_gpu_ray_assigns(ray_instance, tmp_path):
    assert main(["run", "iris-mse", "--seeds", "0", "--epochs", "100", "--devices", "cuda", "--executor", "ray",
                 "--results-dir", str(tmp_path)]) == 0
    (row,) = read(tmp_path / "runs.csv")
    assert row["status"] == "ok" and row["device"] == "cuda" and row["device_name"] in {
        torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())}


def test_interrupted_driver_keeps_finished_cells(registry, tmp_path):
    """Rows are recorded as each cell finishes; an interruption stops the executor and loses none of them."""
    stopped = []

    def interrupted_after_one(cells, engine, options, log):
        try:
            first = next(iter(cells))  # executors take cells from a stream that claims each as it is taken
            yield first, run_cell(first, engine, options)
            raise KeyboardInterrupt
        finally:
            stopped.append(True)

    options = RunOptions(epochs=100)
    with pytest.raises(KeyboardInterrupt):
        run_matrix([registry["iris-mse"]], [0, 1], ["cpu"], "fast", tmp_path, options, execute=interrupted_after_one, log=lambda _: None)
    assert stopped == [True]
    assert [r["seed"] for r in read(tmp_path / "runs.csv")] == ["0"]
    # The next run resumes with the other seed only.
    assert run_matrix([registry["iris-mse"]], [0, 1], ["cpu"], "fast", tmp_path, options, log=lambda _: None) == 0
    assert sorted(r["seed"] for r in read(tmp_path / "runs.csv")) == ["0", "1"]


@pytest.mark.slow
def test_without_ray_one_line_and_exit_2(tmp_path):
    # sys.modules["ray"] = None makes `import ray` fail as if it were not installed.
    proc = harness("run", "iris-mse", "--executor", "ray", "--results-dir", str(tmp_path), prelude="sys.modules['ray'] = None")
    assert proc.returncode == 2
    assert proc.stderr == "harness: error: Ray is not installed; `make setup-ray` or `pip install .[ray]`\n"


@pytest.mark.slow
def test_local_executor_never_imports_ray(tmp_path):
    proc = harness("run", "iris-mse", "--seeds", "0", "--epochs", "100", "--results-dir", str(tmp_path),
                   prelude="import atexit; atexit.register(lambda: print('ray imported:', 'ray' in sys.modules))")
    assert proc.returncode == 0, proc.stderr
    assert "ray imported: False" in proc.stdout


def test_ray_flags_refused_with_local_executor(tmp_path, capsys):
    assert main(["run", "iris-mse", "--ray-address", "auto", "--results-dir", str(tmp_path)]) == 2
    assert "--ray-address applies to --executor ray only" in capsys.readouterr().err


@pytest.mark.slow
def test_unreachable_ray_address_one_line_and_exit_2(tmp_path):
    pytest.importorskip("ray", reason="ray is not installed (`make setup-ray`)")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
    proc = harness("run", "iris-mse", "--executor", "ray", "--ray-address", address, "--results-dir", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"harness: error: --ray-address {address}: no Ray cluster answers there")
    assert proc.stderr.count("\n") == 1


@pytest.mark.slow
def test_a_recipes_own_modules_travel_with_its_tasks(ray_instance, tmp_path, capsys):
    """Workers import the user's code from the copy shipped with each task: the rows are the local ones,
    weights and code digests included."""
    from .test_recipes import user_registry

    directory = user_registry(tmp_path)
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    common = ["run", "mine", "--experiments-dir", str(directory), "--seeds", "0-1"]
    assert main([*common, "--results-dir", str(local)]) == 0
    assert main([*common, "--results-dir", str(on_ray), "--executor", "ray"]) == 0
    capsys.readouterr()
    key = ("seed", "weights_sha256", "code_sha256", "test_acc")
    assert sorted(tuple(r[k] for k in key) for r in read(on_ray / "runs.csv")) == sorted(tuple(r[k] for k in key) for r in read(local / "runs.csv"))


@pytest.mark.slow
def test_shipped_code_is_written_where_the_worker_imports_it_and_checked(registry, tmp_path):
    import dataclasses
    import shutil as sh

    from harness.models import build_model
    from harness.objects import user_files
    from harness.ray_executor import with_user_code
    from harness.registry import load_experiment

    from .test_recipes import user_registry

    directory = user_registry(tmp_path)
    exp = load_experiment(directory / "mine.toml")
    files = user_files(directory)
    sh.rmtree(directory)  # as on a node without the driver's files
    moved = with_user_code(Cell(exp, (0,), "cpu"), files).experiment
    assert moved.path.parent != directory and moved.code_sha256 == exp.code_sha256
    assert build_model(moved).body[0].in_features == 4
    assert with_user_code(Cell(registry["iris-mse"], (0,), "cpu"), None).experiment is registry["iris-mse"]
    with pytest.raises(HarnessError, match="the code shipped with the task has SHA-256"):
        with_user_code(Cell(dataclasses.replace(exp, code_sha256="0" * 64), (0,), "cpu"), files)
