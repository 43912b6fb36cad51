"""Progress over a matrix: the counts narrow as claims drop seeds, the estimate rests on each recipe's
cost, and a terminal gets a bar while a log gets plain lines."""

import io
import time

import pytest

from harness.options import RunOptions
from harness.progress import MatrixProgress, duration, work
from harness.registry import load_registry
from harness.runner import Cell, run_matrix

REGISTRY = load_registry()
IRIS, MLP = REGISTRY["iris-ce"], REGISTRY["mnist-mlp"]
OPTIONS = RunOptions(epochs=2)


def label(cell):
    return f"{cell.experiment.id} seeds {cell.seeds}"


def ok_runs(seeds, wall):
    return [{"status": "ok", "wall_time_s": wall, "seed": s} for s in seeds]


def quiet(**kwargs):
    return MatrixProgress(kwargs.pop("cells"), OPTIONS, label, log=kwargs.pop("log", lambda line: None), every_s=0,
                          terminal=False, **kwargs)


def test_duration_reads_as_a_person_would():
    assert [duration(s) for s in (0, 59.4, 61, 3599, 3600, 7322)] == ["0s", "59s", "1m01s", "59m59s", "1h00m", "2h02m"]


def test_work_is_seeds_times_epochs_times_training_samples():
    cell = Cell(IRIS, (0, 1, 2), "cpu")
    assert work(cell, OPTIONS) == 3 * 2 * 112  # iris keeps 112 of 150 to train
    assert work(cell, RunOptions(epochs=2, train_limit=10)) == 3 * 2 * 10


def test_estimate_uses_the_rates_known_beforehand_and_says_when_it_guesses():
    iris, mlp = Cell(IRIS, (0, 1), "cpu"), Cell(MLP, (0,), "cpu")
    progress = quiet(cells=[iris, mlp], known_rates={"iris-ce": [1e-3, 3e-3, 2e-3]})
    left, guessed = progress.estimate()
    # iris at its median known rate; mnist-mlp has none, so it borrows the median of the known ones: a guess
    assert left == pytest.approx(2e-3 * (work(iris, OPTIONS) + work(mlp, OPTIONS)))
    assert guessed
    assert progress.status(with_cells=False)[1].endswith(" left") and "~" in progress.status()[1]

    nothing_known = quiet(cells=[iris])
    assert nothing_known.estimate() == (None, True)
    assert "time left unknown" in nothing_known.line()


def test_claims_that_drop_seeds_narrow_the_total_and_finished_cells_count():
    iris, mlp = Cell(IRIS, (0, 1, 2), "cpu"), Cell(MLP, (0, 1), "cpu")
    progress = quiet(cells=[iris, mlp])
    assert progress.status()[0] == "0/5 runs (0%)"

    # another process holds seed 2 of iris: it leaves this matrix; mnist-mlp is finished elsewhere
    claimed = Cell(IRIS, (0, 1), "cpu")
    progress.started(iris, claimed)
    progress.started(mlp, Cell(MLP, (), "cpu"))
    assert progress.status()[0] == "0/2 runs (0%)"
    assert "now: iris-ce seeds (0, 1)" in progress.line()

    progress.finished(claimed, ok_runs((0, 1), 0.5))
    counts, rest = progress.status()
    assert counts == "2/2 runs (100%)"
    assert "left" not in rest and "now:" not in rest
    # the measured rate is what the run took over the work of the seeds it claimed
    assert progress.rate("iris-ce") == (pytest.approx(1.0 / work(claimed, OPTIONS)), False)


def test_a_failed_run_counts_as_done_but_teaches_no_rate():
    cell = Cell(IRIS, (0,), "cpu")
    progress = quiet(cells=[cell])
    progress.started(cell, cell)
    progress.finished(cell, [{"status": "diverged", "wall_time_s": 3.0}])
    assert progress.done_runs == 1 and progress.measured == {}


def test_the_estimate_scales_with_how_fast_the_work_went():
    first, second = Cell(IRIS, (0,), "cpu"), Cell(IRIS, (1,), "cpu")
    progress = quiet(cells=[first, second], known_rates={"iris-ce": [1.0]})
    progress.started(first, first)
    progress.finished(first, ok_runs((0,), 0.0))  # no wall time recorded: the prior rate stays
    progress.start = time.monotonic() - work(first, OPTIONS) * 2.0  # the work took twice the prior's time
    left, guessed = progress.estimate()
    assert not guessed
    assert left == pytest.approx(2.0 * work(second, OPTIONS), rel=1e-3)


