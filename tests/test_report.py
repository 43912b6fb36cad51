"""`harness report`: statistics, verdicts, what is counted and ignored, plots, and the empty cases."""

import csv
import json
import math
import statistics
import uuid

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from harness.cli import main
from harness.catalogue import METRIC_NAMES as METRICS
from harness.registry import variants
from harness.results import ResultsStore
from harness.report.comparisons import ablation_section
from statsmodels.stats.multitest import multipletests

from harness.report.tables import Verdict, answer, holm
from harness.stats import ABOVE, CONSISTENT, single_draw

T_975 = {2: 4.302652729911275, 4: 2.7764451051977987}  # Student t 97.5% quantiles by degrees of freedom
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def report(results_dir) -> str:
    assert main(["report", "--results-dir", str(results_dir)]) == 0
    return (results_dir / "REPORT.md").read_text()


def section(text, heading):
    """The text of one `## heading` section of the report."""
    start = text.index(f"## {heading}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


def cells(line):
    return [c.strip() for c in line.strip("|").split("|")]


def summary_cells(text, exp_id):
    """The cells of an experiment's row in the tables of the seeds (the speed table names no metric)."""
    text = text.replace(section(text, "Published figures") if "## Published figures" in text else "", "")
    (line,) = [x for x in text.splitlines() if x.startswith(f"| {exp_id} ") and ("_acc " in x or "_loss " in x)]
    return cells(line)


def published_cells(text, exp_id, figure):
    """The cells of the verdict row of one published figure ('valid_acc @12')."""
    rows = [cells(x) for x in section(text, "Published figures").splitlines() if x.startswith(f"| {exp_id} ")]
    (row,) = [r for r in rows if r[3].split(" (")[0] == figure]
    return dict(zip(PUBLISHED_COLUMNS, row))


PUBLISHED_COLUMNS = ["experiment", "device", "engine", "figure", "published", "seeds", "mean ± std", "shares", "rank p",
                     "holm", "verdict", "detects", "range", "pi"]


def pct(value):
    return f"{100 * value:.2f}%"


def fake_run(registry, exp_id, seed, *, overrides=None, config_hash=None, started="2026-01-01T00:00:00+00:00", **values):
    """A runs.csv row as the runner writes it, with the given metrics."""
    exp = registry.get(exp_id)
    epochs = (overrides or {}).get("epochs") or (exp.training["epochs"] if exp else 2)
    return {
        "run_id": uuid.uuid4().hex[:12], "experiment": exp_id, "seed": seed, "device": "cpu", "device_name": "Test CPU",
        "engine": "fast", "epochs": epochs, "faithful": not overrides, "status": "ok", "wall_time_s": 2.0 + seed,
        "train_time_s": 1.0, "train_samples_per_s": 1000.0 * (seed + 1), "started_at": started,
        "config_hash": config_hash or exp.config_hash(overrides), "git_commit": "abc123", "torch_version": "2.14.1",
        "python_version": "3.11.7", "host": "testhost", "threads": 2,
        "overrides": json.dumps(overrides) if overrides else "", "dataset_md5": "md5-of-data", **values,
    }


def fake_epochs(run, metrics_per_epoch):
    return [{"run_id": run["run_id"], "epoch": i + 1, **m} for i, m in enumerate(metrics_per_epoch)]


def record(out, runs, epochs=(), trace=()):
    """Rows as the runner records them: each finished run's figures are those of its last epoch row, which is
    written from the run's figures where the test gives none (and gives the run what only it holds)."""
    epochs = [dict(e) for e in epochs]
    for run in runs:
        if run.get("status", "ok") == "error":
            continue
        mine = [e for e in epochs if e["run_id"] == run["run_id"]]
        if not mine:
            epochs.append({"run_id": run["run_id"], "epoch": run["epochs"], **{m: run[m] for m in METRICS if m in run}})
            continue
        last = max(mine, key=lambda e: e["epoch"])
        run["epochs"] = last["epoch"]
        last.update({m: run[m] for m in METRICS if m in run and m not in last})  # what only the run was given
        run.update({m: last[m] for m in METRICS if m in last})  # the run's figures are its last epoch's
    ResultsStore(out).append(runs, epochs, list(trace))


@pytest.fixture(scope="module")
def iris_quick_runs(tmp_path_factory):
    """Three real quick runs of iris-ce (200 epochs: two logged), reported once."""
    out = tmp_path_factory.mktemp("iris") / "res"
    assert main(["run", "iris-ce", "--seeds", "0-2", "--epochs", "200", "--results-dir", str(out)]) == 0
    assert main(["report", "--results-dir", str(out)]) == 0
    return out


def test_summary_of_real_runs_matches_independent_statistics(iris_quick_runs):
    text = (iris_quick_runs / "REPORT.md").read_text()
    values = [float(r["train_acc"]) for r in read(iris_quick_runs / "runs.csv")]  # iris-ce's headline metric
    mean, sd = statistics.mean(values), statistics.stdev(values)
    half = T_975[2] * sd / math.sqrt(3)
    row = summary_cells(text, "iris-ce")
    assert row[3:7] == ["epochs=200", "3", "train_acc", f"{pct(mean)} ± {pct(sd)}"]
    # Three runs: too few for the bootstrap interval and the stall fence.
    assert row[7:] == [f"[{pct(mean - half)}, {pct(mean + half)}]", "–", pct(min(values)), pct(max(values)), "–"]
    # Quick runs are kept out of the comparison with the published value.
    assert "## Quick runs (not faithful)" in text and "No faithful runs yet" in text


def test_plots_exist_are_png_and_are_referenced(iris_quick_runs):
    text = (iris_quick_runs / "REPORT.md").read_text()
    for name in ("curves-iris-ce.png", "headline.png", "speed.png"):
        path = iris_quick_runs / "plots" / name
        assert path.read_bytes()[:8] == PNG_MAGIC
        assert f"(plots/{name})" in text  # relative, so it renders where the directory is browsed
    assert "AMD" in text or "| cpu " in text  # the environment table names the device


def test_faithful_table_latest_rows_stale_and_unregistered(registry, tmp_path):
    out = tmp_path / "res"
    values = [0.97, 0.98, 0.975, 0.965, 0.99]
    runs = [fake_run(registry, "iris-ce", s, train_acc=v, test_acc=0.9) for s, v in enumerate(values)]
    # Superseded by a later --force run of seed 0 (0.97 above), so 0.10 must not count.
    runs.insert(0, fake_run(registry, "iris-ce", 0, started="2025-12-31T00:00:00+00:00", train_acc=0.10))
    runs.append(fake_run(registry, "iris-ce", 7, config_hash="0ld0ld0ld0ld", train_acc=0.2))  # an earlier recipe
    runs.append(fake_run(registry, "iris-mse", 0, test_acc=0.5))  # one seed: no verdict
    runs.append(fake_run(registry, "mnist-mlp-mylinear", 0, test_acc=0.92))  # nothing published
    runs.append(fake_run(registry, "iris-ce", 1, config_hash="f00f00f00f00", experiment="retired-exp", test_acc=0.5))
    epochs = fake_epochs(runs[1], [{"train_loss": 1.0, "train_acc": 0.9}, {"train_loss": 0.6, "train_acc": 0.97}])
    epochs[-1]["epoch"] = 2000  # the recipe's last
    record(out, runs, epochs, [])
    text = report(out)

    mean, sd = statistics.mean(values), statistics.stdev(values)
    half = T_975[4] * sd / math.sqrt(5)
    row = summary_cells(text, "iris-ce")
    assert row[3:11] == ["5", "train_acc", f"{pct(mean)} ± {pct(sd)}", f"[{pct(mean - half)}, {pct(mean + half)}]", "–",
                         pct(min(values)), pct(max(values)), "none of 5"]
    verdict = published_cells(text, "iris-ce", "train_acc @2000")
    assert verdict["published"] == f"{pct(registry['iris-ce'].published['value'])} (T1 #3)"
    assert verdict["seeds"] == "5" and verdict["verdict"] == CONSISTENT
    one_seed = published_cells(text, "iris-mse", "test_acc @2000")
    assert one_seed["verdict"] == "one seed: no spread to judge by"
    assert one_seed["figure"] == "test_acc @2000 (38 samples: steps of 2.6 pp)"
    assert summary_cells(text, "mnist-mlp-mylinear")[5] == "92.00%"  # nothing published: described only
    assert "mnist-mlp-mylinear" not in section(text, "Published figures")
    assert "1 row(s) superseded" in text
    assert "1 stale row(s) from an earlier recipe" in text and "iris-ce (1)" in text
    assert "no longer in the registry were ignored: retired-exp (1)" in text
    assert (out / "plots" / "curves-iris-ce.png").read_bytes()[:8] == PNG_MAGIC


def test_trace_plots(registry, tmp_path):
    out = tmp_path / "res"
    with_variants = {**registry, **variants(registry)}
    runs, trace = [], []
    for seed in range(3):
        for exp_id in ("mnist-mlp", "mnist-mlp@fashion-mnist"):
            run = fake_run(with_variants, exp_id, seed, test_acc=0.93 - 0.1 * ("@" in exp_id) + 1e-3 * seed)
            runs.append(run)
            trace += [{"run_id": run["run_id"], "epoch": 1 + step // 3000, "step": step,
                       "samples": 20 * (step % 3000 or 3000), "running_loss": 1.0 / (step / 500) + 0.01 * seed}
                      for step in range(500, 6001, 500)]
    record(out, runs, [], trace)
    text = report(out)
    for name in ("trace-mnist-mlp.png", "trace-mnist-mlp@fashion-mnist.png", "speed.png"):
        assert (out / "plots" / name).read_bytes()[:8] == PNG_MAGIC
    # The published trace is MNIST's: the Fashion-MNIST variant's plot has nothing to set against.
    assert "Running training loss of mnist-mlp against the published one:" in text
    assert "Running training loss of mnist-mlp@fashion-mnist:" in text
    # Unpaired: Welch's t-test and Mann-Whitney U on MNIST against Fashion-MNIST.
    mnist, fashion = ([0.93 - 0.1 * f + 1e-3 * s for s in range(3)] for f in (0, 1))
    row = [cells(x) for x in section(text, "MNIST versus Fashion-MNIST").splitlines() if x.startswith("| mnist-mlp ")][0]
    assert row[-2:] == [f"{scipy_stats.ttest_ind(fashion, mnist, equal_var=False).pvalue:.2g}",
                        f"{scipy_stats.mannwhitneyu(fashion, mnist).pvalue:.2g}"]


def valid_loss_curve(minimum_at: int, rise: float, epochs: int = 10) -> list[float]:
    """A validation loss falling to its minimum at `minimum_at`, then rising linearly by `rise` to the end."""
    return [0.2 - 0.01 * e if e <= minimum_at else 0.2 - 0.01 * minimum_at + rise * (e - minimum_at) / (epochs - minimum_at)
            for e in range(1, epochs + 1)]


def test_dropout_outcomes_paired_by_seed(registry, tmp_path):
    out = tmp_path / "res"
    runs, epochs = [], []
    plain_rise = [0.030, 0.034, 0.027, 0.031, 0.036]
    dropout_rise = [0.004, 0.002, 0.006, 0.003, 0.001]
    plain_test = [0.9890, 0.9895, 0.9881, 0.9902, 0.9888]
    dropout_test = [0.9893, 0.9891, 0.9886, 0.9899, 0.9890]  # no consistent difference
    for seed in range(5):
        for exp_id, minimum_at, rise, test in (("mnist-cnn-50", 4, plain_rise, plain_test),
                                               ("mnist-cnn-dropout-50", 8, dropout_rise, dropout_test)):
            run = fake_run(registry, exp_id, seed, valid_acc=0.988, test_acc=test[seed])
            runs.append(run)
            epochs += fake_epochs(run, [{"train_acc": 0.97 + 0.002 * e, "valid_acc": 0.98 + 0.0008 * e, "train_loss": 0.1,
                                         "valid_loss": loss, "test_acc": test[seed] if e == 9 else 0.98}
                                        for e, loss in enumerate(valid_loss_curve(minimum_at, rise[seed]))])
    runs.append(fake_run(registry, "mnist-cnn-50", 5, valid_acc=0.99, test_acc=0.99))  # no partner: not paired
    record(out, runs, epochs, [])
    text = section(report(out), "Over-fitting")
    rows = {cells(x)[0]: cells(x) for x in text.splitlines() if x.startswith("| ") and "---" not in x}
    rise_row = rows["rise of the validation loss from its minimum to the last epoch"]
    differences = [d - p for p, d in zip(plain_rise, dropout_rise)]
    assert rise_row[3] == "5" and rise_row[4] == "0 / 0 / 5"  # pairs: seed 5 has one arm only; B lower in all five
    assert rise_row[7] == f"{scipy_stats.ttest_rel(dropout_rise, plain_rise).pvalue:.2g}"
    assert rise_row[8] == rise_row[10] == "0.062"  # five one-signed pairs: permutation and sign test both 2/2^5
    low, high = scipy_stats.t.interval(0.95, 4, loc=np.mean(differences), scale=scipy_stats.sem(differences))
    assert rise_row[6] == f"[{low:+.4f}, {high:+.4f}]"
    assert rows["epoch of the minimum validation loss"][1:3] == ["4.0", "8.0"]
    assert rows["test accuracy at the last epoch"][7] == f"{scipy_stats.ttest_rel(dropout_test, plain_test).pvalue:.2g}"
    # Holm over the outcomes with a test, one family: the rise and the epoch (five one-signed pairs each,
    # exact p = 2/2^5) and test accuracy; validation accuracy ties in every pair and has no test.
    def permutation(b, a):
        return scipy_stats.permutation_test((np.subtract(b, a),), np.mean, permutation_type="samples").pvalue
    holm = multipletests([2 / 32, 2 / 32, permutation(dropout_test, plain_test)], method="holm")[1]
    order = ["rise of the validation loss from its minimum to the last epoch", "epoch of the minimum validation loss",
             "test accuracy at the last epoch"]
    assert [rows[k][9] for k in order] == [f"{p:.2g}" for p in holm]
    assert rows["validation accuracy at the last epoch"][4] == "0 / 5 / 0" and rows["validation accuracy at the last epoch"][9] == "–"
    assert ("The data support that B (model.init_args.dropout: 0.0 → 0.5) curbs the rise of the validation loss, and do not "
            "show that it improves validation or test accuracy.") in text
    assert "A = `mnist-cnn-50`, B = `mnist-cnn-dropout-50` (model.init_args.dropout: 0.0 → 0.5)" in text  # from the recipes
    assert "with 5 pairs a sign-flip test cannot go below p = 0.062" in text
    assert (out / "plots" / "overfitting-mnist-cnn-dropout-50.png").read_bytes()[:8] == PNG_MAGIC


def test_ablation_is_paired_by_seed(registry, tmp_path):
    out = tmp_path / "res"
    softmax = {0: 0.951, 1: 0.948, 2: 0.960, 3: 0.955, 4: 0.940}
    logits = {0: 0.970, 1: 0.969, 2: 0.972, 3: 0.971}  # seed 4 missing, and seed 3 failed below
    runs = [fake_run(registry, "mnist-mynet-adam", s, test_acc=v, valid_acc=v, test_loss=1.5 + v / 100) for s, v in softmax.items()]
    runs += [fake_run(registry, "mnist-mynet-adam-logits", s, test_acc=v, valid_acc=v, test_loss=0.1 - v / 100)
             for s, v in logits.items()]
    runs[-1]["status"] = "diverged"
    record(out, runs, [], [])
    text = section(report(out), "Ablation: T2's output Softmax")
    plan_header = text.index("| device   | engine   | metric    | difference δ")
    paired_table, plan_table = text[:plan_header], text[plan_header:]
    rows = {cells(x)[2]: cells(x) for x in paired_table.splitlines() if x.startswith("| cpu ")}
    row = rows["test_acc"]
    shared = [0, 1, 2]
    a, b = [softmax[s] for s in shared], [logits[s] for s in shared]
    paired_t = scipy_stats.ttest_rel(b, a)
    assert row[5] == "3" and row[6] == "3 / 0 / 0" and row[7] == f"{100 * np.mean(np.subtract(b, a)):+.2f} pp"
    assert row[9] == f"{paired_t.pvalue:.2g}" and row[12] == f"{scipy_stats.binomtest(3, 3).pvalue:.2g}"
    exact = scipy_stats.permutation_test((np.subtract(b, a),), np.mean, permutation_type="samples").pvalue
    assert row[10] == f"{exact:.2g}" == "0.25"  # 3 pairs: all 8 sign patterns, the observed one and its mirror
    # Holm over the family: valid_acc and test_acc (test_loss is flagged, not tested), each 0.25: 0.5 both.
    assert row[11] == rows["valid_acc"][11] == "0.5"
    assert rows["test_loss"][8] == "not comparable" and rows["test_loss"][9] == "–"
    assert "B's test_loss: not tested, the two arms' values are not comparable (A's loss cannot go below" in text
    assert "B's test_acc is higher by" in text and "not after Holm's correction" not in text  # 3 pairs: floor 0.25
    # Runs a difference needs: from the arms' pooled spread, and the paired differences' over seeds 0-2.
    plan = {cells(x)[3]: cells(x) for x in plan_table.splitlines() if x.startswith("| cpu ") and "| test_acc " in x}
    assert set(plan) == {"0.10 pp", "0.50 pp"}
    assert plan["0.50 pp"][4] == "5 + 3 runs"
    assert "A = `mnist-mynet-adam`, B = `mnist-mynet-adam-logits` (model.init_args.output: softmax → logits)" in text


def test_ablations_are_the_registry_files_that_declare_one(registry, tmp_path):
    """A pair exists because a file says so: a user's own ablation is reported, and one without the
    section is not, whatever its id."""
    import dataclasses

    base = registry["mnist-mlp"]
    mine = dataclasses.replace(registry["mnist-mlp-mylinear"], id="my-wider-mlp", path=tmp_path / "my-wider-mlp.toml",
                               ablation={**registry["mnist-mlp-mylinear"].ablation, "about": "my own pair", "metrics": ("test_acc",)})
    plain = dataclasses.replace(registry["mnist-mlp-mylinear"], ablation=None)
    custom = {"mnist-mlp": base, "mnist-mlp-mylinear": plain, "my-wider-mlp": mine}
    runs = pd.DataFrame([{"experiment": e, "seed": s, "device": "cpu", "engine": "fast", "status": "ok", "faithful": True,
                          "test_acc": 0.9 + 0.01 * s + (0.005 if e == "my-wider-mlp" else 0)}
                         for e in custom for s in range(4)])
    text = "\n".join(ablation_section(custom, runs))
    assert text.count("## Ablation:") == 1 and "## Ablation: my own pair" in text
    assert "B = `my-wider-mlp`" in text and "B's test_acc differs from A's by the same +0.50 pp in every one of the 4 seeds" in text


def test_one_run(registry, tmp_path):
    out = tmp_path / "res"
    record(out, [fake_run(registry, "mnist-mlp", 0, test_acc=0.93)], [], [])
    with open(out / "runs.csv", "a") as f:
        f.write("0123456789ab,mnist-mlp,1\n")  # a line cut short
    text = report(out)
    assert "- 1 of 2 row(s) in" in text and "refused (first, line" in text and "`harness check --results-dir" in text
    row = summary_cells(text, "mnist-mlp")
    assert row[3:7] == ["1", "test_acc", "93.00%", "–"]  # no spread, no interval from one seed
    one = published_cells(text, "mnist-mlp", "test_acc @2")
    assert one["pi"] == one["range"] == one["detects"] == "–" and one["verdict"] == "one seed: no spread to judge by"
    assert one["shares"] == "0% / 0% / 100%"  # the one seed lies above the published 92.78%
    assert not text.split("## What was read")[0].count("consistent")  # no verdict, no answer on the first screen
    assert (out / "plots" / "curves-mnist-mlp.png").exists()  # one seed's curve, drawn alone


def test_no_runs(tmp_path, capsys):
    missing = tmp_path / "never-run"
    assert main(["report", "--results-dir", str(missing)]) == 2
    assert "no such directory; name a results directory" in capsys.readouterr().err and not missing.exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["report", "--results-dir", str(empty)]) == 2  # no runs.csv: not a results directory, nothing written
    assert "no runs.csv in it" in capsys.readouterr().err and list(empty.iterdir()) == []
    (empty / "runs.csv").write_text("")  # an empty file
    assert "Nothing to report yet" in report(empty)
    (empty / "runs.csv").write_text("run_id,experiment,seed\n")  # an older, partial header
    assert main(["report", "--results-dir", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "missing column(s)" in err and "Traceback" not in err


def test_published_figure_is_judged_at_its_epoch_as_one_draw(registry, tmp_path):
    out = tmp_path / "res"
    at_12 = [0.9871, 0.9855, 0.9866, 0.9849, 0.9862]  # T1 #10 printed 98.8583% after epoch 12
    runs, epochs = [], []
    for seed, value in enumerate(at_12):
        run = fake_run(registry, "mnist-cnn-50", seed, valid_acc=0.99, test_acc=0.99)  # epoch 50: not the one compared
        runs.append(run)
        epochs += fake_epochs(run, [{"valid_acc": value if e == 12 else 0.97, "valid_loss": 0.05} for e in range(1, 14)])
    diverged = fake_run(registry, "mnist-cnn-50", 5, status="diverged", valid_acc=0.1, message="loss is nan",
                        epochs=13, diverged_epoch=13)
    runs.append(diverged)
    epochs += fake_epochs(diverged, [{"valid_acc": 0.1, "valid_loss": 9.0} for _ in range(1, 14)])
    # All seeds equal: the interval is that one value.
    same = 0.9821428571428571
    runs += [fake_run(registry, "iris-mylinear", s, train_acc=same, test_acc=0.97) for s in range(3)]
    record(out, runs, epochs, [])
    text = report(out)

    row = published_cells(text, "mnist-cnn-50", "valid_acc @12")
    n, mean, sd = 5, np.mean(at_12), np.std(at_12, ddof=1)
    low, high = scipy_stats.t.interval(0.95, n - 1, loc=mean, scale=sd * np.sqrt(1 + 1 / n))
    assert row["seeds"] == "5 (+1 failed)"  # the diverged seed is counted, not used
    assert row["mean ± std"] == f"{pct(mean)} ± {pct(sd)}" and row["pi"] == f"[{pct(low)}, {pct(high)}]"
    # Above all five seeds, but five seeds cannot reject by rank (least p 2/6), and the row says so.
    assert row["shares"] == "100% / 0% / 0%" and row["rank p"] == "0.33" and row["verdict"] == CONSISTENT
    assert row["detects"].startswith("none below 39 seeds · 4.1 sd = ")
    assert row["range"] == f"[{pct(min(at_12))}, {pct(max(at_12))}] (67%)"  # 5 seeds: x_(1), x_(5) hold a 6th run 4 times in 6
    assert "(12,000 samples: steps of 0.0083 pp)" in text  # an accuracy on a finite split says so
    assert "mnist-cnn-50 seed 5 [cpu, fast] ended diverged: loss is nan; left out of every statistic." in text
    flat = published_cells(text, "iris-mylinear", "train_acc @2000")
    assert flat["pi"] == f"[{pct(same)}, {pct(same)}]" and flat["verdict"] == CONSISTENT and flat["shares"] == "0% / 100% / 0%"
    assert "(112 samples: steps of 0.89 pp)" in flat["figure"]
    # The whole curve: epochs 1-13; the seeds sit at 97% but for epoch 12, so the printed run lies above every
    # seed at 12 epochs and below at epoch 1 (95.79%).
    curve = [cells(x) for x in section(text, "Published figures").split("### Whole curves")[1].splitlines()
             if x.startswith("| mnist-cnn-50 ")]
    assert curve and curve[0][8] == "12 / 1" and curve[0][11] == CONSISTENT and curve[0][12] == "none below 39 seeds"
    # The first screen: the answer, the printed runs counted once each, not their figures.
    first = text.split("## What was read")[0]
    assert "**2 of 2 printed runs (T1 #6, T1 #10) are consistent with one run of their recipe** (5 published figures and 1 whole curves" in first
    assert "2 of the 2 runs have 3-5 seeds, too few for a rank test to reject at all" in first
    assert "but the seeds' mean differs" not in text  # the mean says nothing about one run


def test_the_answer_names_departures_and_what_holm_changes(registry):
    # 50 seeds: a figure above all of them has rank p 2/51 = 0.039; among three verdicts Holm makes it 0.12.
    seeds = np.linspace(0.90, 0.95, 50)
    figure = single_draw(seeds, 0.99, bounds=(0.0, 1.0))
    typical = single_draw(seeds, 0.925, bounds=(0.0, 1.0))
    cell = dict(device="cpu", engine="fast", metric="test_acc", failed=0)
    verdicts = [Verdict("iris-mse", what="test_acc @2000", draw=figure, **cell),
                Verdict("iris-mse", what="train_acc @2000", draw=typical, **cell),
                Verdict("iris-ce", what="train_acc @2000", draw=typical, **cell)]
    holm(verdicts)
    assert figure.verdict == ABOVE and verdicts[0].holm_p == pytest.approx(3 * 2 / 51)
    text = "\n".join(answer(verdicts, registry))
    assert text.startswith("**2 of 2 printed runs (T1 #2, T1 #3) are consistent with one run of their recipe** (3 published figures")
    assert "Unadjusted, 1 of the 3 verdicts reject at 5% (iris-mse [cpu, fast] test_acc @2000 = 99.00% (above all 50 seeds)" in text
    assert "none does after Holm's correction" in text
    assert "the rank test catches a run 3.2 sd from the seeds' mean 4 times in 5" in text
    # 200 seeds: 2/201 survives Holm over two verdicts; the run is named as not consistent.
    many = np.linspace(0.90, 0.95, 200)
    far = [Verdict("iris-mse", what="test_acc @2000", draw=single_draw(many, 0.99), **cell),
           Verdict("iris-ce", what="train_acc @2000", draw=single_draw(many, 0.93), **cell)]
    holm(far)
    text = "\n".join(answer(far, registry))
    assert text.startswith("**1 of 2 printed runs (T1 #2, T1 #3) are consistent") and "Not consistent: iris-mse [cpu, fast]" in text


def test_the_speed_table_counts_runs_that_shared_the_machine():
    from harness.report.tables import speed_rows

    def run(seed, start, wall, host="h1"):
        return {"experiment": "iris-ce", "device": "cpu", "engine": "fast", "setting": "faithful", "seed": seed, "host": host,
                "started_at": f"2026-01-01T00:00:{start:02d}+00:00", "wall_time_s": wall, "train_samples_per_s": 100.0 * (seed + 1)}

    # Seeds 0 and 1 overlap (0-10 s and 5-8 s); seed 2 starts as seed 0 ends; seed 3 ran at the same time on another host.
    runs = pd.DataFrame([run(0, 0, 10.0), run(1, 5, 3.0), run(2, 10, 4.0), run(3, 1, 30.0, host="h2")])
    (row,) = speed_rows(runs)
    assert row[4:6] == [4, "2"]
    assert row[6] == "7.0 s [3.8 s, 15.0 s]" and row[7].startswith("250 [")  # median [quartiles], pandas' linear quantiles
