"""`harness compare`: verdicts on constructed results, --by, margins, bad input, the exit status gate,
the report's section, and --portable's settings in the rows."""

import csv
import math
import subprocess
import sys
import uuid
import warnings

import numpy as np
import pandas as pd
import pytest

from harness import stats
from harness.cli import main
from harness.compare import (DIFFERENT, EQUIVALENT, IDENTICAL, PAIRED, UNDECIDED, UNPAIRED, Margin, across_environments_section,
                             compare_directories, compare_metric, compare_speed,
                             parse_margins, render, write_csv)
from harness.catalogue import METRIC_NAMES as METRICS, RUN_COLUMNS
from harness.errors import HarnessError, RegistryError
from harness.registry import load_registry
from harness.results import ResultsStore
from harness.rows import first_parting

from .conftest import ROOT

EXP = "iris-ce"  # headline metric train_acc
# Five seeds' final metrics: spread well inside the default margins (0.005 for accuracies, 2% for losses).
BASE = {"train_acc": [0.9732, 0.9741, 0.9725, 0.9738, 0.9730], "test_acc": [0.9605, 0.9611, 0.9598, 0.9602, 0.9609],
        "test_loss": [0.6101, 0.6112, 0.6095, 0.6108, 0.6104]}


def write_results(directory, registry, values=BASE, engine="fast", started="2026-01-01T00:00:00+00:00", experiment=EXP, **env):
    """A results directory as the runner writes it: one run per seed, two epoch rows each (the last = final)."""
    exp = registry[experiment]
    runs, epochs = [], []
    for seed in range(len(values["test_acc"])):
        final = {"train_loss": 0.6, **{m: v[seed] for m, v in values.items()}}
        run = {"run_id": uuid.uuid4().hex[:12], "experiment": experiment, "seed": seed, "device": "cpu", "device_name": "Test CPU",
               "engine": engine, "epochs": 2, "faithful": True, "status": "ok", "wall_time_s": 2.0 + 0.1 * seed,
               "train_time_s": 1.0, "train_samples_per_s": 1000.0 + 10 * seed, "started_at": started,
               "config_hash": exp.config_hash(), "git_commit": "abc123", "torch_version": "2.14.1",
               "python_version": "3.11.7", "host": "testhost", "threads": 1, "dataset_md5": "md5", "cpu_capability": "AVX512",
               "kernel_settings": "", **final, **env}
        runs.append(run)
        epochs += [{"run_id": run["run_id"], "epoch": 1, "train_loss": 1.0, "train_acc": 0.5},
                   {"run_id": run["run_id"], "epoch": 2, **final}]
    ResultsStore(directory).append(runs, epochs, [])
    return directory


def nudged(values, steps=1):
    """Each value moved by `steps` units in its last place: what another CPU's kernels do."""
    return {m: [float(np.nextafter(v, 2.0)) if steps else v for v in vs] for m, vs in values.items()}


def shifted(values, metric, by):
    return {**values, metric: [v + by for v in values[metric]]}


def verdicts(reports):
    return {(label, c.metric): c.verdict for r in reports for label, c in r.distribution}


