"""`harness compare`: verdicts on constructed results, --by, margins, bad input, the exit status gate,
the report's section, and --portable's settings in the rows."""

import csv
import math
import os
import platform
import shutil
import subprocess
import sys
import uuid

import numpy as np
import pandas as pd
import pytest

from harness import portable
from harness.cli import main
from harness.compare import (DIFFERENT, EQUIVALENT, IDENTICAL, UNDECIDED, Margin, across_environments_section,
                             compare_directories, compare_metric, compare_speed, first_parting,
                             parse_margins)
from harness.errors import HarnessError, RegistryError
from harness.registry import METRICS, load_registry
from harness.results import RUN_COLUMNS, ResultsStore
from harness.rows import read

from .conftest import ROOT

EXP = "iris-ce"  # headline metric train_acc
# Five seeds' final metrics: spread well inside the default margins (0.005 for accuracies, 2% for losses).
BASE = {"train_acc": [0.9732, 0.9741, 0.9725, 0.9738, 0.9730], "test_acc": [0.9605, 0.9611, 0.9598, 0.9602, 0.9609],
        "test_loss": [0.6101, 0.6112, 0.6095, 0.6108, 0.6104]}


def write_results(directory, registry, values=BASE, engine="fast", started="2026-01-01T00:00:00+00:00", **env):
    """A results directory as the runner writes it: one run per seed, two epoch rows each (the last = final)."""
    exp = registry[EXP]
    runs, epochs = [], []
    for seed in range(len(values["test_acc"])):
        final = {m: v[seed] for m, v in values.items()}
        run = {"run_id": uuid.uuid4().hex[:12], "experiment": EXP, "seed": seed, "device": "cpu", "device_name": "Test CPU",
               "engine": engine, "epochs": 2, "faithful": True, "status": "ok", "wall_time_s": 2.0 + 0.1 * seed,
               "train_time_s": 1.0, "train_samples_per_s": 1000.0 + 10 * seed, "started_at": started,
               "config_hash": exp.config_hash(), "git_commit": "abc123", "torch_version": "2.14.1",
               "python_version": "3.11.7", "host": "testhost", "threads": 1, "dataset_md5": "md5", "cpu_capability": "AVX512",
               "kernel_settings": "", **final, **env}
        runs.append(run)
        epochs += [{"run_id": run["run_id"], "epoch": 1, "train_loss": 1.0, "train_acc": 0.5},
                   {"run_id": run["run_id"], "epoch": 2, "train_loss": 0.6, **final}]
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
    assert (c.test, c.verdict) == ("paired", UNDECIDED)
    assert c.p_t > 0.05 and c.p_tost > 0.05
    # Differences +0.006 and -0.002 (sd 0.0057): equivalence within 0.005 wants a one-sided test at
    # effect (0.005 - 0.002) / 0.0057 = 0.53, about 23 pairs at 80% power.
    assert 20 <= c.seeds_needed <= 30
    # Other seeds on each side: two independent samples, whose spread is the seeds' own (0.014), so more.
    welch = compare_metric("test_acc", a, pd.Series([0.956, 0.968], index=[2, 3]), Margin(0.005))
    assert (welch.test, welch.verdict) == ("Welch", UNDECIDED)
    assert welch.seeds_needed > 2 * c.seeds_needed


def test_independent_samples_shifted_are_different():
    rng = np.random.default_rng(0)
    a = pd.Series(0.97 + 0.002 * rng.standard_normal(10), index=range(10))
    b = pd.Series(0.95 + 0.002 * rng.standard_normal(10), index=range(10, 20))
    c = compare_metric("test_acc", a, b, Margin(0.005))
    assert (c.test, c.verdict) == ("Welch", DIFFERENT)
    assert c.ci_low < -0.015 and c.ci_high < 0 and c.p_rank < 0.05
    assert compare_metric("test_acc", a, a.set_axis(range(10, 20)) + 1e-4, Margin(0.005)).verdict == EQUIVALENT


