"""Input a user could not mean is refused before anything is allocated; output that cannot be written is
one line, never a traceback. The command lines go through `python -m harness` as a shell would run them,
or through its `main` in this process where the test must reach the code `make mutate` changes (a
subprocess imports the checkout's package, not the mutated copy: docs/testing.md).

docs/results-files.md, "Guarantees", sentence by sentence:
- "Bounds: what no one could mean is refused at once": test_absurd_command_line_is_refused_at_once,
  test_absurd_options_are_refused_before_torch_loads, test_largest_seed_is_the_one_every_recipe_takes,
  test_registry_file_that_is_not_a_small_regular_file_is_refused, test_registry_file_of_the_largest_size_loads_whole,
  test_registry_file_that_grew_after_its_size_was_read_is_read_no_further, test_deeply_nested_toml_is_one_line,
  test_recipe_values_that_would_fail_in_a_cell_are_refused_at_load, test_refused_recipe_runs_nothing,
  test_bench_out_that_cannot_be_written_is_refused_before_measuring, test_bench_steps_fit_the_training_set.
- "Ids are plain names": test_ids_are_plain_names (and, in test_tamper.py, test_free_text_cannot_start_a_formula).
- "Output": test_reader_gone_before_the_output_exits_quietly, test_full_stdout_is_one_line,
  test_closed_stdout_is_one_line, test_stdout_that_cannot_encode_a_title_gets_escapes; one line whatever a
  file name holds: test_ids_are_plain_names ('two\\nlines'); `FAIL` lines: test_tamper.py's
  test_check_output_stays_one_line_per_failure.
"""

import os
import signal
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from harness.bounds import MAX_SEED
from harness.cli import main
from harness.errors import HarnessError
from harness.registry import load_experiment, load_registry
from harness.schema import MAX_FILE_BYTES

from .conftest import ROOT

EXPERIMENTS = ROOT / "experiments"
# A safety net against a hang (the harness must refuse at once); never what a test asserts.
HANG = 120


def harness(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=HANG, **kwargs)


def harness_here(capsys, *args) -> subprocess.CompletedProcess:
    """`harness` with these arguments in this process (the same command line, without a new interpreter)."""
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, status, out, err)


def assert_refused(proc, *expected, status=2):
    assert proc.returncode == status, proc
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("harness: error: ") and proc.stderr.count("\n") == 1, proc.stderr
    for text in expected:
        assert text in proc.stderr, proc.stderr


def registry_with(tmp_path, base: str, old: str, new: str, name: str | None = None):
    """A registry directory holding one experiment file: `base` with `old` replaced by `new`."""
    text = (EXPERIMENTS / f"{base}.toml").read_text()
    assert old in text
    directory = tmp_path / "reg"
    directory.mkdir(exist_ok=True)
    path = directory / f"{name or base}.toml"
    path.write_text(text.replace(old, new, 1))
    return directory, path


# ---------------------------------------------------------------------------------------------------
# The command line


