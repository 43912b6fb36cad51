"""What a recipe file, the code beside it and a results directory may do to the harness, tried from the
command line as a careless or hostile user would: a recipe is data and cannot act, user code cannot fake
success, one bad row cannot lock a directory (docs/recipes.md, "What a recipe may name"; docs/results-files.md).

Every test runs `python -m harness` in a process of its own and asserts what must hold afterwards: the file
a recipe aimed at still there, the exit status, the one-line message, the rows."""

import csv
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.cli import main

from .conftest import ROOT
from .test_hostile import fill, small_disk  # noqa: F401 (a fixture)

IRIS_MSE = (ROOT / "experiments" / "iris-mse.toml").read_text()
MLP = 'class_path = "harness.models:mlp"\ninit_args = { sizes = [4, 5, 1], activation = "sigmoid" }'
QUICK = ("--epochs", "2")
# A model of iris-mse's shape, beside the recipe; `{forward}` is what its forward pass does first (its
# first call is `harness validate`'s, every later one is training's).
NET = '''import os, sys
from torch import nn

CALLS = [0]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(4, 1)

    def forward(self, x):
        CALLS[0] += 1
        if CALLS[0] > 1:
            {forward}
        return self.layer(x)
'''


def cli(*args, timeout=300, env=None):
    """`harness ARGS` as a user's shell runs it: where the process's own exit status is the point."""
    return subprocess.run([sys.executable, "-m", "harness", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def here(capsys, *args):
    """`harness ARGS` through the same entry point in this process (seconds quicker than a new one)."""
    try:
        status = main([str(a) for a in args])
    except SystemExit as e:  # argparse's own exit
        status = e.code
    out, err = capsys.readouterr()
    return SimpleNamespace(returncode=status, stdout=out, stderr=err)


def assert_one_line(proc, status, *expected):
    assert proc.returncode == status, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    err = proc.stderr
    assert err.startswith("harness") and ": error: " in err and err.count("\n") == 1, err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, err


def recipe(directory, model=MLP, net=None, name="iris-mse", **replace):
    """iris-mse (without thresholds) in `directory`, its [model] section's body replaced by `model`, other
    text replaced as `replace` says (old=new), with `net` (the text of net.py) beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    text = IRIS_MSE.replace("[thresholds]\ntest_acc = 0.90\n", "").replace(MLP, model).replace('id = "iris-mse"', f'id = "{name}"')
    for old, new in replace.values():
        assert old in text, old
        text = text.replace(old, new)
    (directory / f"{name}.toml").write_text(text)
    if net is not None:
        (directory / "net.py").write_text(net)
    return directory


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def victim(tmp_path):
    """A folder with a file in it, which no recipe may delete or add to."""
    folder = tmp_path / "victim"
    folder.mkdir()
    (folder / "keep.txt").write_text("keep me\n")
    return folder


def unchanged(victim):
    return sorted(p.name for p in victim.iterdir()) == ["keep.txt"] and (victim / "keep.txt").read_text() == "keep me\n"


# ---------------------------------------------------------------------------------------------------
# 1. A TOML file alone cannot run code: what it names is judged by what it is and where it is defined


def hostile_cases(victim, tmp_path):
    pth = Path(site.getsitepackages()[0]) / "harness-test-hostile.pth"
    return {
        # functions a namespace imports from elsewhere, reached by a name inside it
        "delete a tree": ("model", 'class_path = "sklearn.datasets:clear_data_home"\ninit_args = { data_home = "%s" }' % victim),
        "delete a file": ("model", 'class_path = "sklearn.datasets._lfw:remove"\ninit_args = { path = "%s" }' % (victim / "keep.txt")),
        "make a folder": ("model", 'class_path = "sklearn.datasets._base:makedirs"\ninit_args = { name = "%s" }' % (victim / "new")),
        "copy a .pth into site-packages": (
            "model", 'class_path = "sklearn.datasets._base:urlretrieve"\ninit_args = { url = "file://%s", filename = "%s" }'
            % (tmp_path / "reg" / "iris-mse.toml", pth)),
        # inside the allowed namespaces, yet not what the slot takes
        "a function of torchvision.datasets": ("model", 'class_path = "torchvision.datasets.utils:extract_archive"\n'
                                                        'init_args = { from_path = "%s", remove_finished = true }' % (victim / "keep.txt")),
        "a private class": ("model", 'class_path = "torch.nn.modules.loss:_Loss"'),
        "a test module": ("model", 'class_path = "torch.nn.tests:Linear"'),
        "a class of the wrong kind": ("model", 'class_path = "torch.nn:Parameter"'),
    }


@pytest.mark.parametrize("case", ["delete a tree", "delete a file", "make a folder", "copy a .pth into site-packages",
                                  "a function of torchvision.datasets", "a private class", "a test module", "a class of the wrong kind"])
def test_a_recipe_cannot_name_what_would_act(tmp_path, capsys, victim, case):
    key, model = hostile_cases(victim, tmp_path)[case]
    reg = recipe(tmp_path / "reg", model)
    for command in (["validate"], ["run", "--seeds", "0", *QUICK, "--results-dir", tmp_path / "res"], ["list"]):
        proc = here(capsys, *command, "--experiments-dir", reg)
        assert_one_line(proc, 2, f"{reg / 'iris-mse.toml'}: '{key}.class_path'", "allowed: a torch.nn.Module class from "
                        "harness.models or torch.nn, the function harness.models:mlp, or a class or function defined in a module "
                        "beside the recipe")
    assert unchanged(victim) and not (tmp_path / "res").exists()
    assert not (Path(site.getsitepackages()[0]) / "harness-test-hostile.pth").exists()


@pytest.mark.parametrize("section,old,new,expect", [
    ("loss", 'class_path = "MSELoss"', 'class_path = "sklearn.datasets:clear_data_home"\ninit_args = { data_home = "VICTIM" }',
     "'loss.class_path': module 'sklearn.datasets' is not beside the recipe"),
    ("loss", 'class_path = "MSELoss"', 'class_path = "torch.nn.functional:mse_loss"',
     "'loss.class_path' 'torch.nn.functional:mse_loss' is a function, which a recipe may name only beside it"),
    ("optimizer", 'class_path = "SGD"', 'class_path = "torch.nn:Linear"',
     "'optimizer.class_path': module 'torch.nn' is not beside the recipe"),
    ("optimizer", 'class_path = "SGD"', 'class_path = "torch.optim.lr_scheduler:LambdaLR"',
     "'optimizer.class_path' 'torch.optim.lr_scheduler:LambdaLR' is a class, but not a torch.optim.Optimizer"),
    ("data", 'dataset = "iris"', 'dataset = "torchvision.datasets.utils:download_url"',
     "'data.dataset' 'torchvision.datasets.utils:download_url' is a function"),
])
def test_every_slot_takes_only_its_own_kind(tmp_path, capsys, victim, section, old, new, expect):
    reg = recipe(tmp_path / "reg", edit=(old, new.replace("VICTIM", str(victim))))
    proc = here(capsys, "run", "--seeds", "0", *QUICK, "--results-dir", tmp_path / "res", "--experiments-dir", reg)
    assert_one_line(proc, 2, expect, "allowed: ")
    assert unchanged(victim) and not (tmp_path / "res").exists()


def test_user_module_reaches_only_what_it_defines(tmp_path, capsys, victim):
    """A module beside the recipe is trusted code, but the TOML may name only what that module defines (or
    what the slot would take anyway): not the functions it imports."""
    net = "from shutil import rmtree\nfrom torch.nn import Linear\n"
    reg = recipe(tmp_path / "reg", 'class_path = "net:rmtree"\ninit_args = { path = "%s" }' % victim, net=net)
    proc = here(capsys, "validate", "--experiments-dir", reg)
    assert_one_line(proc, 2, "'model.class_path' 'net:rmtree' is shutil.rmtree, defined outside harness.models and torch.nn "
                    "and the recipe's own modules; allowed:")
    assert unchanged(victim)
    recipe(tmp_path / "reg", 'class_path = "net:Linear"\ninit_args = { in_features = 4, out_features = 1 }', net=net)
    assert here(capsys, "validate", "--experiments-dir", reg).returncode == 0  # torch.nn's class, reached through the module


# ---------------------------------------------------------------------------------------------------
# 2. An oversized message cannot lock the results directory


@pytest.mark.slow
def test_a_huge_exception_message_is_bounded_and_an_old_one_costs_its_row_only(tmp_path, capsys):
    reg = recipe(tmp_path / "reg", 'class_path = "net:Net"', net=NET.format(forward='raise ValueError("x" * 300_000)'))
    results = tmp_path / "res"
    proc = cli("run", "--seeds", "0", *QUICK, "--results-dir", results, "--experiments-dir", reg)
    assert proc.returncode == 1, proc.stderr
    [row] = rows(results / "runs.csv")
    assert row["status"] == "error" and row["message"].startswith(f"{reg / 'net.py'}:15: ValueError: xxx")
    assert len(row["message"]) <= 1000
    # A row an earlier version wrote with a 300 KB message: refused alone, the rest still counted.
    recipe(tmp_path / "reg", 'class_path = "net:Net"', net=NET.format(forward="pass"))
    assert cli("run", "--seeds", "1", *QUICK, "--results-dir", results, "--experiments-dir", reg).returncode == 0
    text = (results / "runs.csv").read_text()
    (results / "runs.csv").write_text(text.replace(row["message"], "y" * 300_000))
    proc = here(capsys, "report", "--results-dir", results, "--experiments-dir", reg)
    assert proc.returncode == 0, proc.stderr
    assert "1 of 2 row(s) in" in (results / "REPORT.md").read_text()
    proc = here(capsys, "compare", results, results, "--experiments-dir", reg)
    assert proc.returncode == 0 and "1 of 1 cells bit for bit" in proc.stdout and "1 of 2 row(s) in" in proc.stdout, proc.stdout
    proc = here(capsys, "check", "--results-dir", results, "--experiments-dir", reg)
    assert proc.returncode == 1 and "line 2: run" in proc.stdout and "message has 300,000 characters; the harness writes at most 1,000" \
        in proc.stdout and len(proc.stdout) < 2000
    proc = cli("run", "--seeds", "0-1", *QUICK, "--results-dir", results, "--experiments-dir", reg)
    assert proc.returncode == 0 and "skipping 1 finished run(s)" in proc.stdout, proc.stdout


# ---------------------------------------------------------------------------------------------------
# 3. weights/ is the harness's own folder: a link there is refused


def test_weights_folder_linked_elsewhere_is_refused(tmp_path, capsys, victim):
    reg = recipe(tmp_path / "reg")
    results = tmp_path / "res"
    results.mkdir()
    (results / "weights").symlink_to(victim)
    proc = here(capsys, "run", "--seeds", "0", *QUICK, "--save-weights", "--results-dir", results, "--experiments-dir", reg)
    assert_one_line(proc, 2, f"{results / 'weights'}: is a symbolic link", "remove the link")
    assert unchanged(victim) and not (results / "runs.csv").exists()


def test_swapped_and_orphaned_weights_fail_check(tmp_path, capsys):
    reg = recipe(tmp_path / "reg")
    results = tmp_path / "res"
    assert here(capsys, "run", "--seeds", "0-1", *QUICK, "--save-weights", "--results-dir", results, "--experiments-dir", reg).returncode == 0
    assert here(capsys, "check", "--results-dir", results, "--experiments-dir", reg).returncode == 0
    a, b = (results / "weights" / f"{r['run_id']}.pt" for r in rows(results / "runs.csv"))
    a_bytes = a.read_bytes()
    a.write_bytes(b.read_bytes())
    b.write_bytes(a_bytes)
    shutil.copy(a, results / "weights" / "0123456789ab.pt")
    proc = here(capsys, "check", "--results-dir", results, "--experiments-dir", reg)
    assert proc.returncode == 1
    failures = proc.stdout.splitlines()
    assert len(failures) == 3, failures
    assert f"FAIL {a}: its weights have SHA-256" in proc.stdout and f"FAIL {b}: its weights have SHA-256" in proc.stdout
    assert f"FAIL {results / 'weights' / '0123456789ab.pt'}: weights of run 0123456789ab, which has no row in runs.csv" in proc.stdout


# ---------------------------------------------------------------------------------------------------
# 4. One rule for which rows count: what `check` refuses, no command counts


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    home = tmp_path_factory.mktemp("two-runs")
    reg = recipe(home / "reg")
    assert cli("run", "--seeds", "0-1", *QUICK, "--results-dir", home / "res", "--experiments-dir", reg).returncode == 0
    return reg, home / "res"


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["a figure edited", "epochs.csv cut short"])
def test_a_row_check_refuses_is_neither_reported_compared_nor_skipped(tmp_path, capsys, two_runs, damage):
    reg, original = two_runs
    results = tmp_path / "res"
    shutil.copytree(original, results)
    first = rows(results / "runs.csv")[0]
    if damage == "a figure edited":
        text = (results / "runs.csv").read_text()
        edited = text.replace(f",{first['test_acc']},", ",0.123,", 1)  # in the first row (perhaps its train_acc)
        assert edited != text
        (results / "runs.csv").write_text(edited)
    else:  # the first run's last epoch row gone, as a copy cut short would leave it
        lines = (results / "epochs.csv").read_text().splitlines(keepends=True)
        last = max(i for i, line in enumerate(lines) if line.startswith(first["run_id"]))
        (results / "epochs.csv").write_text("".join(lines[:last] + lines[last + 1:]))
    check = here(capsys, "check", "--results-dir", results, "--experiments-dir", reg)
    assert check.returncode == 1 and f"FAIL {results / 'runs.csv'} line 2: run {first['run_id']}" in check.stdout, check.stdout
    report = here(capsys, "report", "--results-dir", results, "--experiments-dir", reg)
    assert report.returncode == 0
    text = (results / "REPORT.md").read_text()
    assert "1 of 2 row(s) in" in text and "refused" in text
    compare = here(capsys, "compare", original, results, "--experiments-dir", reg)
    assert "1 of 2 row(s) in" in compare.stdout and "refused" in compare.stdout, compare.stdout
    run = here(capsys, "run", "--seeds", "0-1", *QUICK, "--results-dir", results, "--experiments-dir", reg)
    assert run.returncode == 0 and "1 row(s) in" in run.stdout and "skipping 1 finished run(s)" in run.stdout, run.stdout
    assert len(rows(results / "runs.csv")) == 3  # seed 0 trained again


# ---------------------------------------------------------------------------------------------------
# 5. User code's exits are errors, never a silent success


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("forward,shown", [
    ("raise SystemExit(0)", "SystemExit(0): the code called sys.exit"),
    ("sys.exit(3)", "SystemExit(3): the code called sys.exit"),
    ("raise KeyboardInterrupt", "KeyboardInterrupt raised by the code itself, not by Ctrl-C"),
])
@pytest.mark.slow
def test_an_exit_while_training_is_an_error_row_and_the_matrix_goes_on(tmp_path, forward, shown, jobs):
    reg = recipe(tmp_path / "reg", 'class_path = "net:Net"', net=NET.format(forward=forward))
    results = tmp_path / "res"
    proc = cli("run", "--seeds", "0-2", *QUICK, "--jobs", jobs, "--results-dir", results, "--experiments-dir", reg)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "interrupted" not in proc.stderr
    written = rows(results / "runs.csv")
    assert sorted(r["seed"] for r in written) == ["0", "1", "2"]  # every seed tried
    assert all(r["status"] == "error" and f"{reg / 'net.py'}:15: {shown}" in r["message"] for r in written), written


@pytest.mark.slow
def test_os_exit_in_a_worker_is_an_error_row(tmp_path):
    reg = recipe(tmp_path / "reg", 'class_path = "net:Net"', net=NET.format(forward="os._exit(0)"))
    results = tmp_path / "res"
    proc = cli("run", "--seeds", "0-1", *QUICK, "--jobs", "2", "--results-dir", results, "--experiments-dir", reg)
    assert proc.returncode == 1
    written = rows(results / "runs.csv")
    assert len(written) == 2 and all(r["status"] == "error" and "the worker process training it ended without a result" in r["message"]
                                     for r in written)


@pytest.mark.slow
@pytest.mark.parametrize("exit_call,shown", [("sys.exit(0)", "SystemExit(0)"), ("sys.exit(3)", "SystemExit(3)"),
                                             ("raise KeyboardInterrupt", "KeyboardInterrupt raised by the code itself")])
def test_an_exit_at_import_fails_every_command(tmp_path, exit_call, shown):
    reg = recipe(tmp_path / "reg", 'class_path = "net:Net"', net=f"import sys\n{exit_call}\n")
    results = tmp_path / "res"
    for command in (["validate"], ["list"], ["run", "--seeds", "0", *QUICK, "--results-dir", results], ["check"]):
        proc = cli(*command, "--experiments-dir", reg)
        assert_one_line(proc, 2, f"{reg / 'net.py'}:2: {shown}", "(raised importing 'net' for 'model.class_path')")
    assert not results.exists()


# ---------------------------------------------------------------------------------------------------
# 6. A package linked into the registry directory is part of the code digest


@pytest.mark.slow
def test_a_linked_package_is_hashed_and_an_edit_to_it_makes_rows_stale(tmp_path):
    package = tmp_path / "elsewhere" / "models"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "net.py").write_text(NET.format(forward="pass"))
    reg = recipe(tmp_path / "reg", 'class_path = "models.net:Net"')
    (reg / "models").symlink_to(package)
    results = tmp_path / "res"
    assert cli("run", "--seeds", "0", *QUICK, "--results-dir", results, "--experiments-dir", reg).returncode == 0
    [row] = rows(results / "runs.csv")
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert row["code_sha256"] not in ("", empty)
    (package / "net.py").write_text(NET.format(forward="pass") + "# edited\n")
    check = cli("check", "--results-dir", results, "--experiments-dir", reg)
    assert check.returncode == 1 and "is stale" in check.stdout
    run = cli("run", "--seeds", "0", *QUICK, "--results-dir", results, "--experiments-dir", reg)
    assert run.returncode == 0 and "skipping" not in run.stdout and len(rows(results / "runs.csv")) == 2


# ---------------------------------------------------------------------------------------------------
# 7. The size guard counts buffers


@pytest.mark.slow
def test_a_model_of_huge_buffers_is_refused_before_it_is_allocated(tmp_path):
    reg = recipe(tmp_path / "reg", 'class_path = "torch.nn:BatchNorm1d"\ninit_args = { num_features = 3000000000, affine = false }')
    proc = cli("validate", "--experiments-dir", reg)
    assert_one_line(proc, 2, "[model] makes 0 parameters and 6,000,000,001 buffer values; allowed: at most 100,000,000 in all")


# ---------------------------------------------------------------------------------------------------
# 8. Code files are read as recipes are: small regular files only


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "huge"])
def test_a_code_file_that_is_not_a_small_text_file_is_refused(tmp_path, kind):
    reg = recipe(tmp_path / "reg", 'class_path = "net:Net"', net=NET.format(forward="pass"))
    other = reg / "other.py"
    if kind == "fifo":
        os.mkfifo(other)
    elif kind == "/dev/zero":
        other.symlink_to("/dev/zero")
    else:
        with open(other, "wb") as f:
            f.truncate(2 << 20)
    proc = cli("list", "--experiments-dir", reg, timeout=120)  # before, a FIFO hung here and /dev/zero filled memory
    expect = "2,097,152 bytes; a module beside a recipe is at most 1,048,576" if kind == "huge" else \
        "not a regular file; a module beside a recipe is a Python text file"
    assert_one_line(proc, 2, f"{other}: {expect}")


# ---------------------------------------------------------------------------------------------------
# 9. `harness new` never writes through a link


@pytest.mark.parametrize("which", ["recipe", "model"])
def test_new_refuses_a_dangling_link_at_either_file(tmp_path, capsys, which):
    reg = tmp_path / "reg"
    reg.mkdir()
    target = tmp_path / "elsewhere.txt"
    (reg / ("mine.toml" if which == "recipe" else "mine_model.py")).symlink_to(target)
    proc = here(capsys, "new", "mine", "--experiments-dir", reg)
    assert_one_line(proc, 2, "already exists")
    assert not target.exists() and sorted(p.name for p in reg.iterdir()) == ["mine.toml" if which == "recipe" else "mine_model.py"]


# ---------------------------------------------------------------------------------------------------
# The weaker items, each one line


@pytest.mark.parametrize("args", [["run", "iris-mse", "--results-dir", ""], ["report", "--results-dir", ""], ["check", "--results-dir", ""],
                                  ["bench", "iris-mse", "--out", ""], ["compare", "", "results"]])
def test_an_empty_path_is_refused(tmp_path, args):
    proc = subprocess.run([sys.executable, "-m", "harness", *args], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HARNESS_EXPERIMENTS": str(ROOT / "experiments")})
    assert_one_line(proc, 2, "an empty path; name a directory or file")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["check", "report"])
def test_check_and_report_touch_no_directory_that_holds_no_results(tmp_path, capsys, command):
    plain = tmp_path / "plain"
    plain.mkdir()
    proc = here(capsys, command, "--results-dir", plain)
    assert_one_line(proc, 2, f"{plain}: no runs.csv in it; name a results directory that `harness run` wrote")
    assert list(plain.iterdir()) == []
    proc = here(capsys, command, "--results-dir", tmp_path / "missing")
    assert_one_line(proc, 2, f"{tmp_path / 'missing'}: no such directory")
    assert not (tmp_path / "missing").exists()


def test_a_table_resaved_with_a_byte_order_mark_and_other_line_ends_counts_the_same(tmp_path, capsys, two_runs):
    reg, original = two_runs
    for ending in (b"\r\n", b"\r"):
        results = tmp_path / f"res{len(ending)}"
        shutil.copytree(original, results)
        for table in ("runs.csv", "epochs.csv", "trace.csv"):
            path = results / table
            if path.exists():
                path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", ending))
        assert here(capsys, "check", "--results-dir", results, "--experiments-dir", reg).returncode == 0
        compare = here(capsys, "compare", original, results, "--experiments-dir", reg)
        assert compare.returncode == 0 and "2 of 2 cells bit for bit" in compare.stdout, compare.stdout
        run = here(capsys, "run", "--seeds", "0-2", *QUICK, "--results-dir", results, "--experiments-dir", reg)
        assert run.returncode == 0 and "skipping 2 finished run(s)" in run.stdout, run.stdout + run.stderr
        assert len(rows(results / "runs.csv")) == 3


def test_a_full_disk_while_claiming_is_one_line_and_leaves_no_claim(capsys, small_disk):  # noqa: F811
    reg = recipe(small_disk.parent / "reg")
    results = small_disk / "res"
    assert here(capsys, "run", "--seeds", "0", *QUICK, "--results-dir", results, "--experiments-dir", reg).returncode == 0
    fill(small_disk / "filler")
    proc = here(capsys, "run", "--seeds", "1", *QUICK, "--results-dir", results, "--experiments-dir", reg)
    assert_one_line(proc, 2, "No space left on device")
    assert list((results / ".claims").iterdir()) == []


@pytest.mark.parametrize("body,expect", [
    ('import numpy as np\n\ndef load():\n    x = np.zeros((20, 4), dtype="float32")\n    return {"train": (x, ["a", "b"] * 10), "test": (x, ["a"] * 20)}\n',
     "the labels of 'train' are <U1 values, not numbers"),
])
def test_a_dataset_of_strings_is_one_line(tmp_path, capsys, body, expect):
    reg = recipe(tmp_path / "reg", edit=('dataset = "iris"\ntest_fraction = 0.25', 'dataset = "data:load"'))
    (reg / "data.py").write_text(body)
    assert_one_line(here(capsys, "validate", "--experiments-dir", reg), 2, expect)


def test_a_5000_digit_integer_and_a_nan_delta_are_one_line(tmp_path, capsys):
    reg = recipe(tmp_path / "reg", edit=("seeds = 50", "seeds = " + "9" * 5000))
    assert_one_line(here(capsys, "list", "--experiments-dir", reg), 2, "an integer of more than 4,300 digits")
    for delta in ("nan", "inf", "0", "-0.1"):
        assert_one_line(here(capsys, "plan", "iris-mse", "--delta", delta), 2, "--delta must be a number above 0")


def test_escape_codes_never_reach_the_terminal_raw(tmp_path, capsys):
    source = """source = 'T1 "作って試そう！ディープラーニング工作室" (@IT Deep Insider, 2020), #2'"""
    reg = recipe(tmp_path / "reg", edit=(source, 'source = "\\u001b[2Jsource"'))
    proc = here(capsys, "list", "--experiments-dir", reg)
    assert proc.returncode == 0 and "\x1b" not in proc.stdout and "\\x1b[2Jsource" in proc.stdout, proc.stdout
    named = tmp_path / "\x1b]0;pwned\x07"
    named.mkdir()
    proc = here(capsys, "check", "--results-dir", named)
    assert "\x1b" not in proc.stdout + proc.stderr and "\\x1b]0;pwned\\x07" in proc.stderr