def test_same_directory_twice_is_identical(registry, tmp_path, capsys):
    a = write_results(tmp_path / "a", registry)
    (report,) = compare_directories([a, a], registry, {})
    assert set(verdicts([report]).values()) == {IDENTICAL}
    assert report.bitwise == [{"arm": EXP, "cells": 5, "identical": 5, "first_parting": None}]
    assert report.environment == []
    assert main(["compare", str(a), str(a)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].endswith("5 of 5 cells bit for bit; experiments 1 identical, 0 equivalent, 0 undecided, 0 different")
    assert out.index("Environment") < out.index("Bitwise") < out.index("Distribution") < out.index("Speed")


def test_last_digits_are_equivalent_and_where_cells_part(registry, tmp_path):
    a = write_results(tmp_path / "a", registry)
    b = write_results(tmp_path / "b", registry, nudged(BASE), cpu_capability="AVX2", device_name="Other CPU")
    (report,) = compare_directories([a, b], registry, {})
    assert set(verdicts([report]).values()) == {EQUIVALENT}
    (row,) = report.bitwise
    assert (row["cells"], row["identical"]) == (5, 0)
    parting = row["first_parting"]  # epoch 1 is alike; the final epoch's first metric column differs
    assert (parting["seed"], parting["epoch"], parting["column"]) == (0, 2, "train_acc")
    assert parting["b"] - parting["a"] == pytest.approx(np.spacing(BASE["train_acc"][0]))
    assert {r["column"]: (r["A"], r["B"]) for r in report.environment} == {
        "device_name": ("Test CPU", "Other CPU"), "cpu_capability": ("AVX512", "AVX2")}


def test_cells_alike_in_every_figure_but_not_in_their_weights_are_not_bit_for_bit(registry, tmp_path, capsys):
    digest = "ab" * 32
    a = write_results(tmp_path / "a", registry, weights_sha256=digest)
    b = write_results(tmp_path / "b", registry, weights_sha256="cd" * 32)
    (report,) = compare_directories([a, b], registry, {})
    (row,) = report.bitwise
    assert (row["identical"], row["first_parting"]["column"]) == (0, "weights_sha256")
    assert main(["compare", str(a), str(b)]) == 0  # the distributions are still identical: not a different result
    assert "every figure alike, the final weights not (weights_sha256 abababababab… vs cdcdcdcdcdcd…)" in capsys.readouterr().out
    # Rows that record no digest (an earlier version's) are judged by their figures alone.
    c = write_results(tmp_path / "c", registry)
    assert compare_directories([a, c], registry, {})[0].bitwise[0]["identical"] == 5
    assert compare_directories([a, write_results(tmp_path / "d", registry, weights_sha256=digest)], registry, {})[0].bitwise[0][
        "identical"] == 5


def test_shifted_mean_is_different_and_fails(registry, tmp_path):
    a = write_results(tmp_path / "a", registry)
    b = write_results(tmp_path / "b", registry, shifted(BASE, "test_acc", 0.02))
    found = verdicts(compare_directories([a, b], registry, {}))
    assert found[(EXP, "test_acc")] == DIFFERENT
    assert found[(EXP, "train_acc")] == IDENTICAL
    # A margin wider than the shift, on the command line, makes it equivalent.
    assert verdicts(compare_directories([a, b], registry, parse_margins(["test_acc=0.03"])))[(EXP, "test_acc")] == EQUIVALENT


def test_two_seeds_are_undecided_and_say_how_many_would_decide():
    a = pd.Series([0.95, 0.97], index=[0, 1])
    b = pd.Series([0.956, 0.968], index=[0, 1])
    c = compare_metric("test_acc", a, b, Margin(0.005))
    assert (c.test, c.verdict) == (PAIRED, UNDECIDED)
    assert c.p_difference > 0.05 and c.p_tost > 0.05
    # Differences +0.006 and -0.002 (sd 0.0057): equivalence within 0.005 wants a one-sided test at
    # effect (0.005 - 0.002) / 0.0057 = 0.53, about 23 pairs at 80% power.
    assert 20 <= c.seeds_needed <= 30
    # Other seeds on each side: two independent samples, whose spread is the seeds' own (0.014), so more.
    welch = compare_metric("test_acc", a, pd.Series([0.956, 0.968], index=[2, 3]), Margin(0.005))
    assert (welch.test, welch.verdict) == (UNPAIRED, UNDECIDED)
    assert welch.seeds_needed > 2 * c.seeds_needed


def test_a_rerun_of_some_of_the_seeds_is_paired_over_them():
    """`make all` re-makes a subset of the committed seeds: the comparison pairs the seeds both hold and
    counts the others, so a bit-for-bit rerun reads identical and a small steady shift different."""
    rng = np.random.default_rng(1)
    committed = pd.Series(0.97 + 0.003 * rng.standard_normal(79), index=range(79))
    rerun = committed.iloc[:10].copy()
    same = compare_metric("test_acc", committed, rerun, Margin(0.1, of="error"))
    assert (same.verdict, same.n_a, same.n_b, same.unshared) == (IDENTICAL, 10, 10, 69)
    shifted = compare_metric("test_acc", committed, rerun + 0.005 + 0.0001 * rng.standard_normal(10), Margin(0.1, of="error"))
    assert (shifted.test, shifted.verdict, shifted.unshared) == (PAIRED, DIFFERENT, 69)
    assert shifted.p_difference == pytest.approx(2 / 2**10)  # every pair one sign: the exact test's least p
    # Seeds on one side only: two samples, every run counted.
    apart = compare_metric("test_acc", committed, rerun.set_axis(range(100, 110)) + 0.002, Margin(0.1, of="error"))
    assert (apart.test, apart.n_a, apart.n_b, apart.unshared) == (UNPAIRED, 79, 10, 0)


def test_independent_samples_shifted_are_different():
    rng = np.random.default_rng(0)
    a = pd.Series(0.97 + 0.002 * rng.standard_normal(10), index=range(10))
    b = pd.Series(0.95 + 0.002 * rng.standard_normal(10), index=range(10, 20))
    c = compare_metric("test_acc", a, b, Margin(0.005))
    assert (c.test, c.verdict) == (UNPAIRED, DIFFERENT)
    assert c.ci_low < -0.015 and c.ci_high < 0 and c.p_difference < 0.05
    assert compare_metric("test_acc", a, a.set_axis(range(10, 20)) + 1e-4, Margin(0.005)).verdict == EQUIVALENT


def test_relative_margin_and_zero_spread():
    loss = compare_metric("test_loss", pd.Series([0.5, 0.5]), pd.Series([0.505, 0.505]), Margin(0.02, of="mean"))
    assert loss.margin == pytest.approx(0.01) and loss.verdict == EQUIVALENT and loss.note == "no spread"
    assert compare_metric("test_acc", pd.Series([0.9, 0.9]), pd.Series([0.92, 0.92]), Margin(0.005)).verdict == DIFFERENT


def test_by_engine_on_one_directory(registry, tmp_path, capsys):
    d = tmp_path / "r"
    write_results(d, registry, engine="fast")
    write_results(d, registry, nudged(BASE), engine="multiseed", started="2026-01-02T00:00:00+00:00")
    write_results(d, registry, engine="reference", started="2026-01-03T00:00:00+00:00")
    reports = compare_directories([d], registry, {}, by="engine")
    assert [(r.a.label, r.b.label) for r in reports] == [("engine=fast", "engine=multiseed"), ("engine=fast", "engine=reference")]
    assert [r.bitwise[0]["identical"] for r in reports] == [0, 5]
    assert [set(verdicts([r]).values()) for r in reports] == [{EQUIVALENT}, {IDENTICAL}]
    assert reports[0].environment == [{"column": "engine", "A": "fast", "B": "multiseed"}]
    assert main(["compare", str(d), "--by", "engine", "--markdown", "--csv", str(tmp_path / "c.csv")]) == 0
    out = capsys.readouterr().out
    assert "| iris-ce " in out and "### Distribution" in out
    rows = list(csv.DictReader(open(tmp_path / "c.csv")))
    assert {r["section"] for r in rows} == {"environment", "bitwise", "distribution", "speed"}
    assert {r["verdict"] for r in rows if r["section"] == "distribution"} == {EQUIVALENT, IDENTICAL}


def test_by_keeps_the_latest_row_of_each_group(registry, tmp_path):
    """Two commits' rows of the same cells in one directory are both counted, one group each."""
    d = tmp_path / "r"
    write_results(d, registry, git_commit="old")
    write_results(d, registry, shifted(BASE, "test_acc", 0.02), git_commit="new", started="2026-02-01T00:00:00+00:00")
    (report,) = compare_directories([d], registry, {}, by="git_commit")
    assert (report.a.label, report.b.label) == ("git_commit=old", "git_commit=new")  # the baseline: run first
    assert verdicts([report])[(EXP, "test_acc")] == DIFFERENT


@pytest.mark.parametrize("args, message", [
    (["compare", "{tmp}/missing", "{a}"], "no such directory"),
    (["compare", "{a}", "{a}", "--margin", "test_acc"], "--margin 'test_acc'"),
    (["compare", "{a}", "--margin", "nope=1", "--by", "engine"], "--margin 'nope=1'"),
    (["compare", "{a}", "--by", "colour"], "--by: unknown column 'colour'"),
    (["compare", "{a}", "--by", "engine"], "one engine only"),
    (["compare", "{a}"], "two results directories"),
    (["compare", "{a}", "{other}"], "no experiment"),
])
def test_bad_input_exits_2_with_one_line(registry, tmp_path, capsys, args, message):
    a = write_results(tmp_path / "a", registry)
    other = tmp_path / "other"
    ResultsStore(other).append([{**dict.fromkeys(RUN_COLUMNS, ""), "run_id": "x", "experiment": "mnist-mlp", "seed": 0,
                                 "device": "cpu", "engine": "fast", "config_hash": "0", "status": "ok",
                                 "started_at": "2026"}], [], [])
    argv = [x.format(tmp=tmp_path, a=a, other=other) for x in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err


@pytest.mark.slow
def test_exit_status_gate(registry, tmp_path):
    """The command line as CI would run it: 0 when nothing is different, 1 when something is."""
    a = write_results(tmp_path / "a", registry)
    b = write_results(tmp_path / "b", registry, nudged(BASE))
    c = write_results(tmp_path / "c", registry, shifted(BASE, "test_loss", 0.05))
    run = [sys.executable, "-m", "harness", "compare"]
    assert subprocess.run(run + [str(a), str(b)], capture_output=True, cwd=ROOT).returncode == 0
    shifted_run = subprocess.run(run + [str(a), str(c)], capture_output=True, text=True, cwd=ROOT)
    assert shifted_run.returncode == 1
    assert shifted_run.stdout.splitlines()[0].endswith("experiments 0 identical, 0 equivalent, 0 undecided, 1 different (different: iris-ce)")


def test_registry_margins_count_and_leave_the_config_hash_alone(registry, tmp_path):
    experiments = tmp_path / "experiments"
    experiments.mkdir()
    text = (ROOT / "experiments" / f"{EXP}.toml").read_text()
    (experiments / f"{EXP}.toml").write_text(text + "\n[margins]\ntest_acc = 0.03\n")
    mine = load_registry(experiments)
    assert mine[EXP].margins == {"test_acc": 0.03}
    assert mine[EXP].config_hash() == registry[EXP].config_hash()
    a = write_results(tmp_path / "a", registry)
    b = write_results(tmp_path / "b", registry, shifted(BASE, "test_acc", 0.02))
    assert verdicts(compare_directories([a, b], mine, {}))[(EXP, "test_acc")] == EQUIVALENT
    # The command line wins over the registry.
    assert verdicts(compare_directories([a, b], mine, parse_margins(["test_acc=0.001"])))[(EXP, "test_acc")] == DIFFERENT
    for bad, message in (("test_acc = -0.1", "must be 0 or more"), ("accuracy = 0.1", "unknown key 'margins.accuracy'")):
        (experiments / f"{EXP}.toml").write_text(text + f"\n[margins]\n{bad}\n")
        with pytest.raises(RegistryError, match=message):
            load_registry(experiments)


def test_parse_margins():
    assert parse_margins(["test_acc=0.01", "test_loss=2%"]) == {"test_acc": Margin(0.01), "test_loss": Margin(0.02, of="mean")}
    for bad in ("test_acc=-1", "test_acc=inf", "acc=0.1", "test_acc=1e", "test_acc"):
        with pytest.raises(HarnessError):
            parse_margins([bad])


def test_speed_ratio(registry, tmp_path):
    a = write_results(tmp_path / "a", registry)
    b = write_results(tmp_path / "b", registry)
    (report,) = compare_directories([a, b], registry, {})
    speed = {s.metric: s for _, s in report.speed}
    assert speed["train_samples_per_s"].ratio == pytest.approx(1.0)
    assert speed["train_samples_per_s"].ci_low < 1 < speed["train_samples_per_s"].ci_high


def test_report_section_across_engines(registry, tmp_path):
    from harness.compare import read_side

    d = tmp_path / "r"
    write_results(d, registry, engine="fast")
    one = read_side(d, registry)
    assert across_environments_section(one.runs, registry, one.epochs) == ""
    write_results(d, registry, nudged(BASE), engine="multiseed", started="2026-01-02T00:00:00+00:00")
    both = read_side(d, registry)
    text = across_environments_section(both.runs, registry, both.epochs)
    assert text.startswith("## Across environments") and "### By engine" in text
    assert "engine=fast against" not in text and "engine=multiseed against engine=fast: 0 of 5 cells bit for bit" in text
    assert "| iris-ce " in text and EQUIVALENT in text


def test_report_has_the_section_when_engines_are_mixed(registry, tmp_path):
    d = write_results(tmp_path / "r", registry, engine="fast")
    assert main(["report", "--results-dir", str(d)]) == 0
    assert "Across environments" not in (d / "REPORT.md").read_text()
    write_results(d, registry, nudged(BASE), engine="multiseed", started="2026-01-02T00:00:00+00:00")
    assert main(["report", "--results-dir", str(d)]) == 0
    text = (d / "REPORT.md").read_text()
    assert text.index("## Across environments") < text.index("## Environment")
    assert "engine=multiseed against engine=fast: 0 of 5 cells bit for bit" in text


def test_environment_is_that_of_the_experiments_compared(registry, tmp_path):
    a = write_results(tmp_path / "a", registry)
    b = write_results(tmp_path / "b", registry)
    exp = registry["mnist-mlp"]
    ResultsStore(b).append([{**dict.fromkeys(RUN_COLUMNS, ""), "run_id": "m", "experiment": exp.id, "seed": 0, "device": "cpu",
                             "engine": "fast", "config_hash": exp.config_hash(), "status": "ok", "faithful": True,
                             "started_at": "2026", "host": "elsewhere", "dataset_md5": "mnist-md5"}], [], [])
    (report,) = compare_directories([a, b], registry, {})
    assert report.environment == [] and [r["arm"] for r in report.bitwise] == [EXP]


def test_results_of_an_earlier_version_are_read(registry, tmp_path):
    """A runs.csv written before the kernel columns existed compares; a foreign table is refused."""
    a = write_results(tmp_path / "a", registry)
    old = tmp_path / "old"
    old.mkdir()
    with open(a / "runs.csv") as f:
        rows = list(csv.reader(f))
    with open(old / "runs.csv", "w", newline="") as f:
        width = rows[0].index("cpu_capability")  # before cpu_capability, kernel_settings, the digests and the source seeds
        csv.writer(f).writerows(row[:width] for row in rows)
    (old / "epochs.csv").write_text((a / "epochs.csv").read_text())
    (report,) = compare_directories([old, a], registry, {})
    assert report.bitwise[0]["identical"] == 5
    assert {r["column"] for r in report.environment} == {"cpu_capability"}
    (old / "runs.csv").write_text("run_id,colour\nx,red\n")
    with pytest.raises(HarnessError, match="not this harness.s columns"):
        compare_directories([old, a], registry, {})


def test_out_writes_the_whole_comparison_and_prints_the_answer_last(registry, tmp_path, capsys):
    a = write_results(tmp_path / "a", registry)
    b = write_results(tmp_path / "b", registry, nudged(BASE))
    out = tmp_path / "COMPARE.txt"
    assert main(["compare", str(a), str(b)]) == 0
    whole = capsys.readouterr().out
    assert main(["compare", str(a), str(b), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert out.read_text() == whole  # the file holds what the command prints without --out
    assert printed == [f"the whole comparison: {out}", whole.splitlines()[0]]  # the one-line answer last


def test_identical_means_every_seed_alike_not_one():
    # The first seed agrees to the last bit, the other six do not: the distributions are far apart.
    a = pd.Series([0.97, 0.96, 0.95, 0.94, 0.93, 0.92, 0.91])
    b = pd.Series([0.97, 0.80, 0.70, 0.60, 0.50, 0.40, 0.30])
    assert compare_metric("test_acc", a, b, Margin(0.005)).verdict == DIFFERENT
    assert compare_metric("test_acc", a, a.copy(), Margin(0.005)).verdict == IDENTICAL


def test_the_speed_ratio_is_b_over_a():
    a = pd.Series([100.0, 110.0, 90.0, 105.0, 95.0])
    speed = compare_speed("train_samples_per_s", a, 2 * a)  # B twice as fast
    assert speed.ratio == pytest.approx(2.0) and speed.median_b == 2 * speed.median_a
    assert 1 < speed.ci_low < 2 < speed.ci_high
    assert compare_speed("train_samples_per_s", 2 * a, a).ratio == pytest.approx(0.5)


def constructed_report():
    """A comparison with every kind of row the text can hold, its figures chosen by hand (no statistics run)."""
    from harness.compare import Comparison, PairReport, Side, Speed

    empty = pd.DataFrame()
    distribution = [
        ("iris-ce", Comparison("train_acc", 5, 5, 0.98125, 0.98125, 0.005, IDENTICAL, diff=0.0)),
        ("iris-mse", Comparison("test_acc", 5, 5, 0.9368, 0.9421, 0.005, EQUIVALENT, test=PAIRED, diff=0.0053,
                                ci_low=-0.0012, ci_high=0.0118, p_difference=0.09412, p_tost=0.01234)),
        ("iris-mylinear", Comparison("test_loss", 5, 5, 0.07983, 0.07983, 1.5967e-05, EQUIVALENT, test=PAIRED, diff=1.5e-9,
                                     ci_low=-2.1e-8, ci_high=2.4e-8, p_difference=0.8612, p_tost=1.8234e-21)),
        # Paired over the seeds both hold, the others counted; a p at the random sign flips' floor said so.
        ("iris-mylinear", Comparison("train_acc", 30, 30, 0.9412, 0.9535, 0.0059, DIFFERENT, test=PAIRED, diff=0.0123,
                                     ci_low=0.0101, ci_high=0.0145, p_difference=0.0002, p_floor=True, p_tost=0.97,
                                     unshared=49)),
        # An arm's verdict is its worst metric's, whatever their order and alphabet.
        ("mnist-mlp", Comparison("test_loss", 30, 40, 0.2461, 0.2701, 0.004922, DIFFERENT, test=UNPAIRED, diff=0.024,
                                 ci_low=0.011, ci_high=0.037, p_difference=3.1234e-05, p_tost=0.9)),
        ("mnist-mlp", Comparison("test_acc", 30, 40, 0.9281, 0.9279, 0.005, EQUIVALENT, test=UNPAIRED, diff=-0.0002,
                                 ci_low=-0.003, ci_high=0.0026, p_difference=0.85, p_tost=0.004)),
        ("mnist-cnn", Comparison("test_acc", 2, 2, 0.96, 0.962, 0.005, UNDECIDED, test=PAIRED, diff=0.002,
                                 ci_low=-0.05, ci_high=0.054, p_difference=0.6, p_tost=0.3, seeds_needed=23)),
        ("mnist-cnn", Comparison("test_loss", 1, 1, 0.05, 0.051, 0.001, EQUIVALENT, diff=0.001, ci_low=0.001,
                                 ci_high=0.001, note="no spread")),
        ("mnist-cnn-50", Comparison("valid_acc", 1, 1, 0.9886, 0.9879, 0.005, UNDECIDED, diff=-0.0007,
                                    note="fewer than 2 seeds on a side: no spread to judge by")),
        ("mnist-cnn-50", Comparison("test_acc", 2, 2, 0.99, 0.991, 0.005, UNDECIDED, test=UNPAIRED, diff=0.001,
                                    ci_low=-0.02, ci_high=0.022, p_difference=0.7, p_tost=0.2)),
    ]
    return PairReport(
        Side("results", empty, empty), Side("/tmp/quick", empty, empty),
        environment=[{"column": "cpu_capability", "A": "AVX512", "B": "AVX2"},
                     {"column": "kernel_settings", "A": "(none)", "B": "mkldnn=off"}],
        bitwise=[
            {"arm": "iris-ce", "cells": 5, "identical": 5, "first_parting": None},
            {"arm": "iris-mse", "cells": 5, "identical": 3,
             "first_parting": {"seed": 2, "epoch": 100, "column": "train_loss", "a": 0.0695123456789, "b": 0.0695123456791}},
            {"arm": "mnist-mlp", "cells": 3, "identical": 2,
             "first_parting": {"seed": 1, "epoch": 2, "column": "(epoch rows)", "a": True, "b": False}},
            {"arm": "mnist-cnn", "cells": 2, "identical": 1,
             "first_parting": {"seed": 0, "epoch": "final", "column": "weights_sha256", "a": "ab" * 32, "b": "cd" * 32}},
        ],
        distribution=distribution,
        speed=[("iris-ce", Speed("train_samples_per_s", 50, 50, 33140.5, 44081.25, 1.3601, 1.20456, 1.5432)),
               ("iris-ce", Speed("wall_time_s", 2, 2, 8.5623, 9.2181, 0.90712, 5.2134e-05, 1234.5)),
               ("iris-mse", Speed("wall_time_s", 1, 1, 2.0, 1.0, 0.5))])


def nothing_in_common():
    from harness.compare import PairReport, Side

    empty = pd.DataFrame()
    return PairReport(Side("a", empty, empty), Side("b", empty, empty), environment=[], bitwise=[], distribution=[])


EXPECTED = ROOT / "tests" / "expected"


@pytest.mark.parametrize("markdown, expected", [(True, "compare.md"), (False, "compare.txt")])
def test_the_comparison_reads_as_written_down(markdown, expected):
    """The whole text of a constructed comparison, in both forms: summaries first (each arm's worst verdict
    counted, the arms not identical named, worst first), then each pair's four sections; a value one ulp
    from another written in full; '–' where there is no figure; '(nothing)' for an empty section. The files
    were read line by line against the report's figures; a change to the text shows here as a diff."""
    text = render([constructed_report(), nothing_in_common()], markdown=markdown)
    assert text + "\n" == (EXPECTED / expected).read_text(encoding="utf-8")


def test_the_csv_holds_every_result_with_its_sides(registry, tmp_path):
    """--csv: a row per environment, bitwise, distribution and speed result, each field the report's own
    figure (read back as the same float), empty where there is none."""
    a = write_results(tmp_path / "a", registry)
    moved = [v + d for v, d in zip(BASE["test_acc"], (0.02, 0.021, 0.019, 0.022, 0.018))]
    b = write_results(tmp_path / "b", registry, {**BASE, "test_acc": moved, "test_loss": nudged(BASE)["test_loss"]},
                      cpu_capability="AVX2")
    (report,) = compare_directories([a, b], registry, {})
    write_csv([report], tmp_path / "c.csv")
    assert b"\r" not in (tmp_path / "c.csv").read_bytes()  # lines end as the results files' do
    with open(tmp_path / "c.csv", newline="", encoding="utf-8") as f:
        header, *records = list(csv.reader(f))
    assert header == ["section", "a", "b", "metric", "value_a", "value_b", "experiment", "n_a", "n_b", "identical", "seed",
                      "epoch", "difference", "ci_low", "ci_high", "test", "p_difference", "p_floor", "unshared", "margin",
                      "p_tost", "verdict",
                      "seeds_needed", "ratio"]
    rows = [dict(zip(header, r)) for r in records]
    assert all(r["a"] == str(a) and r["b"] == str(b) for r in rows)

    def figure(text):
        return None if text == "" else float(text)

    def written(value):
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)

    (env,) = [r for r in rows if r["section"] == "environment"]
    assert (env["metric"], env["value_a"], env["value_b"]) == ("cpu_capability", "AVX512", "AVX2")
    assert all(env[k] == "" for k in header[6:])
    (bitwise,) = [r for r in rows if r["section"] == "bitwise"]
    assert {k: bitwise[k] for k in ("experiment", "n_a", "n_b", "identical", "seed", "epoch", "metric")} == {
        "experiment": EXP, "n_a": "5", "n_b": "5", "identical": "0", "seed": "0", "epoch": "2", "metric": "test_loss"}
    assert (figure(bitwise["value_a"]), figure(bitwise["value_b"])) == (BASE["test_loss"][0], nudged(BASE)["test_loss"][0])

    distribution = [r for r in rows if r["section"] == "distribution"]
    # Five pairs moved 2 pp each way of one sign: the permutation test's least p, 2/32, decides nothing.
    assert [(r["experiment"], r["metric"], r["verdict"], r["seeds_needed"]) for r in distribution] == [
        (EXP, "train_acc", IDENTICAL, ""), (EXP, "test_acc", UNDECIDED, "6"), (EXP, "test_loss", EQUIVALENT, "")]
    for row, (_, c) in zip(distribution, report.distribution):
        assert (row["n_a"], row["n_b"], row["test"]) == (str(c.n_a), str(c.n_b), c.test)
        assert [figure(row[k]) for k in ("value_a", "value_b", "difference", "ci_low", "ci_high", "p_difference", "margin",
                                         "p_tost")] == [written(v) for v in (c.mean_a, c.mean_b, c.diff, c.ci_low, c.ci_high,
                                                                             c.p_difference, c.margin, c.p_tost)]
        assert row["ratio"] == "" and row["unshared"] == "0" and row["p_floor"] == "false"
    assert distribution[0]["p_difference"] == distribution[0]["ci_low"] == "" and figure(distribution[1]["p_difference"]) == 2 / 32

    speed = [r for r in rows if r["section"] == "speed"]
    assert [r["metric"] for r in speed] == ["train_samples_per_s", "wall_time_s"]
    for row, (label, s) in zip(speed, report.speed):
        assert (row["experiment"], row["n_a"], row["n_b"]) == (label, "5", "5")
        assert [figure(row[k]) for k in ("value_a", "value_b", "ratio", "ci_low", "ci_high")] == [
            s.median_a, s.median_b, s.ratio, s.ci_low, s.ci_high]
    assert len(rows) == 7
    # An undecided verdict's seeds, a speed without an interval.
    write_csv([constructed_report()], tmp_path / "d.csv")
    with open(tmp_path / "d.csv", newline="", encoding="utf-8") as f:
        constructed = list(csv.DictReader(f))
    assert [r["seeds_needed"] for r in constructed if r["section"] == "distribution"] == ["", "", "", "", "", "", "23", "", "", ""]
    assert [(r["ratio"], r["ci_low"]) for r in constructed if r["section"] == "speed"] == [
        ("1.3601", "1.20456"), ("0.90712", "5.2134e-05"), ("0.5", "")]

    with pytest.raises(HarnessError, match=rf"^--csv {tmp_path}: cannot write \(Is a directory\); pass a writable path$"):
        write_csv([report], tmp_path)


def test_a_margin_is_a_number_in_any_spelling_zero_included():
    assert parse_margins(["test_acc=1E-2", "test_loss=5e-1%", "valid_acc=0"]) == {
        "test_acc": Margin(0.01), "test_loss": Margin(0.005, of="mean"), "valid_acc": Margin(0.0)}
    with pytest.raises(HarnessError) as err:
        parse_margins(["test_acc=0.01", "accuracy=1"])
    assert str(err.value) == ("--margin 'accuracy=1': expected METRIC=VALUE or METRIC=VALUE% with METRIC a split (train, valid, "
                              "test) and a measure (loss, acc, mse, mae, r2) joined by _ and VALUE a number >= 0 (e.g. "
                              "test_acc=0.01, test_loss=2%)")
    assert parse_margins(["test_r2=0.01"]) == {"test_r2": Margin(0.01)}


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing", "{d}/missing: no such directory; name a results directory that `harness run` wrote"),
    (lambda d: d, "{d}: no runs.csv in it; name a results directory that `harness run` wrote"),
])
def test_a_directory_without_results_is_named(registry, tmp_path, make, message):
    with pytest.raises(HarnessError) as raised:
        compare_directories([make(tmp_path), make(tmp_path)], registry, {})
    assert str(raised.value) == message.format(d=tmp_path)


def tear(directory):
    """A partial last row in runs.csv, as a killed writer or a hand edit leaves it."""
    with open(directory / "runs.csv", "a", encoding="utf-8") as f:
        f.write("torn,row\n")


def torn_note(directory, read):
    """What reading says of a runs.csv whose last of `read` rows is torn (two fields)."""
    return (f"1 of {read} row(s) in {directory / 'runs.csv'} refused (first, line {read + 1}: 2 fields, expected "
            f"{len(RUN_COLUMNS)} (a partial or hand-edited row)); `harness check --results-dir {directory}` lists them")


def test_what_cannot_be_compared_is_said_in_full(registry, tmp_path):
    """Each refusal's whole sentence: the groups found, and what reading refused (or that it refused nothing)."""
    d = write_results(tmp_path / "one", registry)

    def refusal(dirs, by=None):
        with pytest.raises(HarnessError) as raised:
            compare_directories(dirs, registry, {}, by=by)
        return str(raised.value)

    assert refusal([d], by="colour") == ("--by: unknown column 'colour'; use one of engine, device, torch_version, "
                                         "git_commit, host, cpu_capability")
    assert refusal([d, d], by="engine") == "compare --by engine takes one results directory; got 2"
    assert refusal([d]) == "compare takes two results directories (A B), or one with --by; got 1"
    assert refusal([d], by="engine") == f"{d}: one engine only (engine=fast): nothing to compare; run with another engine first; no row was refused"
    # A group whose value is empty (rows of a version that did not record it) is named '?'.
    blank = write_results(tmp_path / "blank", registry, cpu_capability="")
    assert refusal([blank], by="cpu_capability").startswith(f"{blank}: one cpu_capability only (cpu_capability=?)")
    # No ok run at all: every row refused, the first named, with where to see the rest.
    failed = write_results(tmp_path / "failed", registry, status="failed")
    assert refusal([failed], by="engine").startswith(
        f"{failed}: one engine only (no ok runs): nothing to compare; run with another engine first; 5 of 5 row(s) in "
        f"{failed / 'runs.csv'} refused (first, line 2: run ")
    tear(d)
    assert refusal([d], by="engine").endswith(f"run with another engine first; {torn_note(d, 6)}")
    # Cells are matched on every cell column but the grouping one: engines on other devices share no cell.
    mixed = tmp_path / "mixed"
    write_results(mixed, registry, engine="fast")
    write_results(mixed, registry, engine="multiseed", device="cuda", started="2026-01-02T00:00:00+00:00")
    write_results(mixed, registry, engine="reference", device="cuda:1", started="2026-01-03T00:00:00+00:00")
    assert refusal([mixed], by="engine") == ("no experiment (with the same configuration) has ok runs in both engine=fast "
                                             "and engine=multiseed, engine=reference: nothing to compare; no row was refused")
    tear(mixed)
    assert refusal([mixed], by="engine").endswith(f"engine=reference: nothing to compare; {torn_note(mixed, 16)}")  # said once
    # Two directories, each refusing a row, sharing no cell: both refusals said.
    cuda = tmp_path / "cuda"
    write_results(cuda, registry, device="cuda")
    write_results(cuda, registry, device="cuda:1", started="2026-01-02T00:00:00+00:00")
    tear(cuda)
    assert refusal([d, cuda]) == (f"no experiment (with the same configuration) has ok runs in both {d} and {cuda}: "
                                  f"nothing to compare; {torn_note(d, 6)}; {torn_note(cuda, 11)}")


def test_groups_started_together_are_taken_in_the_order_of_their_values(registry, tmp_path):
    d = tmp_path / "r"
    write_results(d, registry, engine="reference")
    write_results(d, registry, engine="fast")  # the same start time: the baseline is the first value, fast
    reports = compare_directories([d], registry, {}, by="engine")
    assert [(r.a.label, r.b.label) for r in reports] == [("engine=fast", "engine=reference")]


def test_a_side_with_one_seed_or_none_is_undecided_and_says_why():
    five = pd.Series([0.95, 0.96, 0.97, 0.94, 0.955])
    for a, b in ((pd.Series([0.95]), five), (five, pd.Series([0.96], index=[7]))):
        c = compare_metric("test_acc", a, b, Margin(0.005))
        assert (c.verdict, c.note, c.test, c.n_a, c.n_b) == (UNDECIDED, "fewer than 2 seeds on a side: no spread to judge by",
                                                             "", len(a), len(b))
        assert (c.mean_a, c.mean_b) == (pytest.approx(a.mean()), pytest.approx(b.mean())) and math.isnan(c.p_difference)
    # A metric one side never recorded (all empty): counted as no seeds, without a warning from numpy.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = compare_metric("valid_acc", pd.Series([math.nan] * 5), five, Margin(0.005))
        reverse = compare_metric("valid_acc", five, pd.Series([math.nan] * 5), Margin(0.005))
    assert (c.verdict, c.n_a, c.n_b) == (UNDECIDED, 0, 5) and math.isnan(c.mean_a) and c.mean_b == pytest.approx(five.mean())
    assert (reverse.verdict, reverse.n_a, reverse.n_b) == (UNDECIDED, 5, 0) and math.isnan(reverse.mean_b)


def test_no_spread_at_exactly_the_margin_is_equivalent():
    # Every seed moved by exactly the margin (binary fractions: no rounding): the bound is inclusive.
    c = compare_metric("test_acc", pd.Series([0.25, 0.5]), pd.Series([0.375, 0.625]), Margin(0.125))
    assert (c.verdict, c.note, c.diff, c.ci_low, c.ci_high) == (EQUIVALENT, "no spread", 0.125, 0.125, 0.125)
    beyond = compare_metric("test_acc", pd.Series([0.25, 0.5]), pd.Series([0.5, 0.75]), Margin(0.125))
    assert (beyond.verdict, beyond.ci_low, beyond.ci_high) == (DIFFERENT, 0.25, 0.25)


def test_shared_seeds_are_tested_as_pairs_and_only_an_undecided_verdict_counts_seeds():
    """Seeds far apart, each seed's two runs close: paired, the difference is tight and equivalence shows;
    taken as two samples (the seeds' spread) it could not."""
    a = pd.Series([0.90, 0.95, 0.97, 0.92, 0.99])
    b = a + [0.001, -0.001, 0.0005, 0.0, 0.0002]
    c = compare_metric("test_acc", a, b, Margin(0.005))
    assert (c.test, c.verdict, c.seeds_needed) == (PAIRED, EQUIVALENT, None)
    assert c.p_tost == pytest.approx(stats.equivalence_p(a.to_numpy(), b.to_numpy(), 0.005, paired=True))
    assert stats.equivalence_p(a.to_numpy(), b.to_numpy(), 0.005, paired=False) > 0.05
    # A steady 2 pp: five pairs cannot show it (least p 2/32), so they say six would; six do.
    shift = [0.02, 0.021, 0.019, 0.022, 0.018, 0.02]
    five = compare_metric("test_acc", a, a + shift[:5], Margin(0.005))
    assert (five.verdict, five.p_difference, five.seeds_needed) == (UNDECIDED, pytest.approx(2 / 32), 6)
    six = pd.Series([*a, 0.94])
    assert compare_metric("test_acc", six, six + shift, Margin(0.005)).verdict == DIFFERENT


def test_an_undecided_welch_comparison_counts_seeds_at_the_two_samples_pooled_spread():
    a = pd.Series([0.90, 0.95, 0.97, 0.92, 0.99], index=range(5))
    b = pd.Series([0.93, 0.96, 0.91], index=range(5, 8))
    c = compare_metric("test_acc", a, b, Margin(0.005))
    assert (c.test, c.verdict) == (UNPAIRED, UNDECIDED)
    pooled = math.sqrt((4 * np.var(a, ddof=1) + 2 * np.var(b, ddof=1)) / 6)  # each side's variance by its degrees of freedom
    assert c.seeds_needed == stats.seeds_to_decide(b.mean() - a.mean(), pooled, 0.005, paired=False)
    assert c.seeds_needed != stats.seeds_to_decide(b.mean() - a.mean(), pooled * 1.05, 0.005, paired=False)


def test_runs_alike_to_the_last_digits_compare_without_a_warning(registry, tmp_path):
    """Differences of one or two ulps, not all equal: the tests run on nearly identical data, quietly."""
    steps = [1, 2, 1, 1, 2]
    values = {m: [float(np.nextafter(np.nextafter(v, 2.0), 2.0)) if steps[i] == 2 else float(np.nextafter(v, 2.0))
                  for i, v in enumerate(vs)] for m, vs in BASE.items()}
    a, b = write_results(tmp_path / "a", registry), write_results(tmp_path / "b", registry, values)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (report,) = compare_directories([a, b], registry, {})
    assert set(verdicts([report]).values()) == {EQUIVALENT}
    assert {c.test for _, c in report.distribution} == {PAIRED}


def test_speed_counts_positive_figures_and_gives_an_interval_where_both_sides_can():
    def speed(a, b):
        return compare_speed("wall_time_s", pd.Series(a, dtype=float), pd.Series(b, dtype=float))

    s = speed([0.5, 0.6, 0.0, math.nan], [0.25, 0.3])  # wall times under a second count; zero and empty do not
    assert (s.n_a, s.n_b, s.median_a, s.median_b, s.ratio) == (2, 2, 0.55, 0.275, pytest.approx(0.5))
    logs = stats.unpaired(np.log([0.5, 0.6]), np.log([0.25, 0.3]))
    assert (s.ci_low, s.ci_high) == (pytest.approx(math.exp(logs.ci_low)), pytest.approx(math.exp(logs.ci_high)))
    assert speed([0.0, math.nan], [1.0, 2.0]) is None and speed([1.0, 2.0], []) is None
    one = speed([1.0], [2.0, 2.2])  # one run a side: a ratio, no interval
    assert (one.n_a, one.n_b) == (1, 2) and math.isnan(one.ci_low)
    assert math.isnan(speed([1.0, 2.0], [2.0]).ci_high)
    assert math.isnan(speed([1.0, 1.0], [2.0, 2.0]).ci_low)  # no spread on either side
    spread_on_one_side = speed([1.0, 1.0], [2.0, 2.01])  # a log spread far below 1
    assert spread_on_one_side.ci_low < 2 < spread_on_one_side.ci_high
    assert speed([1.01, 1.0], [2.0, 2.0]).ci_low < 2


def test_where_cells_first_part_the_earliest_epoch_wins_then_the_seed(registry, tmp_path):
    """Partings at an earlier epoch come first, then the lower seed."""
    a = write_results(tmp_path / "a", registry)

    def parted(name, epochs):
        b = write_results(tmp_path / name, registry)
        runs = pd.read_csv(b / "runs.csv", dtype=str, keep_default_na=False)
        frame = pd.read_csv(b / "epochs.csv", dtype=str, keep_default_na=False)
        run_ids = runs.set_index("seed")["run_id"]
        for seed, epoch, value in epochs:
            frame.loc[(frame["run_id"] == run_ids[str(seed)]) & (frame["epoch"] == str(epoch)), "train_loss"] = value
            if epoch == 2:  # the last epoch's figures are the run's own
                runs.loc[runs["seed"] == str(seed), "train_loss"] = value
        frame.to_csv(b / "epochs.csv", index=False)
        runs.to_csv(b / "runs.csv", index=False)
        (report,) = compare_directories([a, b], registry, {})
        (row,) = report.bitwise
        return row["identical"], row["first_parting"]

    assert parted("b", [(2, 2, "0.61"), (3, 1, "0.99"), (4, 1, "0.98")]) == (
        2, {"seed": 3, "epoch": 1, "column": "train_loss", "a": 1.0, "b": 0.99})
    assert parted("c", [(2, 2, "0.61")]) == (4, {"seed": 2, "epoch": 2, "column": "train_loss", "a": 0.6, "b": 0.61})
    assert parted("d", []) == (5, None)


def test_first_parting_reads_an_empty_figure_as_different_from_a_number_and_equal_to_an_empty_one():
    """rows.first_parting, on rows as read (text): the one answer to "are these runs bit for bit the same?"
    that compare, `harness variance`'s reruns and the GPU check's reruns all ask."""
    epoch = {"epoch": "1", **{m: "0.5" for m in METRICS}, "valid_loss": ""}
    run = {"status": "ok", "epochs": "1", **{m: "0.5" for m in METRICS}, "valid_loss": ""}
    filled = {**epoch, "valid_loss": "0.3"}
    assert first_parting(run, run, [epoch], [dict(epoch)]) is None
    assert first_parting(run, run, [epoch], [filled]) == {"epoch": 1, "column": "valid_loss", "a": "", "b": "0.3"}
    assert first_parting(run, run, [filled], [epoch])["column"] == "valid_loss"
    # An epoch logged on one side only, either side; a repeated epoch row counts once (its first).
    later = [epoch, {**epoch, "epoch": "2"}]
    assert first_parting(run, run, later, [epoch]) == {"epoch": 2, "column": "(epoch rows)", "a": True, "b": False}
    assert first_parting(run, run, [epoch], later) == {"epoch": 2, "column": "(epoch rows)", "a": False, "b": True}
    assert first_parting(run, run, [epoch, {**epoch, "train_loss": "0.1"}], [epoch]) is None
    # The trace's running losses after every epoch row, then the run rows' own figures.
    trace = {"epoch": "1", "step": "500", "samples": "32000", "running_loss": "0.7"}
    assert first_parting(run, run, [epoch], [epoch], [trace], [{**trace, "running_loss": "0.71"}]) == {
        "epoch": 1, "column": "running_loss", "a": "0.7", "b": "0.71"}
    assert first_parting(run, {**run, "status": "diverged"}, [epoch], [epoch]) == {"epoch": "final", "column": "status", "a": "ok",
                                                                                  "b": "diverged"}
    # The weights' digest counts where both sides recorded one, and only then.
    digest, other = ({**run, "weights_sha256": text} for text in ("ab" * 32, "cd" * 32))
    assert first_parting(digest, other, [epoch], [epoch]) == {"epoch": "final", "column": "weights_sha256", "a": "ab" * 32, "b": "cd" * 32}
    assert first_parting(run, other, [epoch], [epoch]) is None and first_parting(digest, run, [epoch], [epoch]) is None


def test_arms_are_named_by_what_tells_them_apart(registry, tmp_path):
    """A side holding two engines is compared engine by engine, each arm named by its engine; a quick run's
    overrides name its arm too, and seeds on one side only are left out of the bitwise count."""
    from harness.compare import match_columns, read_side

    a, b = tmp_path / "a", tmp_path / "b"
    write_results(a, registry, engine="fast")
    write_results(a, registry, engine="multiseed")
    write_results(b, registry, engine="fast")
    write_results(b, registry, engine="multiseed")
    side_a, side_b = read_side(a, registry), read_side(b, registry)
    assert match_columns(side_a, side_b, None) == ["experiment", "config_hash", "engine"]
    assert match_columns(side_b, side_a, None) == ["experiment", "config_hash", "engine"]
    one_engine = read_side(write_results(tmp_path / "one", registry, engine="fast"), registry)
    assert match_columns(side_a, one_engine, None) == match_columns(one_engine, side_a, None) == ["experiment", "config_hash", "engine"]
    (report,) = compare_directories([a, b], registry, {})
    assert [r["arm"] for r in report.bitwise] == [f"{EXP} [fast]", f"{EXP} [multiseed]"]
    # One engine a side: matched on experiment and recipe alone, the arm named by the experiment.
    single = write_results(tmp_path / "single", registry, engine="reference")
    assert match_columns(read_side(single, registry), read_side(single, registry), None) == ["experiment", "config_hash"]
    with pytest.raises(HarnessError, match="nothing to compare"):  # B's two engines make the engine part of a cell
        compare_directories([single, a], registry, {})
    # A quick run: its overrides in the arm's name, on a side of three seeds against five.
    exp = registry[EXP]
    quick = {"overrides": '{"epochs": 1}', "faithful": False, "config_hash": exp.config_hash({"epochs": 1})}
    c = write_results(tmp_path / "c", registry, **quick)
    three = {m: vs[:3] for m, vs in BASE.items()}
    d = write_results(tmp_path / "d", registry, three, engine="multiseed", **quick)
    (report,) = compare_directories([c, d], registry, {})
    assert [(r["arm"], r["cells"], r["identical"]) for r in report.bitwise] == [(f"{EXP} [epochs=1]", 3, 3)]
    e = write_results(tmp_path / "e", registry, {m: vs[:1] for m, vs in BASE.items()}, **quick)  # an arm of one run
    assert compare_directories([e, c], registry, {})[0].bitwise[0]["arm"] == f"{EXP} [epochs=1]"
    # Two devices and two engines on a side, and a quick run: every one in the name, in that order.
    f, g = tmp_path / "f", tmp_path / "g"
    for directory in (f, g):
        write_results(directory, registry, engine="fast", **quick)
        write_results(directory, registry, engine="multiseed", device="cuda", **quick)
    assert [r["arm"] for r in compare_directories([f, g], registry, {})[0].bitwise] == [
        f"{EXP} [cpu, fast, epochs=1]", f"{EXP} [cuda, multiseed, epochs=1]"]


def test_the_environment_names_every_value_and_an_empty_one(registry, tmp_path):
    a = write_results(tmp_path / "a", registry, cpu_capability="")
    b = tmp_path / "b"
    write_results(b, registry, cpu_capability="AVX2")
    write_results(b, registry, engine="multiseed", cpu_capability="AVX512")
    (report,) = compare_directories([a, b], registry, {})
    assert report.environment == [{"column": "cpu_capability", "A": "(none)", "B": "AVX2"}]  # B's arm compared: fast
    (reverse,) = compare_directories([b, a], registry, {})
    assert reverse.environment == [{"column": "cpu_capability", "A": "AVX2", "B": "(none)"}]
    write_results(a, registry, engine="multiseed", cpu_capability="AVX512")
    (report,) = compare_directories([a, b], registry, {})
    assert report.environment == [{"column": "cpu_capability", "A": "(none), AVX512", "B": "AVX2, AVX512"}]


def test_the_headline_metrics_lead_with_the_published_one(registry):
    from harness.compare import headline_metrics

    assert headline_metrics(registry["iris-ce"]) == ["train_acc", "test_acc", "test_loss"]
    assert registry["iris-simplenet"].published is None
    assert headline_metrics(registry["iris-simplenet"]) == ["test_acc", "test_loss"]
    assert headline_metrics(None) == ["test_acc", "test_loss"]  # an experiment no longer registered


def test_a_metric_recorded_on_one_side_only_is_still_shown(registry, tmp_path):
    a = write_results(tmp_path / "a", registry)
    b = write_results(tmp_path / "b", registry, {**BASE, "test_loss": [None] * 5})  # an empty field
    (report,) = compare_directories([a, b], registry, {})
    loss = {c.metric: c for _, c in report.distribution}["test_loss"]
    assert (loss.verdict, loss.n_a, loss.n_b) == (UNDECIDED, 5, 0)
    # Recorded on neither side (iris has no validation split): no row.
    assert "valid_acc" not in {c.metric for _, c in report.distribution}


def test_the_reports_section_across_environments_reads_as_written_down(registry, tmp_path):
    """Each column that varies gets its comparison, the groups matched on every other cell column; groups
    that share no cell (here engines each on its own device) add nothing, and where nothing is left the
    section is absent. An experiment run one way only takes no part: run first, it would otherwise make
    its engine the baseline."""
    from harness.compare import read_side

    d = tmp_path / "r"
    write_results(d, registry, engine="multiseed", started="2025-12-31T00:00:00+00:00", experiment="iris-mse")
    write_results(d, registry, engine="fast")
    write_results(d, registry, nudged(BASE), engine="multiseed", started="2026-01-02T00:00:00+00:00")
    write_results(d, registry, shifted(BASE, "test_loss", 0.05), device="cuda", device_name="Test GPU",
                  started="2026-01-03T00:00:00+00:00")
    side = read_side(d, registry)
    text = across_environments_section(side.runs, registry, side.epochs)
    assert text.replace(str(d), "DIR") + "\n" == (EXPECTED / "across-environments.md").read_text(encoding="utf-8")

    apart = tmp_path / "apart"
    write_results(apart, registry, engine="fast")
    write_results(apart, registry, nudged(BASE), engine="multiseed", device="cuda", started="2026-01-02T00:00:00+00:00")
    side = read_side(apart, registry)
    assert across_environments_section(side.runs, registry, side.epochs) == ""