@pytest.mark.parametrize("args,expect", [
    (["run", "iris-mse", "--seeds", "0-999999999999"], "--seeds: '0-999999999999' goes beyond the largest seed, 4294967295"),
    (["run", "iris-mse", "--seeds", str(MAX_SEED + 1)], "goes beyond the largest seed"),
    (["run", "iris-mse", "--seeds", "9" * 5000], "goes beyond the largest seed"),  # int() itself stops at 4300 digits
    (["run", "iris-mse", "--seeds", "0-1000"], "names more than 1000 seeds"),
    (["run", "iris-mse", "--seeds", ",".join(["0-999"] * 2)], "names more than 1000 seeds"),
    (["run", "iris-mse", "--epochs", "99999999999999999999"], "--epochs 99999999999999999999 is beyond what a run can mean; allowed: 1 to 100000"),
    (["run", "iris-mse", "--train-limit", "10000000"], "--train-limit 10000000 is beyond"),
    (["run", "iris-mse", "--eval-limit", "10000000"], "--eval-limit 10000000 is beyond"),
    (["run", "iris-mse", "--jobs", "100000"], "--jobs 100000 is beyond"),
    (["run", "iris-mse", "--executor", "ray", "--cpus-per-task", "100000"], "--cpus-per-task 100000 is beyond"),
    (["run", "iris-mse", "--executor", "ray", "--cpus-per-task", "0"], "--cpus-per-task must be a positive integer, got 0"),
    (["bench", "iris-mse", "--steps", "1000000000"], "--steps 1000000000 is beyond"),
    (["bench", "iris-mse", "--repeats", "1000000"], "--repeats 1000000 is beyond"),
    (["bench", "iris-mse", "--warmup", "1000000"], "--warmup 1000000 is beyond"),
    (["bench", "iris-mse", "--seeds", "1000000"], "--seeds 1000000 is beyond"),
])
@pytest.mark.slow
def test_absurd_command_line_is_refused_at_once(tmp_path, args, expect):
    results = tmp_path / "res"
    where = ["--results-dir", results] if args[0] == "run" else ["--out", results / "bench.csv"]
    assert_refused(harness(*args, *where), expect)
    assert not results.exists()


def test_bench_steps_fit_the_training_set(tmp_path, capsys):
    # More steps than batches would time one epoch and divide it by the steps asked for.
    proc = harness_here(capsys, "bench", "mnist-mlp", "--steps", "3001", "--out", tmp_path / "bench.csv")
    assert_refused(proc, "--steps 3001: mnist-mlp has 3000 batches in its training set; allowed: 1 to 3000")
    assert list(tmp_path.iterdir()) == []


