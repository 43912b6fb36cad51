"""Bad input, faults and interruptions never lose or corrupt results: each test injects one.

Everything runs on iris with a few epochs, in temporary registries and results directories.
"""

import csv
import fcntl
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from harness import runner
from harness.check import integrity_failures
from harness.cli import main
from harness.registry import load_registry
from harness.catalogue import RUN_COLUMNS
from harness.results import ResultsStore
from harness.training import train

from .conftest import ROOT

IRIS_MSE = (ROOT / "experiments" / "iris-mse.toml").read_text()
QUICK = ["--seeds", "0", "--epochs", "2"]


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def make_registry(directory, *, thresholds=False, **extra):
    """iris-mse (without its thresholds, so quick runs can pass `check`), plus `name=text` files."""
    directory.mkdir(exist_ok=True)
    text = IRIS_MSE if thresholds else IRIS_MSE.replace("[thresholds]\ntest_acc = 0.90\n", "")
    (directory / "iris-mse.toml").write_text(text)
    for name, body in extra.items():
        (directory / f"{name}.toml").write_text(body)
    return directory


def variant(new_id, old, new):
    assert old in IRIS_MSE
    return IRIS_MSE.replace('id = "iris-mse"', f'id = "{new_id}"').replace(old, new, 1)


def harness(capsys, *args):
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def no_training(monkeypatch):
    """Fails the test if anything starts training."""
    def refuse(*args, **kwargs):
        raise AssertionError("a run was started")
    monkeypatch.setattr(runner, "run_cell", refuse)