def test_relative_margin_and_zero_spread():
    loss = compare_metric("test_loss", pd.Series([0.5, 0.5]), pd.Series([0.505, 0.505]), Margin(0.02, relative=True))
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
    assert parse_margins(["test_acc=0.01", "test_loss=2%"]) == {"test_acc": Margin(0.01), "test_loss": Margin(0.02, True)}
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


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="the portable settings name x86 instruction sets")
def test_portable_records_its_settings(tmp_path):
    """--portable starts the run again with the settings in force; the rows say so."""
    out = tmp_path / "r"
    env = {k: v for k, v in os.environ.items() if k not in portable.environment()}
    done = subprocess.run([sys.executable, "-m", "harness", "run", EXP, "--seeds", "0", "--epochs", "100", "--portable",
                           "--results-dir", str(out)], capture_output=True, text=True, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    (row,) = read(out).runs.rows
    assert row["cpu_capability"] == "AVX2"
    assert set(row["kernel_settings"].split()) == {"ATEN_CPU_CAPABILITY=avx2", "MKL_CBWR=AVX2,STRICT", "ONEDNN_MAX_CPU_ISA=AVX2",
                                                 "DNNL_MAX_CPU_ISA=AVX2", "mkldnn=off"}
    assert math.isfinite(float(row["test_acc"]))


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


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_all_fails_where_runs_or_thresholds_fail_and_stops_on_bad_input(tmp_path):
    failed_run = make_all(tmp_path, run_status=1)
    assert failed_run.returncode != 0 and "harness compare" in failed_run.stdout  # still reported and compared
    missed = make_all(tmp_path, check_status=1)
    assert missed.returncode != 0 and "harness compare" in missed.stdout
    bad_input = make_all(tmp_path, run_status=2)
    assert bad_input.returncode != 0 and "harness report" not in bad_input.stdout


def test_environment_is_that_of_the_experiments_compared(registry, tmp_path):
    a = write_results(tmp_path / "a", registry)
    b = write_results(tmp_path / "b", registry)
    exp = registry["mnist-mlp"]
    ResultsStore(b).append([{**dict.fromkeys(RUN_COLUMNS, ""), "run_id": "m", "experiment": exp.id, "seed": 0, "device": "cpu",
                             "engine": "fast", "config_hash": exp.config_hash(), "status": "ok", "faithful": True,
                             "started_at": "2026", "host": "elsewhere", "dataset_md5": "mnist-md5"}], [], [])
    (report,) = compare_directories([a, b], registry, {})
    assert report.environment == [] and [r["arm"] for r in report.bitwise] == [EXP]


def test_portable_settings_reach_workers(monkeypatch):
    """Ray tasks start torch with the driver's settings; any process running cells turns oneDNN off."""
    import torch

    from harness.ray_executor import runtime_env

    assert "env_vars" not in runtime_env()
    for name, value in portable.environment().items():
        monkeypatch.setenv(name, value)
    assert runtime_env()["env_vars"] == portable.environment()
    monkeypatch.setattr(torch.backends.mkldnn, "enabled", True)
    portable.apply_in_process()
    assert torch.backends.mkldnn.enabled is False


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
    # The first seed agrees to the last bit, the other four do not: the distributions are far apart.
    a = pd.Series([0.97, 0.96, 0.95, 0.94, 0.93])
    b = pd.Series([0.97, 0.80, 0.70, 0.60, 0.50])
    assert compare_metric("test_acc", a, b, Margin(0.005)).verdict == DIFFERENT
    assert compare_metric("test_acc", a, a.copy(), Margin(0.005)).verdict == IDENTICAL


def test_runs_alike_at_every_epoch_part_on_a_final_figure_only_in_runs_csv():
    # A metric measured once after training (T1's train accuracy with the trained net) is in runs.csv only.
    epochs = pd.DataFrame([{"epoch": 1, **{m: 0.5 for m in METRICS}}, {"epoch": 2, **{m: 0.9 for m in METRICS}}])
    run_a = pd.Series({**{m: 0.9 for m in METRICS}, "test_acc": 0.97})
    run_b = pd.Series({**{m: 0.9 for m in METRICS}, "test_acc": float(np.nextafter(0.97, 1.0))})
    assert first_parting(run_a, run_b, epochs, epochs.copy()) == {"epoch": "final", "column": "test_acc",
                                                                   "a": 0.97, "b": float(np.nextafter(0.97, 1.0))}
    assert first_parting(run_a, run_a.copy(), epochs, epochs.copy()) is None


def test_the_speed_ratio_is_b_over_a():
    a = pd.Series([100.0, 110.0, 90.0, 105.0, 95.0])
    speed = compare_speed("train_samples_per_s", a, 2 * a)  # B twice as fast
    assert speed.ratio == pytest.approx(2.0) and speed.median_b == 2 * speed.median_a
    assert 1 < speed.ci_low < 2 < speed.ci_high
    assert compare_speed("train_samples_per_s", 2 * a, a).ratio == pytest.approx(0.5)