def test_absurd_options_are_refused_before_torch_loads():
    code = ("import sys; from harness.cli import main; "
            "status = main(['run', 'iris-mse', '--seeds', '0-999999999999']); print(status, 'torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=HANG)
    assert proc.stdout == "2 False\n", proc


def test_largest_seed_is_the_one_every_recipe_takes(tmp_path, capsys):
    # torch.manual_seed takes up to 2**64 - 1; iris's split goes through NumPy, which stops at 2**32 - 1.
    data = np.zeros((10, 1))
    train_test_split(data, test_size=0.5, random_state=MAX_SEED)
    with pytest.raises(ValueError):
        train_test_split(data, test_size=0.5, random_state=MAX_SEED + 1)
    reg, _ = registry_with(tmp_path, "iris-mse", "[thresholds]\ntest_acc = 0.90\n", "")
    assert main(["run", "iris-mse", "--seeds", str(MAX_SEED), "--epochs", "2", "--results-dir", str(tmp_path / "res"),
                 "--experiments-dir", str(reg)]) == 0, capsys.readouterr()


# ---------------------------------------------------------------------------------------------------
# Registry files


@pytest.mark.parametrize("base,old,new,expect", [
    ("iris-mse", "lr = 0.003", "lr = 1e308", "'optimizer.init_args.lr' is 1e+308; allowed: a number above 0, at most 10.0"),
    ("iris-mse", "lr = 0.003", "lr = 0", "'optimizer.init_args.lr' is 0; allowed: a number above 0, at most 10.0"),
    ("iris-mse", "test_fraction = 0.25", "test_fraction = 0.0", "'data.test_fraction' 0.0 holds out 0 of 150 samples"),
    ("iris-mse", "test_fraction = 0.25", "test_fraction = 0.06", "'data.test_fraction' 0.06 holds out 9 of 150 samples, leaving 141 to "
     "train; each side needs at least 10: allowed: about 0.06667 to 0.9333"),
    ("iris-mse", "test_fraction = 0.25", "test_fraction = 0.94", "'data.test_fraction' 0.94 holds out 141 of 150 samples, leaving 9 to "
     "train; each side needs at least 10: allowed: about 0.06667 to 0.9333"),
    ("iris-mse", "test_fraction = 0.25", "test_fraction = 0.999", "'data.test_fraction' 0.999 holds out 150 of 150 samples, leaving 0 to train"),
    ("mnist-cnn", 'dataset = "mnist"', 'dataset = "mnist"\nvalid_fraction = 0.99999', "'data.valid_fraction' 0.99999 holds out 60000 of 60000"),
    ("mnist-cnn", 'dataset = "mnist"', 'dataset = "mnist"\nvalid_fraction = 0.00001', "'data.valid_fraction' 1e-05 holds out 1 of 60000"),
    ("mnist-cnn", 'dataset = "mnist"', 'dataset = "mnist"\nsplit_seed = 4294967296', "'data.split_seed' is 4294967296; allowed: 0 to 4294967295"),
    ("mnist-cnn", 'dataset = "mnist"', 'dataset = "mnist"\nsplit_seed = -1', "'data.split_seed' is -1; allowed: 0 to 4294967295"),
    ("iris-mse", "epochs = 2000\nlog", "epochs = 99999999999999999999\nlog", "'training.epochs' is 99999999999999999999; allowed: 1 to 100000"),
    ("iris-mse", "[smoke]\nepochs = 2000", "[smoke]\nepochs = 100001", "'smoke.epochs' is 100001; allowed: 1 to 100000"),
    ("iris-mse", "log_every = 100", "log_every = 10000000", "'training.log_every' is 10000000; allowed: 1 to 100000"),
    ("mnist-cnn", "batch_size = 20", "batch_size = 100000000", "'training.batch_size' is 100000000; allowed: 1 to 60000 (the samples it trains on)"),
    ("mnist-cnn", "train_limit = 20000", "train_limit = 100000000", "'smoke.train_limit' is 100000000; allowed: 1 to 1000000"),
])
def test_recipe_values_that_would_fail_in_a_cell_are_refused_at_load(tmp_path, capsys, base, old, new, expect):
    reg, path = registry_with(tmp_path, base, old, new)
    assert_refused(harness_here(capsys, "list", "--experiments-dir", reg), str(path), expect)


@pytest.mark.parametrize("old,new", [("test_fraction = 0.25", "test_fraction = 0.066"),  # 10 held out, 140 to train
                                     ("test_fraction = 0.25", "test_fraction = 0.93"),   # 140 held out, 10 to train
                                     ("lr = 0.003", "lr = 10.0")])
def test_recipe_values_at_their_bounds_are_accepted(tmp_path, capsys, old, new):
    reg, _ = registry_with(tmp_path, "iris-mse", old, new)
    proc = harness_here(capsys, "list", "--experiments-dir", reg)
    assert proc.returncode == 0 and "iris-mse" in proc.stdout, proc


# What only building the recipe shows: `harness validate` (and `harness run`, before anything is written).
@pytest.mark.parametrize("base,old,new,expect", [
    ("iris-mse", "sizes = [4, 5, 1]", "sizes = [4, 100000000000, 1]", "[model] makes 600,000,000,001 parameters and 0 buffer "
     "values; allowed: at most 100,000,000 in all"),
    ("iris-ce", "sizes = [4, 5, 3]", "sizes = [4, 5, 1]", "[model] harness.models:mlp gives 1 outputs per sample, but iris has 3 "
     "classes: a classifier needs an output per class (3 or more)"),
    ("iris-mse", "sizes = [4, 5, 1]", "sizes = [4, 5, 3]", "[loss] torch.nn:MSELoss regresses the class index, so [model] must give "
     "1 output per sample, not 3"),
    ("mnist-cnn", 'class_path = "CrossEntropyLoss"', 'class_path = "MSELoss"', "must give 1 output per sample, not 10"),
    ("iris-mse", "sizes = [4, 5, 1]", "sizes = [3, 5, 1]", "a forward pass of [model] on a batch of shape (112, 4): RuntimeError: "
     "mat1 and mat2 shapes cannot be multiplied"),
    ("mnist-cnn", "momentum = 0.9", "momentum = -0.9", "building [optimizer] torch.optim:SGD: ValueError: Invalid momentum value: -0.9"),
    ("mnist-cnn", 'class_path = "harness.models:TutorialCNN"', 'class_path = "harness.models:TutorialCNN"\ninit_args = { dropout = 1.0 }',
     "building [model] harness.models:TutorialCNN: ValueError: dropout must be in [0, 1), got 1.0"),
])
def test_recipe_values_that_would_fail_in_a_cell_are_refused_before_training(tmp_path, capsys, mnist, base, old, new, expect):
    reg, path = registry_with(tmp_path, base, old, new)
    assert_refused(harness_here(capsys, "validate", "--experiments-dir", reg, "--data-dir", mnist), str(path), expect)
    results = tmp_path / "res"
    assert_refused(harness_here(capsys, "run", "--seeds", "0", "--epochs", "1", "--results-dir", results, "--experiments-dir", reg,
                                "--data-dir", mnist), str(path), expect)
    assert not results.exists()


@pytest.mark.slow
@pytest.mark.parametrize("old,new,name", [("lr = 0.003", "lr = 1e308", None), ('id = "iris-mse"', 'id = "=cmd"', "=cmd")])
def test_refused_recipe_runs_nothing(tmp_path, old, new, name):
    reg, _ = registry_with(tmp_path, "iris-mse", old, new, name=name)
    results = tmp_path / "res"
    assert_refused(harness("run", "--seeds", "0", "--results-dir", results, "--experiments-dir", reg))
    assert not results.exists()


@pytest.mark.slow
def test_every_registered_experiment_still_loads():
    assert len(load_registry(EXPERIMENTS)) == 13
    assert harness("list", "--variants").returncode == 0


NOT_A_TEXT_FILE = "not a regular file; an experiment is a TOML text file"


class Hung(Exception):
    """Raised by the alarm below: the refusal waited (on a FIFO's writer) instead of coming at once."""


@pytest.mark.parametrize("kind,expect", [
    ("fifo", NOT_A_TEXT_FILE),  # opening it for reading would wait for a writer forever
    ("link to /dev/zero", NOT_A_TEXT_FILE),  # reading it would never end
    ("directory", NOT_A_TEXT_FILE),
    ("huge", "2,147,483,648 bytes; an experiment file is at most 1,048,576"),
    ("one byte too many", "1,048,577 bytes; an experiment file is at most 1,048,576"),
    ("latin-1", "not UTF-8 text; save it as UTF-8"),
    ("dangling link", "cannot read: No such file or directory"),
    ("link to /proc/self/mem", "cannot read: Input/output error"),  # a regular file whose every read fails
])
def test_registry_file_that_is_not_a_small_regular_file_is_refused(tmp_path, capsys, kind, expect):
    reg, _ = registry_with(tmp_path, "iris-mse", "", "")
    path = reg / "other.toml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind.startswith("link to "):
        path.symlink_to(kind.removeprefix("link to "))
    elif kind == "directory":
        path.mkdir()
    elif kind == "huge":
        with open(path, "wb") as f:
            f.truncate(2 << 30)  # sparse: 2 GiB that take no disk
    elif kind == "one byte too many":
        path.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    elif kind == "latin-1":
        path.write_bytes('id = "other"\n# café\n'.encode("latin-1"))
    else:
        path.symlink_to(tmp_path / "nowhere.toml")

    def hung(*_):
        raise Hung(kind)

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(HANG)
    try:
        proc = harness_here(capsys, "list", "--experiments-dir", reg)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert_refused(proc)
    assert proc.stderr == f"harness: error: {path}: {expect}\n"


def test_registry_file_of_the_largest_size_loads_whole(tmp_path):
    _, path = registry_with(tmp_path, "iris-mse", "", "")
    text = path.read_text().rstrip("\n")  # its last byte is its last value's: a read one byte short would fail
    padding = "#" * (MAX_FILE_BYTES - len(text.encode()) - 1) + "\n"
    path.write_text(padding + text)
    assert path.stat().st_size == MAX_FILE_BYTES
    assert load_experiment(path).config_hash() == load_experiment(EXPERIMENTS / "iris-mse.toml").config_hash()


def test_registry_file_that_grew_after_its_size_was_read_is_read_no_further(tmp_path, monkeypatch):
    """A file written to between fstat and read (a sparse 64 MiB here, with fstat told it is 100 bytes):
    reading stops one byte past the limit, so what a file grows to is never all in memory."""
    reg, path = registry_with(tmp_path, "iris-mse", "", "")
    with open(path, "r+b") as f:
        f.truncate(64 << 20)
    real_fstat = os.fstat

    def fstat_before_it_grew(fd):
        info = real_fstat(fd)
        return os.stat_result((*info[:6], 100, *info[7:10]))

    monkeypatch.setattr(os, "fstat", fstat_before_it_grew)
    tracemalloc.start()
    try:
        with pytest.raises(HarnessError) as caught:
            load_registry(reg)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(caught.value) == f"{path}: more than 1,048,576 bytes; an experiment file is at most that"
    assert peak < 8 << 20, f"{peak:,} bytes held while refusing a file that grew to 64 MiB"


def test_deeply_nested_toml_is_one_line(tmp_path, capsys):
    reg, path = registry_with(tmp_path, "iris-mse", 'title = "', f"deep = {'[' * 5000}{']' * 5000}\ntitle = \"")
    proc = harness_here(capsys, "list", "--experiments-dir", reg)
    assert_refused(proc)
    assert proc.stderr == f"harness: error: {path}: not valid TOML: arrays or tables nested too deeply\n"


@pytest.mark.parametrize("new_id,expect", [
    ("=cmd", "'id' '=cmd' is not a plain name"),
    ("-rm", "'id' '-rm' is not a plain name"),
    ("+sum", "'id' '+sum' is not a plain name"),
    ("Iris-MSE", "'id' 'Iris-MSE' is not a plain name"),
    ("a" * 65, "is not a plain name: allowed: 1 to 64 of a-z 0-9 . _ -"),
    ("a" * 250, "is not a plain name"),  # its claim file's name would pass the file system's 255
    ("two\nlines", "'id' 'two\\nlines' is not a plain name"),  # the message stays on one line
])
def test_ids_are_plain_names(tmp_path, capsys, new_id, expect):
    reg, _ = registry_with(tmp_path, "iris-mse", 'id = "iris-mse"', f'id = "{new_id}"'.replace("\n", "\\n"), name=new_id)
    assert_refused(harness_here(capsys, "list", "--experiments-dir", reg), expect)


# ---------------------------------------------------------------------------------------------------
# Where the output goes


@pytest.mark.parametrize("out,expect", [
    ("file/bench.csv", "file is not a directory"),
    ("file/deeper/bench.csv", "cannot create it or its directory (Not a directory)"),
    (".", "is a directory; name the CSV file to write"),
    ("b" * 253 + ".c", "is too long; allowed: 255 bytes with its .png and .md"),  # the name fits, its .png would not
    ("b" * 300 + "/bench.csv", "cannot create it or its directory (File name too long)"),
])
@pytest.mark.slow
def test_bench_out_that_cannot_be_written_is_refused_before_measuring(tmp_path, out, expect):
    (tmp_path / "file").write_text("")
    assert_refused(harness("bench", "iris-mse", "--out", tmp_path / out), expect)


@pytest.mark.slow
def test_reader_gone_before_the_output_exits_quietly():
    # `harness list | head -1`, with the reader gone before anything was written.
    proc = subprocess.Popen([sys.executable, "-m", "harness", "list", "--variants"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=HANG) == 1 and err == ""


def test_closed_stdout_is_one_line():
    proc = subprocess.run(["bash", "-c", f"exec {sys.executable} -m harness list >&-"], cwd=ROOT, capture_output=True,
                          text=True, timeout=HANG)
    assert_refused(proc, "standard output is closed; redirect it instead")


@pytest.mark.slow
def test_full_stdout_is_one_line():
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "harness", "list"], cwd=ROOT, stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=HANG)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr == "harness: error: cannot write to standard output (No space left on device)\n"


