"""Seeds per source of randomness: what each source moves, the rows that record them, the intervals."""

from __future__ import annotations

import csv
import math
import warnings

import numpy as np
import pytest
import torch
from scipy import stats as scipy_stats

from harness import rows as counted_rows
from harness.engines import ENGINES
from harness.options import RunOptions
from harness.registry import load_registry
from harness.runner import run_matrix
from statsmodels.stats.power import TTestIndPower, TTestPower

from harness.cli import main
from harness.report import write_report
from harness.stats import runs_needed, sd_interval, sd_ratio_interval
from harness.training import state_sha256


@pytest.fixture(scope="module")
def iris_ce():
    return load_registry(None)["iris-ce"]


def _digests(exp, vary, engine="fast", seeds=(1, 2, 3), **options):
    options = {"epochs": 20, **options}
    outcomes = ENGINES[engine](exp, list(seeds), torch.device("cpu"), RunOptions(vary=vary, **options))
    return [state_sha256(o.state) for o in outcomes]


def test_only_the_sources_a_recipe_draws_from_move_it(iris_ce):
    # iris-ce trains full-batch (no loader, no shuffling) and has no dropout: order and dropout change nothing,
    # while the initial weights, the split and one ulp each do.
    assert len(set(_digests(iris_ce, "order"))) == 1
    assert len(set(_digests(iris_ce, "dropout"))) == 1
    assert len(set(_digests(iris_ce, "none"))) == 1
    for vary in ("init", "split", "bit"):
        assert len(set(_digests(iris_ce, vary))) == 3, vary


def test_reference_and_fast_agree_bit_for_bit_under_per_source_seeds(iris_ce):
    for vary in ("init", "split"):
        assert _digests(iris_ce, vary, "reference") == _digests(iris_ce, vary, "fast")


@pytest.mark.parametrize("vary", ["init", "split", "order", "dropout", "bit", "none"])
def test_a_recipe_with_every_source_agrees_bit_for_bit_between_engines(registry, mnist, vary):
    # mnist-cnn-dropout-50 draws from every source: a validation split, shuffled batches, dropout masks.
    exp = registry["mnist-cnn-dropout-50"]
    short = {"data_dir": str(mnist), "epochs": 2, "train_limit": 256, "eval_limit": 64}
    fast = _digests(exp, vary, "fast", seeds=(1, 2), **short)
    assert _digests(exp, vary, "reference", seeds=(1, 2), **short) == fast
    assert (fast[0] == fast[1]) == (vary == "none")


