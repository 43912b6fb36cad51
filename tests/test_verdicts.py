"""The verdict on each printed run (harness/report/verdicts.py): one declared test, able to say no.

By simulation: the rank test rejects a run that is one more draw at most 5% of the time, figures and
whole curves alike, and catches a run moved by the departure it reports about 4 times in 5. From the
command line on results the harness wrote: a printed value planted far out is *inconsistent* and changes
the first screen's count; one at the seeds' median is *consistent* with what it could catch; too few seeds
are *undecided* with the seeds needed, and `harness settle` runs them and decides. A run stopped at the
last printed epoch is the full run on those epochs, bit for bit."""

import math
import re
import shutil

import numpy as np
import pytest
import torch

from harness.cli import main
from harness.engines import ENGINES
from harness.options import RunOptions
from harness.registry import load_experiment
from harness.stats import detectable_departure, detectable_shift, rank, seeds_needed, whole_curve

from .conftest import ROOT

ALPHA = 0.05


def monte_carlo_bound(rate: float, reps: int) -> float:
    """A rate plus three of its Monte Carlo standard errors."""
    return rate + 3 * math.sqrt(rate * (1 - rate) / reps)


DRAWS = {
    "normal": lambda rng, k: rng.normal(0.0, 1.0, k),
    "skewed": lambda rng, k: rng.exponential(1.0, k),
    # an accuracy on 38 test samples, most seeds near the top, a few stalled: discrete, skewed, tied
    "discrete": lambda rng, k: np.where(rng.random(k) < 0.1, 10, np.minimum(38, rng.binomial(38, 0.95, k))) / 38,
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(DRAWS))
def test_one_more_draw_is_rejected_at_most_five_percent_of_the_time(kind):
    rng, draw, reps = np.random.default_rng(1), DRAWS[kind], 4000
    rejected = [rank(draw(rng, 79), draw(rng, 1)[0]).p <= ALPHA for _ in range(reps)]
    assert np.mean(rejected) <= monte_carlo_bound(ALPHA, reps)


@pytest.mark.slow
def test_one_more_curve_is_rejected_at_most_five_percent_of_the_time():
    """Curves whose epochs are strongly correlated (a random walk around a rising mean), 13 epochs."""
    rng, reps = np.random.default_rng(2), 1000

    def curves(k):
        return 0.95 + 0.003 * np.arange(13) + np.cumsum(rng.normal(0, 0.002, (k, 13)), axis=1)

    rejected = [whole_curve(curves(79), curves(1)[0]).rank.p <= ALPHA for _ in range(reps)]
    assert np.mean(rejected) <= monte_carlo_bound(ALPHA, reps)


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(DRAWS))
def test_a_run_moved_by_the_departure_reported_is_caught_about_four_times_in_five(kind):
    """detectable_departure reads the seeds present; a fresh run moved by what it reports is caught about 80% of
    the time (more on a discrete metric, whose steps overshoot), and a run moved by half of it clearly less often."""
    rng, draw = np.random.default_rng(3), DRAWS[kind]
    bounds = (0.0, 1.0) if kind == "discrete" else (-math.inf, math.inf)
    caught, halfway = [], []
    for _ in range(300):
        seeds = draw(rng, 79)
        below, _ = detectable_departure(seeds, bounds=bounds)
        runs = np.clip(draw(rng, 20) - below, *bounds)
        caught += [rank(seeds, v).p <= ALPHA for v in runs]
        halfway += [rank(seeds, v).p <= ALPHA for v in np.clip(draw(rng, 20) - below / 2, *bounds)]
    assert 0.74 <= np.mean(caught) <= (0.95 if kind == "discrete" else 0.86)
    assert np.mean(halfway) < np.mean(caught) - 0.15


@pytest.mark.slow
def test_below_39_seeds_nothing_can_be_caught_and_79_catch_three_sd():
    rng = np.random.default_rng(4)
    assert detectable_departure(rng.normal(size=38)) == (math.inf, math.inf)
    assert all(math.isfinite(d) for d in detectable_departure(rng.normal(size=39)))
    assert seeds_needed(3.0) == 79 and detectable_shift(79) <= 3.0 < detectable_shift(39)
    assert seeds_needed(2.86) == 199 and seeds_needed(2.5) is None  # at 80%, no count reaches below about 2.8 sd
    # The plan, by simulation: 79 normal seeds catch a run 3 sd out at least 80% of the time.
    reps = 2000
    caught = [rank(rng.normal(size=79), rng.normal() + 3.0).p <= ALPHA for _ in range(reps)]
    assert np.mean(caught) >= 0.8 - 3 * math.sqrt(0.16 / reps)