@pytest.mark.slow
def test_stdout_that_cannot_encode_a_title_gets_escapes():
    proc = harness("list", env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.isascii()
    assert "\\u4f5c\\u3063\\u3066" in proc.stdout  # 作って, of T1's title


def test_the_seed_limit_is_inclusive_and_counted_without_listing():
    from harness.bounds import parse_seeds

    assert parse_seeds("0-999") == list(range(1000))  # exactly the limit: accepted
    assert parse_seeds("5,0-998") == list(range(999))  # repeats count towards it but are listed once
    # The count is taken from the ranges: refusing four billion seeds allocates next to nothing
    # (listing them first would take hundreds of megabytes).
    tracemalloc.start()
    with pytest.raises(HarnessError, match="names more than 1000 seeds"):
        parse_seeds(f"0-{MAX_SEED}")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1_000_000


# ---------------------------------------------------------------------------------------------------
# The same limits in process (what the command lines above reach through a subprocess)


@pytest.mark.parametrize("text,seeds", [("0-4", [0, 1, 2, 3, 4]), ("7,3,0", [0, 3, 7]), ("0-2, 9", [0, 1, 2, 9]), ("5", [5]),
                                        (f"{MAX_SEED}", [MAX_SEED])])
def test_seeds_parse(text, seeds):
    from harness.bounds import parse_seeds

    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text,message", [
    ("0-x", "--seeds: '0-x' is not a seed or range; use forms like 0-4 or 0,3,7"),
    ("0;3", "--seeds: '0;3' is not a seed or range"),
    (f"{MAX_SEED + 1}", f"--seeds: '{MAX_SEED + 1}' goes beyond the largest seed, {MAX_SEED} (2**32 - 1, what NumPy takes)"),
    ("0" * 11 + "1", "goes beyond the largest seed"),  # more digits than the largest seed, though a small number
    ("9-3", "--seeds: range '9-3' runs backwards; write it as 3-9"),
    ("0-999,1000", "--seeds '0-999,1000' names more than 1000 seeds; run at most 1000 at a time"),
])
def test_bad_seeds_are_named(text, message):
    from harness.bounds import parse_seeds

    with pytest.raises(HarnessError) as caught:
        parse_seeds(text)
    assert message in str(caught.value)


