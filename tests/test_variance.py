"""Seeds per source of randomness: what each source moves, the rows that record them, the intervals."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from scipy import stats as scipy_stats

from harness import rows as counted_rows
from harness.engines import ENGINES
from harness.engines.sources import RunOptions
from harness.registry import load_registry
from harness.runner import run_matrix
from harness.stats import sd_interval, sd_ratio_interval
from harness.training import state_sha256


@pytest.fixture(scope="module")
def iris_ce():
    return load_registry(None)["iris-ce"]


def _digests(exp, vary, engine="fast", seeds=(1, 2, 3)):
    outcomes = ENGINES[engine](exp, list(seeds), torch.device("cpu"), RunOptions(epochs=20, vary=vary))
    return {state_sha256(o.state) for o in outcomes}


def test_only_the_sources_a_recipe_draws_from_move_it(iris_ce):
    # iris-ce trains full-batch (no loader, no shuffling) and has no dropout: order and dropout change nothing,
    # while the initial weights, the split and one ulp each do.
    assert len(_digests(iris_ce, "order")) == 1
    assert len(_digests(iris_ce, "dropout")) == 1
    assert len(_digests(iris_ce, "none")) == 1
    for vary in ("init", "split", "bit"):
        assert len(_digests(iris_ce, vary)) == 3, vary


def test_reference_and_fast_agree_bit_for_bit_under_per_source_seeds(iris_ce):
    for vary in ("init", "split"):
        assert _digests(iris_ce, vary, "reference") == _digests(iris_ce, vary, "fast")


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
