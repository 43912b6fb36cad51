"""The Makefile's two promises: `make all` trains elsewhere, reports, checks and ends with the comparison
(its status says whether runs and thresholds passed), and `make results` replaces the committed rows only
once they check. The harness is stood in for by a script that records its commands."""

import shutil
import subprocess

import pytest

from .conftest import ROOT


def make_all(tmp_path, *args, run_status=0, check_status=0):
    """`make all` with a stand-in for the harness that records its commands and exits as told."""
    fake = tmp_path / "harness"
    fake.write_text("#!/bin/sh\necho \"harness $*\"\n"
                    f"case $1 in run) exit {run_status};; check) exit {check_status};; compare) exit 1;; esac\n")
    fake.chmod(0o755)
    return subprocess.run(["make", "-s", "-o", "setup", "all", f"HARNESS={fake}", *args], capture_output=True, text=True, cwd=ROOT)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("results, compared", [(None, True), ("/tmp/elsewhere", True), ("results", False), ("./results/", False)])
def test_make_all_trains_elsewhere_and_ends_with_the_comparison(tmp_path, results, compared):
    done = make_all(tmp_path, *([f"RESULTS={results}"] if results else []))
    assert done.returncode == 0, done.stderr  # a difference (compare's exit 1) is printed, not failed
    where = results or "build/results"
    commands = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("harness ")]
    assert commands == ["run", "report", "check"] + (["compare"] if compared else [])
    assert f"--results-dir {where}" in done.stdout
    assert (f"harness compare results {where} --out {where}/COMPARE.txt" in done.stdout) == compared
    # Trained elsewhere, the report judges the re-made seeds with the committed ones not re-made.
    assert (f"harness report --results-dir {where} --add-seeds-from results" in done.stdout) == compared


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_all_fails_where_runs_or_thresholds_fail_and_stops_on_bad_input(tmp_path):
    failed_run = make_all(tmp_path, run_status=1)
    assert failed_run.returncode != 0 and "harness compare" in failed_run.stdout  # still reported and compared
    missed = make_all(tmp_path, check_status=1)
    assert missed.returncode != 0 and "harness compare" in missed.stdout
    bad_input = make_all(tmp_path, run_status=2)
    assert bad_input.returncode != 0 and "harness report" not in bad_input.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("check_status", [0, 1])
def test_make_results_remakes_the_committed_rows_only_once_they_check(tmp_path, check_status):
    """`make results` trains into its own directory, and its rows replace the committed ones only after
    `check` passed there; then the committed report is drawn again and checked."""
    committed, remake = tmp_path / "committed", tmp_path / "remake"
    committed.mkdir()
    for name in ("runs.csv", "epochs.csv", "trace.csv"):
        (committed / name).write_text("before\n")
    fake = tmp_path / "harness"
    fake.write_text("#!/bin/sh\necho \"harness $*\"\n"
                    "dir=$(echo \"$*\" | sed -n 's/.*--results-dir \\([^ ]*\\).*/\\1/p')\n"
                    "case $1 in run) mkdir -p \"$dir\"; for f in runs epochs trace; do echo remade > \"$dir/$f.csv\"; done;;\n"
                    f"  check) [ \"$dir\" = \"{remake}\" ] && exit {check_status};; esac\nexit 0\n")
    fake.chmod(0o755)
    done = subprocess.run(["make", "-s", "-o", "setup", "results", f"HARNESS={fake}", f"REMAKE={remake}", f"COMMITTED={committed}"],
                          capture_output=True, text=True, cwd=ROOT)
    commands = [" ".join(line.split()[1:2] + [line.split("--results-dir ")[1].split()[0]])
                for line in done.stdout.splitlines() if line.startswith("harness ")]
    if check_status:
        assert done.returncode != 0 and commands == [f"run {remake}", f"run {remake}", f"check {remake}"]
        assert (committed / "runs.csv").read_text() == "before\n"  # nothing replaced
    else:
        assert done.returncode == 0, done.stderr
        assert commands == [f"run {remake}", f"run {remake}", f"check {remake}", f"report {committed}", f"check {committed}"]
        assert all((committed / f"{name}.csv").read_text() == "remade\n" for name in ("runs", "epochs", "trace"))
        assert "--dataset fashion-mnist --seeds 0-4" in done.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("args, checked", [([], ""), (["EXPERIMENTS=iris-ce iris-mse"], "iris-ce iris-mse"),
                                           (["EXPERIMENTS=mnist-mlp", "DATASET=fashion-mnist"], "mnist-mlp --dataset fashion-mnist")])
def test_make_all_checks_what_it_ran(tmp_path, args, checked):
    """`make all EXPERIMENTS=...` checks those experiments (another's missing results fail nothing)."""
    done = make_all(tmp_path, *args)
    (check,) = [line for line in done.stdout.splitlines() if line.startswith("harness check")]
    assert check.split("--results-dir build/results")[1].strip() == checked