def test_counts_are_checked_inclusive_of_both_ends():
    from harness.bounds import check_count

    check_count("--runs", None, 10)  # not given
    check_count("--runs", 10, 10)  # the most allowed
    check_count("--warmup", 0, 10, least=0)
    with pytest.raises(HarnessError, match=r"^--runs 11 is beyond what a run can mean; allowed: 1 to 10$"):
        check_count("--runs", 11, 10)
    with pytest.raises(HarnessError, match=r"^--runs must be a positive integer, got 0$"):
        check_count("--runs", 0, 10)
    with pytest.raises(HarnessError, match=r"^--runs must be 2 or more, got 1$"):
        check_count("--runs", 1, 10, least=2)


def test_usable_cpus_without_affinity(monkeypatch):
    from harness import bounds

    monkeypatch.delattr(bounds.os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(bounds.os, "cpu_count", lambda: 6)
    assert bounds.usable_cpus() == 6
    monkeypatch.setattr(bounds.os, "cpu_count", lambda: None)  # unknown: one
    assert bounds.usable_cpus() == 1


def test_clipped_keeps_an_error_line_short():
    from harness.bounds import clipped

    assert clipped("0-4") == "0-4"
    assert clipped("x" * 40) == "x" * 40
    assert clipped("x" * 41) == "x" * 37 + "..." and len(clipped("y" * 500, 20)) == 20