def test_rows_record_every_source_and_count(tmp_path, iris_ce):
    options = RunOptions(epochs=2, vary="init", base_seed=7)
    assert run_matrix([iris_ce], [3, 4], ["cpu"], "fast", tmp_path, options, log=lambda *_: None) == 0
    with open(tmp_path / "runs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["seed_init"], r["seed_split"], r["seed_order"], r["seed_dropout"], r["seed_bit"]) for r in rows] == \
        [("3", "7", "7", "7", ""), ("4", "7", "7", "7", "")]
    assert all(r["faithful"] == "false" and counted_rows.run_row_problem(r) is None for r in rows)
    rows[0]["seed_init"] = "5"  # a hand edit that no longer matches the varied source
    assert "seed_*" in counted_rows.run_row_problem(rows[0])


def test_an_earlier_versions_file_is_widened_when_appended_to(tmp_path, iris_ce):
    run_matrix([iris_ce], [0], ["cpu"], "fast", tmp_path, RunOptions(epochs=1), log=lambda *_: None)
    path = tmp_path / "runs.csv"
    with open(path, newline="") as f:
        records = list(csv.reader(f))
    width = records[0].index("seed_init")
    with open(path, "w", newline="") as f:  # as the version before the seed columns wrote it
        csv.writer(f, lineterminator="\n").writerows(r[:width] for r in records)
    run_matrix([iris_ce], [1], ["cpu"], "fast", tmp_path, RunOptions(epochs=1), log=lambda *_: None)
    table = counted_rows.read_table_file(path)
    assert not table.older and [r["seed"] for r in table.rows] == ["0", "1"]
    assert table.rows[0]["weights_sha256"] == records[1][records[0].index("weights_sha256")]


def test_the_sd_interval_is_the_chi_square_one_and_covers_as_stated():
    x = np.array([0.91, 0.93, 0.92, 0.95, 0.90, 0.94])
    s = sd_interval(x)
    df = len(x) - 1
    variance = scipy_stats.chi2.interval(0.95, df)
    assert s.sd == pytest.approx(np.std(x, ddof=1))
    assert (s.low, s.high) == pytest.approx((np.sqrt(df * s.sd**2 / variance[1]), np.sqrt(df * s.sd**2 / variance[0])))
    rng = np.random.default_rng(0)
    covered = np.mean([(lambda sp: sp.low <= 2.0 <= sp.high)(sd_interval(rng.normal(0, 2.0, 10))) for _ in range(4000)])
    assert 0.94 <= covered <= 0.96
    assert sd_interval([0.5, 0.5, 0.5]).sd == 0.0  # equal values: exactly 0


def test_the_sd_ratio_interval_covers_as_stated():
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(4000):
        _, low, high = sd_ratio_interval(sd_interval(rng.normal(0, 3.0, 12)), sd_interval(rng.normal(0, 1.5, 8)))
        hits += low <= 2.0 <= high
    assert 0.94 <= hits / 4000 <= 0.96


def test_spreads_of_too_few_runs_are_nan_and_two_runs_are_enough():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an empty or single-run group is an answer, not numpy's warning
        empty, one, two = sd_interval([]), sd_interval([0.5]), sd_interval([0.5, 0.7])
    assert empty.n == 0 and all(np.isnan([empty.mean, empty.sd, empty.low, empty.high]))
    assert one.n == 1 and one.mean == 0.5 and all(np.isnan([one.sd, one.low, one.high]))
    assert two.n == 2 and two.sd == pytest.approx(np.std([0.5, 0.7], ddof=1)) and 0 < two.low < two.sd < two.high
    # The ratio takes two runs a side and a spread in the denominator; NaN otherwise, three values always.
    f_high, f_low = scipy_stats.f.ppf([0.975, 0.025], 1, 1)
    ratio = two.sd / two.sd
    assert sd_ratio_interval(two, two) == pytest.approx((ratio, ratio / np.sqrt(f_high), ratio / np.sqrt(f_low)))
    for a, b in ((one, two), (two, one), (two, sd_interval([0.5, 0.5, 0.5]))):
        found = sd_ratio_interval(a, b)
        assert len(found) == 3 and all(np.isnan(found))


def test_runs_needed_at_its_edges():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # too few values are an answer (NaN), not numpy's warning
        one, two, three = runs_needed([0.5], 0.1), runs_needed([0.5, 0.75], 0.25), runs_needed([0.5, 0.625, 0.75], 0.125, b=[0.5])
        no_pairs, one_pair = runs_needed([0.5, 0.75], 0.1, paired_differences=[]), runs_needed([0.5, 0.75], 0.1, paired_differences=[0.1])
        two_pairs = runs_needed([0.5, 0.75], 0.1, paired_differences=[0.125, 0.25])
        constant = runs_needed([0.5, 0.5, 0.5], 0.0)
        too_small = runs_needed([0.5, 0.75], 1e-12, paired_differences=[0.125, 0.25])  # no count up to 2**40 runs detects it
    assert math.isnan(one.sd) and math.isnan(one.two_sample)  # one run: no spread
    assert two.sd == pytest.approx(np.std([0.5, 0.75], ddof=1))
    # b's single run adds no degrees of freedom: the spread is a's alone.
    assert three.sd == pytest.approx(np.std([0.5, 0.625, 0.75], ddof=1))
    assert math.isnan(no_pairs.sd_difference) and math.isnan(one_pair.sd_difference)
    assert two_pairs.sd_difference == pytest.approx(np.std([0.125, 0.25], ddof=1))
    assert math.isnan(constant.two_sample)  # no difference asked: nothing to detect
    assert math.isnan(too_small.two_sample) and math.isnan(too_small.paired) and too_small.sd > 0


def test_runs_needed_are_statsmodels_answers_and_have_the_power_they_claim():
    rng = np.random.default_rng(2)
    a, b = rng.normal(0.90, 0.01, 30), rng.normal(0.90, 0.01, 30)
    answer = runs_needed(a, 0.005, b, b - a)
    pooled = np.sqrt((29 * a.var(ddof=1) + 29 * b.var(ddof=1)) / 58)
    assert answer.sd == pytest.approx(pooled)
    assert answer.two_sample == np.ceil(TTestIndPower().solve_power(effect_size=0.005 / pooled, alpha=0.05, power=0.8))
    assert answer.paired == np.ceil(TTestPower().solve_power(effect_size=0.005 / np.std(b - a, ddof=1), alpha=0.05, power=0.8))
    # Simulated, at the true spread: runs of those sizes detect the shift about 80% of the time.
    sd, delta, trials = 0.01, 0.005, 2000
    truth = runs_needed(rng.normal(0, sd, 4000), delta)
    n = int(truth.two_sample)
    x, y = rng.normal(0, sd, (trials, n)), rng.normal(delta, sd, (trials, n))
    assert 0.76 <= np.mean(scipy_stats.ttest_ind(x, y, axis=1).pvalue < 0.05) <= 0.84


def test_the_t_count_holds_on_a_discrete_skewed_metric():
    """Simulated on iris-like test accuracies (38 samples: steps of 2.6 pp, a few stalled runs): the
    two-sample count detects a 5 pp difference of the means about as often as it promises."""
    rng = np.random.default_rng(3)

    def runs(k, shift=0.0):
        base = np.where(rng.random(k) < 0.08, 12, np.minimum(38, rng.binomial(38, 0.9 - shift, k)))
        return base / 38

    truth = runs_needed(runs(20000), 0.05)
    n, trials = int(truth.two_sample), 2000
    detected = [scipy_stats.ttest_ind(runs(n), runs(n, 0.05)).pvalue < 0.05 for _ in range(trials)]
    assert 0.74 <= np.mean(detected) <= 0.88


def test_variance_then_plan_then_report_from_the_command_line(tmp_path, capsys):
    results = tmp_path / "results"
    argv = ["--results-dir", str(results), "--epochs", "30"]
    assert main(["variance", "iris-ce", "--sources", "init,split", "--runs", "4", "--reruns", "2", *argv]) == 0
    out = capsys.readouterr().out
    assert "iris-ce [cpu, fast, epochs=30, base seed 0]: test_acc" in out
    assert "reruns with every seed fixed: identical" in out
    with open(results / "runs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 + 4 + 4 + 2
    assert main(["plan", "iris-ce", "--delta", "0.05", "--metric", "test_acc", "--epochs", "30",
                 "--results-dir", str(results)]) == 0
    assert "runs per arm" in capsys.readouterr().out
    write_report(results, load_registry(None), log=lambda *_: None)
    report = (results / "REPORT.md").read_text()
    assert "## Where the spread comes from" in report and "### iris-ce [cpu, fast, epochs=30, base seed 0]" in report
    assert "10 of them vary one source of randomness" in report
    assert "vary=" not in report  # the varied rows are not a quick-run setting of their own
    assert "The 2 reruns with every seed fixed are identical (weights and every metric)." in report
    assert "`harness variance iris-ce --sources init,split --runs 4 --reruns 2 --epochs 30 --engine fast`" in report
    assert (results / "plots" / "variance.png").stat().st_size > 0
