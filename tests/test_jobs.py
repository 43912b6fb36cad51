"""`harness run --jobs N`: cells in worker processes give the rows one process gives; faults are handled."""

import csv
import multiprocessing
import os
from pathlib import Path

import pytest
import torch

from harness.cli import main
from harness.options import RunOptions
from harness.runner import Cell, InProcesses

METRICS = ["train_loss", "train_acc", "valid_loss", "valid_acc", "test_loss", "test_acc"]
QUICK = ["iris-ce", "iris-mse", "--seeds", "0-2", "--epochs", "100"]


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def metrics_by_cell(rows):
    return {(r["experiment"], r["seed"]): [r[m] for m in METRICS] for r in rows}


@pytest.mark.slow
def test_jobs_rows_match_one_process_with_the_same_threads(tmp_path, capsys):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # what each of two workers gets on two cores; below, the workers' own count
    try:
        assert main(["run", *QUICK, "--results-dir", str(tmp_path / "one")]) == 0
    finally:
        torch.set_num_threads(threads)
    assert main(["run", *QUICK, "--jobs", "2", "--results-dir", str(tmp_path / "two")]) == 0
    assert "[6/6 runs (100%)]" in capsys.readouterr().out
    one, two = read(tmp_path / "one" / "runs.csv"), read(tmp_path / "two" / "runs.csv")
    assert metrics_by_cell(two) == metrics_by_cell(one)
    assert {r["threads"] for r in two} == {str(max(1, threads // 2))}
    # Finished cells are skipped as with one process.
    assert main(["run", *QUICK, "--jobs", "2", "--results-dir", str(tmp_path / "two")]) == 0
    assert len(read(tmp_path / "two" / "runs.csv")) == 6


class DiesWhenUnpickled:
    """An experiment whose worker process dies as it receives the cell (as if killed mid-run)."""

    def __init__(self, exp):
        self.exp = exp

    def __getattr__(self, name):
        return getattr(self.exp, name)

    def __reduce__(self):
        return os._exit, (1,)


def running_children() -> list[int]:
    """The pids of this process's multiprocessing children that the system still has. Asked of /proc, not
    of multiprocessing alone: a child reaped outside Python's waitpid stays "started" there for ever."""
    return [w.pid for w in multiprocessing.active_children() if Path(f"/proc/{w.pid}").exists()]


@pytest.mark.slow
def test_a_dead_worker_is_an_error_row_and_the_rest_go_on(registry):
    exp = registry["iris-mse"]
    cells = [Cell(DiesWhenUnpickled(exp), (0,), "cpu")] + [Cell(exp, (s,), "cpu") for s in (1, 2, 3)]
    results = list(InProcesses(jobs=2, threads=1)(iter(cells), "fast", RunOptions(epochs=100), log=lambda _: None))
    by_seed = {cell.seeds[0]: rows[0][0] for cell, rows in results}
    assert sorted(by_seed) == [0, 1, 2, 3]
    assert by_seed[0]["status"] == "error" and "the worker process training it ended without a result" in by_seed[0]["message"]
    assert by_seed[3]["status"] == "ok"  # taken after the death, by a new pool
    assert running_children() == []  # the broken pool's other worker ended with it, not later


@pytest.mark.slow
def test_closing_the_executor_stops_its_workers(registry):
    exp = registry["iris-mse"]
    execute = InProcesses(jobs=2, threads=1)(iter([Cell(exp, (s,), "cpu") for s in range(6)]), "fast", RunOptions(),
                                            log=lambda _: None)
    next(execute)
    assert len(running_children()) == 2
    execute.close()  # what an interruption of the driver does
    assert running_children() == []


def test_jobs_refused_with_ray_and_when_not_positive(tmp_path, capsys):
    assert main(["run", "iris-mse", "--jobs", "0", "--results-dir", str(tmp_path)]) == 2
    assert "--jobs must be a positive integer" in capsys.readouterr().err
    assert main(["run", "iris-mse", "--jobs", "2", "--executor", "ray", "--results-dir", str(tmp_path)]) == 2
    assert "--jobs applies to --executor local only" in capsys.readouterr().err