def test_seeds_are_read_at_the_printed_precision():
    """A printed 91.7% against seeds of 91.72% and more: unrounded it lies below them all; read as printed it
    ties with those that print the same, and a tie counts against rejection."""
    seeds = np.array([0.9172] * 10 + [0.9181 + 0.0001 * i for i in range(69)])
    assert rank(seeds, 0.917).p <= ALPHA
    from harness.stats import rounded

    printed = rank(rounded(seeds, 3), 0.917)
    assert (printed.below, printed.tied) == (0, 10) and printed.p == 2 * (1 + 10) / 80 > ALPHA


# ---------------------------------------------------------------------------------------------------
# From the command line, on results the harness wrote


RECIPE = (ROOT / "experiments" / "iris-mylinear.toml").read_text()


def quick_recipe(directory, value: float | None = None):
    """iris-mylinear shortened to 100 epochs (its printed figure moved there): a printed run judged by its
    train accuracy at epoch 100, that trains in a blink."""
    text = RECIPE.replace("epochs = 2000", "epochs = 100").replace("epoch = 2000", "epoch = 100")
    if value is not None:
        text = re.sub(r"(\[published\][^\[]*?\nvalue = )[0-9.]+", rf"\g<1>{value}", text, count=1)
    text = text.split("[thresholds]")[0] + "[smoke]\nmin = 0.5\n"
    directory.mkdir(exist_ok=True)
    (directory / "iris-mylinear.toml").write_text(text)
    return directory


def first_line(results) -> str:
    text = (results / "REPORT.md").read_text()
    return next(line for line in text.splitlines() if line.startswith("**"))


def harness(capsys, *args):
    status = main([str(a) for a in args])
    return status, capsys.readouterr().out