def test_a_log_gets_a_plain_line_every_period():
    lines = []
    cell = Cell(IRIS, (0,), "cpu")
    progress = MatrixProgress([cell], OPTIONS, label, log=lines.append, every_s=0.05, terminal=False)
    time.sleep(0.3)
    progress.close()
    assert lines and all(line.startswith("progress: 0/1 runs (0%), ") for line in lines)


def test_a_terminal_gets_a_bar_and_lines_that_leave_it_in_place(monkeypatch, capsys):
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    cell = Cell(IRIS, (0, 1), "cpu")
    progress = MatrixProgress([cell], OPTIONS, label, known_rates={"iris-ce": [1e-4]}, every_s=0.05, terminal=True)
    progress.started(cell, cell)
    progress.write("a finished run")
    progress.finished(cell, ok_runs((0, 1), 0.1))
    progress.close()
    assert "a finished run" in capsys.readouterr().out
    bar = err.getvalue()
    assert "matrix: 0/2 runs" in bar and "matrix: 2/2 runs" in bar
    assert "progress:" not in bar  # no plain lines beside the bar


def test_a_run_reports_progress_and_ends_with_the_whole_matrix(tmp_path):
    lines = []
    status = run_matrix([IRIS], [0, 1], ["cpu"], "reference", tmp_path, RunOptions(epochs=2), log=lines.append)
    assert status == 0
    finished = [line for line in lines if line.startswith("[")]
    assert [line.split("]")[0] for line in finished] == ["[1/2 runs (50%)", "[2/2 runs (100%)"]
    assert "elapsed" in finished[0] and " left" in finished[0]
    assert lines[-1].startswith("done: 2/2 runs (100%), ")

    again = []
    run_matrix([IRIS], [0, 1], ["cpu"], "reference", tmp_path, RunOptions(epochs=2), log=again.append)
    assert not any(line.startswith("[") for line in again)


def test_costs_known_elsewhere_make_the_first_estimate(tmp_path, capsys):
    """On a fresh results directory the estimate borrows each recipe's cost from another one's runs (`make
    all`: the committed results), so it is no guess from other recipes."""
    from harness.cli import main

    two = ["run", "iris-ce", "iris-mse", "--epochs", "2"]
    assert main([*two, "--seeds", "0", "--results-dir", str(tmp_path / "before")]) == 0
    capsys.readouterr()

    def first_line(*costs):
        assert main([*two, "--seeds", "1", "--results-dir", str(tmp_path / f"fresh{len(costs)}"), *costs]) == 0
        return next(line for line in capsys.readouterr().out.splitlines() if line.startswith("[1/2 runs"))

    # after iris-ce's run, what is left is iris-mse's, which this directory has never run
    assert "~" in first_line()  # borrowed from iris-ce: a guess, and marked so
    known = first_line("--costs-from", str(tmp_path / "before"))
    assert " left)" in known and "~" not in known

    assert main(["run", "iris-ce", "--seeds", "3", "--results-dir", str(tmp_path / "x"), "--costs-from", str(tmp_path / "nowhere")]) == 2
    assert "--costs-from" in capsys.readouterr().err


def test_a_running_cell_counts_for_the_time_it_has_run():
    """A long cell under way does not make the rest look slower: it counts as done for the time it has
    run (at most 90% of its estimate), so a matrix going at the estimated pace keeps its estimate."""
    first, second = Cell(IRIS, (0,), "cpu"), Cell(IRIS, (1,), "cpu")
    progress = quiet(cells=[first, second], known_rates={"iris-ce": [1.0]})
    progress.started(first, first)
    progress.finished(first, ok_runs((0,), 0.0))
    progress.started(second, second)
    now = time.monotonic()
    half = 0.5 * work(second, OPTIONS)
    progress.began[second.key] = now - half
    progress.start = now - work(first, OPTIONS) - half  # both went exactly as estimated
    left, _ = progress.estimate()
    assert left == pytest.approx(half, rel=1e-3)

    lefts = []
    for overrun in (2, 10):  # a cell that overran its estimate is never quite done, and the rest scale with it
        progress.began[second.key] = now - overrun * work(second, OPTIONS)
        progress.start = now - work(first, OPTIONS) - overrun * work(second, OPTIONS)
        lefts.append(progress.estimate()[0])
    assert 0 < lefts[0] < lefts[1]