def assert_one_line_error(err, *expected):
    assert err.startswith("harness: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, err


# ---------------------------------------------------------------------------------------------------
# Bad registry files: through `harness list` and `harness run`, exit 2, nothing run


@pytest.mark.parametrize("old,new,expect", [
    ("lr = 0.003", "lr = 0.003 0.004", "not valid TOML"),
    ("lr = 0.003", "lr = 0.003, weight_decy = 0.1", "'optimizer.init_args.weight_decy' is not an argument of torch.optim:SGD "
     "(did you mean 'weight_decay'?)"),
    ("epochs = 2000", 'epochs = "many"', "'training.epochs' must be an integer"),
    ("epochs = 2000", "epochs = -5", "'training.epochs' must be greater than 0"),
    ("epochs = 2000", "epochs = 2000\nbatch_size = 0", "'training.batch_size' must be greater than 0"),
    ("lr = 0.003", "lr = nan", "'optimizer.init_args.lr' must be a finite number"),
    ('class_path = "SGD"', 'class_path = "AdamWW"', "'optimizer.class_path' 'AdamWW': no such name in torch.optim (did you mean 'AdamW'?)"),
    ('dataset = "iris"', 'dataset = "cifar10"', "'data.dataset' 'cifar10': no such name in torchvision.datasets (did you mean 'CIFAR10'?)"),
    ('class_path = "harness.models:mlp"', 'class_path = "harness.models:transformer"',
     "'model.class_path': module 'harness.models' has no class or function 'transformer'"),
    ('class_path = "harness.models:mlp"', 'class_path = "subprocess:run"', "subprocess.py) and outside the namespaces a model comes from"),
    ('activation = "sigmoid"', 'activation = "sigmoid", dropout = 0.5', "'model.init_args.dropout' is not an argument of harness.models:mlp"),
    ('class_path = "MSELoss"', 'class_path = "MSELoss"\ninit_args = { reduce_mode = "sum" }', "'loss.init_args.reduce_mode' is not an argument"),
])
def test_bad_registry_file_is_one_line_exit_2_and_runs_nothing(tmp_path, capsys, no_training, old, new, expect):
    reg = make_registry(tmp_path / "reg", broken=variant("broken", old, new))
    results = tmp_path / "res"
    for command in (["list"], ["run", "iris-mse", *QUICK, "--results-dir", results]):
        status, out, err = harness(capsys, *command, "--experiments-dir", reg)
        assert status == 2 and out == ""
        assert_one_line_error(err, str(reg / "broken.toml"), expect)
    assert not results.exists()


def test_registry_file_that_is_not_utf8_or_repeats_an_id(tmp_path, capsys):
    reg = make_registry(tmp_path / "reg")
    (reg / "latin1.toml").write_bytes(variant("latin1", "", "").encode() + b"# caf\xe9 (Latin-1)\n")
    status, _, err = harness(capsys, "list", "--experiments-dir", reg)
    assert status == 2
    assert_one_line_error(err, "latin1.toml: not UTF-8 text")
    (reg / "latin1.toml").unlink()
    # An id is its file's name, so a copy under another name cannot repeat an id unnoticed.
    shutil.copy(reg / "iris-mse.toml", reg / "iris-mse-copy.toml")
    status, _, err = harness(capsys, "list", "--experiments-dir", reg)
    assert status == 2
    assert_one_line_error(err, "iris-mse-copy.toml: 'id' is 'iris-mse' but the file is named iris-mse-copy.toml")


# ---------------------------------------------------------------------------------------------------
# Bad command lines


@pytest.mark.parametrize("args,expect", [
    (["iris-mes"], "unknown experiment 'iris-mes' (did you mean 'iris-mse'?); `harness list --variants` shows them all; "
                   "`--experiments-dir DIR` finds recipes of your own"),
    (["iris-mse", "--seeds", "0-"], "--seeds: '0-' is not a seed or range"),
    (["iris-mse", "--seeds", "0,,2"], "--seeds: '' is not a seed or range"),
    (["iris-mse", "--devices", "tpu"], "--devices: unknown device 'tpu'"),
    (["iris-mse", "--engine", "turbo"], "--engine: unknown engine 'turbo'; available: reference, fast"),
    (["iris-mse", "--epochs", "0"], "--epochs must be a positive integer"),
    (["iris-mse", "--train-limit", "-3"], "--train-limit must be a positive integer"),
])
def test_bad_command_line_is_one_line_exit_2(tmp_path, capsys, no_training, args, expect):
    results = tmp_path / "res"
    status, _, err = harness(capsys, "run", *args, "--results-dir", results, "--experiments-dir", make_registry(tmp_path / "reg"))
    assert status == 2
    assert_one_line_error(err, expect)
    assert not results.exists()


@pytest.mark.parametrize("where", ["under-a-file", "is-a-file"])
def test_unwritable_results_dir_fails_before_training(tmp_path, capsys, no_training, where):
    blocker = tmp_path / "plain-file"
    blocker.write_text("not a directory")
    results = blocker / "res" if where == "under-a-file" else blocker
    status, _, err = harness(capsys, "run", "iris-mse", *QUICK, "--results-dir", results)
    assert status == 2
    assert_one_line_error(err, str(results), "results directory is not writable", "--results-dir")
    assert blocker.read_text() == "not a directory"


def test_results_file_with_foreign_columns_is_never_appended_to(tmp_path, capsys, no_training):
    results = tmp_path / "res"
    results.mkdir()
    foreign = "run_id,experiment,seed,accuracy\nabc,iris-mse,0,0.9\n"
    (results / "runs.csv").write_text(foreign)
    status, _, err = harness(capsys, "run", "iris-mse", *QUICK, "--results-dir", results)
    assert status == 2
    assert_one_line_error(err, "runs.csv: not this harness's columns (unknown column(s) accuracy)", "move the file aside")
    assert (results / "runs.csv").read_text() == foreign


# ---------------------------------------------------------------------------------------------------
# Data faults through the command line: exit 2 naming the file and the fix, nothing trained


@pytest.fixture
def no_mnist_env(monkeypatch):
    monkeypatch.delenv("HARNESS_DATA_MIRROR", raising=False)
    monkeypatch.delenv("HARNESS_DATA_DIR", raising=False)


@pytest.mark.parametrize("fault,expect", [
    ("truncated", ["train-images-idx3-ubyte.gz: cannot decompress", "truncated or corrupt: replace it"]),
    ("missing", ["train-images-idx3-ubyte.gz is missing from the data mirror", "--data-mirror DIR"]),
])
def test_bad_mirror_stops_the_run(tmp_path, capsys, no_training, no_mnist_env, fault, expect):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    if fault == "truncated":
        for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
            (mirror / f"{name}.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"\0" * 20)  # a gzip header, then nothing
    results = tmp_path / "res"
    status, _, err = harness(capsys, "run", "mnist-mlp", "--seeds", "0", "--data-dir", tmp_path / "data",
                             "--data-mirror", mirror, "--results-dir", results)
    assert status == 2
    assert_one_line_error(err, *expect)
    assert not (results / "runs.csv").exists()
    assert not list((tmp_path / "data").rglob("*-ubyte"))  # nothing unverified left to train on


def test_corrupt_data_file_without_mirror_stops_the_run(tmp_path, capsys, no_training, no_mnist_env):
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"\0" * 10008)
    status, _, err = harness(capsys, "run", "mnist-mlp", "--seeds", "0", "--data-dir", tmp_path / "data",
                             "--results-dir", tmp_path / "res")
    assert status == 2
    assert_one_line_error(err, str(raw / "t10k-labels-idx1-ubyte"), "does not match", "delete it")
    assert not (tmp_path / "res" / "runs.csv").exists()


def test_no_network_and_no_mirror_names_the_fix(tmp_path, capsys, no_training, no_mnist_env, monkeypatch):
    import torchvision

    def offline(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://example/, got:\n<urlopen error [Errno -2] Name or service not known>")
    monkeypatch.setattr(torchvision.datasets.MNIST, "download", offline)
    status, _, err = harness(capsys, "run", "mnist-mlp", "--seeds", "0", "--data-dir", tmp_path / "data",
                             "--results-dir", tmp_path / "res")
    assert status == 2
    assert_one_line_error(err, "mnist: download failed", "train-images-idx3-ubyte.gz", "--data-mirror DIR", "HARNESS_DATA_MIRROR")
    assert not (tmp_path / "res" / "runs.csv").exists()


# ---------------------------------------------------------------------------------------------------
# Numerical faults and crashes: recorded, and the matrix goes on


def test_divergence_is_recorded_and_the_matrix_continues(tmp_path, capsys):
    reg = make_registry(tmp_path / "reg", **{"iris-blowup": variant("iris-blowup", "lr = 0.003", "lr = 10")})
    results = tmp_path / "res"
    args = ["run", "iris-blowup", "iris-mse", "--seeds", "0", "--epochs", "20", "--results-dir", results, "--experiments-dir", reg]
    status, out, _ = harness(capsys, *args)
    assert status == 1
    blowup, mse = read(results / "runs.csv")
    assert blowup["status"] == "diverged" and "became" in blowup["message"]
    diverged_at = int(blowup["diverged_epoch"])
    assert 1 <= diverged_at < 20 and blowup["epochs"] == str(diverged_at)  # stopped early
    epochs = [e for e in read(results / "epochs.csv") if e["run_id"] == blowup["run_id"]]
    assert int(epochs[-1]["epoch"]) == diverged_at
    assert mse["status"] == "ok" and mse["epochs"] == "20"
    assert integrity_failures(load_registry(reg), results) == []
    # A diverged run is a result: it is not run again.
    status, out, _ = harness(capsys, *args)
    assert status == 0 and "skipping 2 finished" in out


def test_loss_broken_by_the_last_step_is_divergence(registry):
    """The training loss is taken before the step; a step that breaks the weights shows in evaluation."""
    class OneBatch:
        n_train = 4

        def train_batches(self):
            return [(torch.zeros(4, 4), torch.zeros(4, 1))]

        def eval_batches(self, split):
            return self.train_batches() if split == "test" else None

    model = torch.nn.Linear(4, 1)
    calls = []

    def step(x, y):
        outputs = model(x)
        loss = torch.nn.functional.mse_loss(outputs, y)
        calls.append(1)
        if len(calls) == 3:
            with torch.no_grad():
                model.bias.fill_(float("inf"))
        return outputs, loss

    outcome = train(model, OneBatch(), registry["iris-mse"], 3, torch.device("cpu"), step=step)
    assert outcome.status == "diverged" and outcome.diverged_epoch == 3
    assert "test_loss became inf" in outcome.message


def test_crash_in_a_cell_is_recorded_and_the_matrix_continues(tmp_path, capsys, monkeypatch):
    from harness.models import MyLinear

    def broken_forward(self, x):
        # A fault from a layer's second training step on: `validate`, which checks the recipe with a
        # model of its own and one training step, gets through; the cell's training does not.
        if torch.is_grad_enabled():
            self.steps_taken = getattr(self, "steps_taken", 0) + 1
            if self.steps_taken > 1:
                raise RuntimeError("injected fault in MyLinear")
        return torch.nn.functional.linear(x, self.weight, self.bias)
    monkeypatch.setattr(MyLinear, "forward", broken_forward)
    results = tmp_path / "res"
    args = ["run", "iris-mylinear", "iris-mse", *QUICK, "--results-dir", results]
    status, out, _ = harness(capsys, *args)
    assert status == 1
    crashed, fine = read(results / "runs.csv")
    assert crashed["experiment"] == "iris-mylinear" and crashed["status"] == "error"
    assert crashed["message"] == "RuntimeError: injected fault in MyLinear"
    assert fine["experiment"] == "iris-mse" and fine["status"] == "ok"
    assert not list((results / ".claims").iterdir())
    # The failed cell is not a result: the next run tries it again, and only it.
    monkeypatch.undo()
    status, out, _ = harness(capsys, *args)
    assert status == 0 and "skipping 1 finished" in out
    assert [r["status"] for r in read(results / "runs.csv")] == ["error", "ok", "ok"]


# ---------------------------------------------------------------------------------------------------
# Interruption


def harness_process(*args):
    # A background job of a shell inherits SIGINT ignored; the process under test must see Ctrl-C.
    return subprocess.Popen([sys.executable, "-m", "harness", *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for_rows(path, proc, n=1):
    while proc.poll() is None:
        try:
            if len(read(path)) >= n:
                return
        except FileNotFoundError:
            pass
        time.sleep(0.01)
    raise AssertionError(f"the run ended before {path} had {n} row(s): {proc.communicate()}")


def assert_intact(results, registry):
    """Every row parses and agrees with its epochs; nothing half-done is left behind."""
    assert integrity_failures(registry, results) == []
    leftovers = [p.name for p in results.iterdir() if p.name.endswith(".tmp")] + [p.name for p in (results / ".claims").iterdir()]
    assert leftovers == []


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_matrix_keeps_finished_rows_and_resumes(tmp_path, capsys, registry, signum):
    results = tmp_path / "res"
    args = ["run", "iris-mse", "--seeds", "0-19", "--epochs", "3", "--results-dir", results]
    proc = harness_process(*args)
    wait_for_rows(results / "runs.csv", proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    assert f"interrupted ({signum.name})" in err and "Traceback" not in err
    finished = read(results / "runs.csv")
    assert 1 <= len(finished) < 20
    assert_intact(results, registry)
    # The next run does the unfinished cells only.
    status, out, _ = harness(capsys, *args)
    assert status == 0 and f"skipping {len(finished)} finished" in out
    rows = read(results / "runs.csv")
    assert sorted(int(r["seed"]) for r in rows) == list(range(20))
    assert rows[: len(finished)] == finished
    assert_intact(results, registry)


@pytest.fixture
def ctrl_c_raises():
    """Ctrl-C raises KeyboardInterrupt here, even where SIGINT came in ignored (a shell's background job)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_signal_while_rows_are_written_is_held_until_they_are(tmp_path, monkeypatch, ctrl_c_raises):
    store = ResultsStore(tmp_path / "res")
    prepare = ResultsStore._prepare

    def prepare_then_signal(self, table, rows):
        if table == "epochs.csv":
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C between the epochs and the runs rows
        return prepare(self, table, rows)
    monkeypatch.setattr(ResultsStore, "_prepare", prepare_then_signal)
    with pytest.raises(KeyboardInterrupt):
        store.append([{"run_id": "r1", "status": "ok"}], [{"run_id": "r1", "epoch": 1}], [])
    assert [r["run_id"] for r in read(tmp_path / "res" / "runs.csv")] == ["r1"]  # written before the interrupt


# ---------------------------------------------------------------------------------------------------
# Concurrency: cells are claimed, so two processes never run the same one


@pytest.mark.slow
def test_two_processes_on_one_matrix_run_every_cell_once(tmp_path, registry):
    results = tmp_path / "res"
    args = ["run", "iris-mse", "--seeds", "0-11", "--epochs", "10", "--results-dir", results]
    procs = [harness_process(*args) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    rows = read(results / "runs.csv")
    assert sorted(int(r["seed"]) for r in rows) == list(range(12))
    assert sorted(e["run_id"] for e in read(results / "epochs.csv")) == sorted(r["run_id"] for r in rows)
    assert_intact(results, registry)


def claim_file(results, seed, registry):
    exp = registry["iris-mse"]
    key = ("iris-mse", exp.config_hash({"epochs": 2}), "cpu", "fast", seed)
    path = ResultsStore(results)._claim_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": 999999, "host": "elsewhere"}))
    return path


def test_cell_claimed_by_a_live_process_is_left_to_it(tmp_path, capsys, registry):
    results = tmp_path / "res"
    path = claim_file(results, 1, registry)
    with open(path) as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # a live owner holds its claim's lock
        status, out, _ = harness(capsys, "run", "iris-mse", "--seeds", "0-1", "--epochs", "2", "--results-dir", results)
    assert status == 0
    assert "iris-mse seed=1 cpu fast: being run by another process" in out and '"pid": 999999' in out
    assert [r["seed"] for r in read(results / "runs.csv")] == ["0"]


def test_stale_claim_is_taken_over(tmp_path, capsys, registry):
    results = tmp_path / "res"
    path = claim_file(results, 0, registry)  # left by a process that was killed: nobody holds its lock
    status, out, _ = harness(capsys, "run", "iris-mse", *QUICK, "--results-dir", results)
    assert status == 0 and "taking over a stale claim" in out
    assert [r["seed"] for r in read(results / "runs.csv")] == ["0"]
    assert not path.exists()


def test_bookkeeping_files_are_never_committed(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    store = ResultsStore(tmp_path / "res")
    with store.locked():
        pass
    (store.dir / ".claims").mkdir()
    (store.dir / ".claims" / "iris-mse-seed0-0123.json").write_text("{}")
    (store.dir / ".runs.csv.123.tmp").write_text("")
    (store.dir / "runs.csv").write_text("")
    status = subprocess.run(["git", "-C", str(tmp_path), "status", "--porcelain", "-uall"], capture_output=True, text=True, check=True)
    assert sorted(status.stdout.split()) == ["??", "??", "res/.gitignore", "res/runs.csv"]


# ---------------------------------------------------------------------------------------------------
# Integrity: `harness check` names every kind of damage


@pytest.fixture(scope="module")
def clean_results(tmp_path_factory):
    """A small sound results directory (two runs, two epochs each) and its registry."""
    root = tmp_path_factory.mktemp("integrity")
    reg = make_registry(root / "reg")
    assert main(["run", "iris-mse", "--seeds", "0-1", "--epochs", "2", "--results-dir", str(root / "res"),
                 "--experiments-dir", str(reg)]) == 0
    return root / "res", reg


def edit_lines(path, edit):
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(edit(lines)))


def edit_field(path, line, column, value):
    def edit(lines):
        header = lines[0].rstrip("\n").split(",")
        rows = list(csv.reader(lines[1:]))
        rows[line - 2][header.index(column)] = value
        out = [lines[0]]
        for row in rows:
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerow(row)
            out.append(buf.getvalue())
        return out
    edit_lines(path, edit)


INJECTIONS = {
    "stale config_hash": (lambda d: edit_field(d / "runs.csv", 2, "config_hash", "0123456789ab"),
                          "runs.csv line 2: run {run0} is stale: config_hash 0123456789ab is not the registry's"),
    "epochs row without its run": (lambda d: edit_lines(d / "runs.csv", lambda ls: ls[:2]),
                                   "epochs.csv: 1 row(s) of run {run1}, which has no row in runs.csv"),
    "final metric disagrees": (lambda d: edit_field(d / "runs.csv", 3, "test_acc", "0.99"),
                               "runs.csv line 3: run {run1}: test_acc '0.99' disagrees with its last epochs.csv row"),
    "unparsable number": (lambda d: edit_field(d / "runs.csv", 2, "train_loss", "0.4x"),
                          "runs.csv line 2: run {run0}: train_loss '0.4x' is not a number"),
    "accuracy above 1": (lambda d: edit_field(d / "epochs.csv", 2, "train_acc", "1.5"),
                         "epochs.csv line 2: run {run0}: train_acc '1.5' is outside [0, 1]"),
    "unknown status": (lambda d: edit_field(d / "runs.csv", 3, "status", "done"),
                       "runs.csv line 3: run {run1}: status 'done' is not one of ok, diverged, error"),
    "duplicate run_id": (lambda d: edit_lines(d / "runs.csv", lambda ls: ls + ls[1:2]),
                         "runs.csv line 4: run_id {run0} repeats line 2"),
    "partial row": (lambda d: edit_lines(d / "runs.csv", lambda ls: ls[:2] + [ls[2][:40]]),
                    f"fields, expected {len(RUN_COLUMNS)} (a partial or hand-edited row)"),
    "missing header": (lambda d: edit_lines(d / "runs.csv", lambda ls: ls[1:]),
                       "runs.csv: header missing or replaced"),
    "reordered header": (lambda d: edit_lines(d / "epochs.csv", lambda ls: [ls[0].replace("train_loss,train_acc", "train_acc,train_loss")] + ls[1:]),
                         "epochs.csv: columns reordered"),
}


def test_clean_results_pass_check(clean_results, capsys):
    results, reg = clean_results
    status, out, _ = harness(capsys, "check", "--results-dir", results, "--experiments-dir", reg)
    assert status == 0 and "results intact" in out


@pytest.mark.parametrize("fault", list(INJECTIONS))
def test_check_names_each_kind_of_damage(clean_results, tmp_path, capsys, fault):
    source, reg = clean_results
    results = tmp_path / "res"
    shutil.copytree(source, results)
    run0, run1 = (r["run_id"] for r in read(results / "runs.csv"))
    inject, expect = INJECTIONS[fault]
    inject(results)
    status, out, err = harness(capsys, "check", "--results-dir", results, "--experiments-dir", reg)
    assert status == 1 and "Traceback" not in err
    lines = out.splitlines()
    assert any(line.startswith("FAIL ") and expect.format(run0=run0, run1=run1) in line for line in lines), out


def test_stale_row_superseded_by_a_current_run_is_history(clean_results, tmp_path):
    source, reg = clean_results
    results = tmp_path / "res"
    shutil.copytree(source, results)
    # An old row of seed 0 under another recipe, then re-run: the current row supersedes it.
    edit_lines(results / "runs.csv", lambda ls: ls[:1] + [ls[1].replace(read(source / "runs.csv")[0]["config_hash"], "0123456789ab")
                                                          .replace(read(source / "runs.csv")[0]["run_id"], "old000000000")] + ls[1:])
    edit_lines(results / "epochs.csv", lambda ls: ls + [ls[1].replace(read(source / "runs.csv")[0]["run_id"], "old000000000")])
    assert integrity_failures(load_registry(reg), results) == []


def test_one_loop_for_many_seeds_ends_each_where_its_own_loss_breaks(registry):
    """Seeds trained together go through the single-seed loop: a seed whose evaluation loss breaks (its
    training loss still finite) ends there, diverged, with the single-seed message; the others go on."""
    from harness.training import EpochTally, Scorer, train_lanes

    experiment = registry["mnist-sequential-adam"]

    class TwoLanes:
        count = 2
        scorer = Scorer(experiment)
        scheduler = None
        epoch = 0

        def train_mode(self):
            self.epoch += 1

        def step(self, x, y):
            return x, torch.tensor([0.5, 0.25])

        def tally(self, tally, outputs, y, loss):
            tally.add(loss, (torch.tensor([1, 1]),), 1, 1)

        def evaluate(self, batches):
            tally = EpochTally(self.scorer)
            broken = float("nan") if self.epoch >= 2 else 0.75  # lane 1's test loss breaks at epoch 2
            tally.add(torch.tensor([0.75, broken]), (torch.tensor([1, 0]),), 1, 1)
            return tally

        def state(self, lane):
            return {"lane": torch.tensor(lane)}

    class OneSample:
        n_train = 1

        def train_batches(self):
            return [(torch.zeros(1), torch.zeros(1))]

        def eval_batches(self, split):
            return self.train_batches() if split == "test" else None

    heard = []
    kept, broken = train_lanes(TwoLanes(), OneSample(), experiment, 4, torch.device("cpu"), on_epoch=heard.append)
    assert kept.status == "ok" and [row["epoch"] for row in kept.epochs] == [1, 2, 3, 4] and len(heard) == 4
    assert broken.status == "diverged" and broken.diverged_epoch == 2 and broken.message == "test_loss became nan at epoch 2"
    assert [row["epoch"] for row in broken.epochs] == [1, 2] and broken.epochs[0]["test_acc"] == 0.0
    assert kept.state == {"lane": torch.tensor(0)} and broken.state == {"lane": torch.tensor(1)}


def test_a_training_time_too_short_to_measure_leaves_the_rate_empty_for_every_engine(tmp_path, capsys, monkeypatch):
    """samples_per_s is left empty (never nan, which `check` refuses) where no time was measured."""
    from harness.training import EpochTimer

    monkeypatch.setattr(EpochTimer, "stop", lambda self: 0.0)
    for engine in ("fast", "multiseed"):
        results = tmp_path / engine
        status, _, _ = harness(capsys, "run", "iris-ce", "--seeds", "0-1", "--epochs", "2", "--engine", engine, "--results-dir", results)
        assert status == 0
        assert {e["samples_per_s"] for e in read(results / "epochs.csv")} == {""}
        assert integrity_failures(load_registry(), results) == []