@pytest.mark.slow
def test_too_few_seeds_are_undecided_then_settle_decides_and_a_planted_figure_is_rejected(tmp_path, capsys):
    reg, results = quick_recipe(tmp_path / "reg"), tmp_path / "res"
    assert harness(capsys, "run", "--seeds", "0-9", "--results-dir", results, "--experiments-dir", reg)[0] == 0
    assert harness(capsys, "report", "--results-dir", results, "--experiments-dir", reg)[0] == 0
    assert first_line(results).endswith("0 inconsistent, 0 consistent, 1 undecided.**")
    assert "*Undecided*: T1 #6, iris-mylinear [cpu, fast]: 10 seeds cannot reject at 5% (the rank test needs 39); " \
           "79 seeds would catch a run 3 sd out 4 times in 5 (`harness settle iris-mylinear`)" in (results / "REPORT.md").read_text()

    status, out = harness(capsys, "settle", "iris-mylinear", "--results-dir", results, "--experiments-dir", reg)
    assert status == 0 and "10 of 79 seeds there; 69 to run" in out, out
    verdict = out.strip().splitlines()[-1]
    assert verdict.startswith("iris-mylinear [cpu, fast] train_acc @100") and re.search(r": (in)?consistent; 79 seeds;", verdict), verdict
    values = [float(r["train_acc"]) for r in _rows(results)]
    median = float(np.sort(values)[len(values) // 2])

    # At the seeds' median: consistent, with what it could have caught; far out: inconsistent, and counted so.
    for value, expected in ((median, "0 inconsistent, 1 consistent, 0 undecided"), (0.40, "1 inconsistent, 0 consistent, 0 undecided")):
        quick_recipe(reg, value)
        assert harness(capsys, "report", "--results-dir", results, "--experiments-dir", reg)[0] == 0
        assert first_line(results).endswith(f"{expected}.**"), first_line(results)
    text = (results / "REPORT.md").read_text()
    assert "- *Inconsistent*: T1 #6, iris-mylinear [cpu, fast] train_acc @100 = 40.00%: it lies: " in text
    quick_recipe(reg, median)
    status, out = harness(capsys, "settle", "iris-mylinear", "--results-dir", results, "--experiments-dir", reg)
    assert "79 of 79 seeds there; 0 to run" in out and "would catch below: " in out


@pytest.mark.slow
def test_a_remade_subset_is_judged_with_every_committed_seed(tmp_path, capsys):
    """`make all`'s report: the seeds re-made here, and the committed cells not re-made of the experiments
    re-made on the same device and engine (`--add-seeds-from`), shortened runs too; nothing else."""
    reg, committed, remade = quick_recipe(tmp_path / "reg"), tmp_path / "committed", tmp_path / "remade"
    for where, seeds in ((committed, "0-38"), (remade, "0-4")):
        assert harness(capsys, "run", "--seeds", seeds, "--results-dir", where, "--experiments-dir", reg)[0] == 0
    assert harness(capsys, "run", "--seeds", "0-2", "--epochs", "50", "--results-dir", committed, "--experiments-dir", reg)[0] == 0

    assert harness(capsys, "report", "--results-dir", remade, "--experiments-dir", reg)[0] == 0
    assert first_line(remade).endswith("0 inconsistent, 0 consistent, 1 undecided.**")
    assert harness(capsys, "report", "--results-dir", remade, "--add-seeds-from", committed, "--experiments-dir", reg)[0] == 0
    assert first_line(remade).endswith("0 undecided.**"), first_line(remade)
    text = (remade / "REPORT.md").read_text()
    assert f"- 37 of those counted are `{committed}`'s: the cells not run here" in text
    # The 50-epoch runs do not reach the printed epoch 100: described among the quick runs, not judging.
    assert "| T1 #6 " in text and "| 39 " in text.split("## The printed runs")[1].split("###")[0]
    assert "| iris-mylinear | cpu      | fast     | epochs=50   | 3 " in text.split("## Quick runs")[1]
    other = tmp_path / "other"  # an experiment not re-made here adds nothing
    (reg / "iris-ce.toml").write_text((ROOT / "experiments" / "iris-ce.toml").read_text())
    assert harness(capsys, "run", "iris-ce", "--seeds", "0", "--epochs", "5", "--results-dir", other, "--experiments-dir", reg)[0] == 0
    assert harness(capsys, "report", "--results-dir", remade, "--add-seeds-from", other, "--experiments-dir", reg)[0] == 0
    assert "- 0 of those counted are" in (remade / "REPORT.md").read_text()
    # A directory that is no results directory is one line, and nothing is written.
    before = (remade / "REPORT.md").read_bytes()
    assert main(["report", "--results-dir", str(remade), "--add-seeds-from", str(tmp_path / "none"), "--experiments-dir", str(reg)]) == 2
    assert "none: no such directory; name a results directory" in capsys.readouterr().err
    assert (remade / "REPORT.md").read_bytes() == before


def _rows(results):
    import csv

    with open(results / "runs.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
@pytest.mark.parametrize("recipe", [ROOT / "experiments" / "iris-ce.toml", ROOT / "examples" / "digits-mlp" / "digits-mlp.toml"],
                         ids=["no scheduler", "cosine scheduler"])
def test_a_run_stopped_at_a_printed_epoch_is_the_full_run_on_those_epochs(tmp_path, recipe):
    exp = load_experiment(recipe)
    full_epochs = 400 if exp.data["dataset"] == "iris" else exp.training["epochs"]
    stop = full_epochs // 2

    def figures(epochs):
        (outcome,) = ENGINES["fast"](exp, [3], torch.device("cpu"), RunOptions(epochs=epochs))
        assert outcome.status == "ok"
        rows = [{k: v for k, v in e.items() if not k.endswith(("time_s", "per_s"))} for e in outcome.epochs]
        return [r for r in rows if r["epoch"] <= stop], outcome.trace

    full, stopped = figures(full_epochs), figures(stop)
    assert stopped[0] and stopped[0] == full[0][:len(stopped[0])]
    assert stopped[1] == [t for t in full[1] if t["epoch"] <= stop]
    shutil.rmtree(tmp_path, ignore_errors=True)
