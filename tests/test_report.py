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

from harness.report.tables import answer
from harness.report.verdicts import CONSISTENT, RunVerdict
from harness.stats import detectable_departure, rank

from .conftest import ROOT

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


PRINTED = "The printed runs, each judged by its one test"


def summary_cells(text, exp_id):
    """The cells of an experiment's row in the tables of the seeds (the speed table names no metric)."""
    text = text.replace(section(text, PRINTED) if f"## {PRINTED}" in text else "", "")
    (line,) = [x for x in text.splitlines() if x.startswith(f"| {exp_id} ") and ("_acc " in x or "_loss " in x)]
    return cells(line)


VERDICT_COLUMNS = ["run", "experiment", "device", "engine", "test", "seeds", "where", "rank p", "verdict", "would catch"]


def verdict_cells(text, exp_id):
    """The cells of a printed run's verdict row."""
    (row,) = [cells(x) for x in section(text, PRINTED).splitlines() if x.startswith("| ") and f"| {exp_id} " in x
              and "printed figure, described" not in x and cells(x)[1] == exp_id]
    return dict(zip(VERDICT_COLUMNS, row))


def described_cells(text, exp_id, figure):
    rows = [cells(x) for x in section(text, PRINTED).split("### The other printed figures, described")[1].splitlines()
            if x.startswith(f"| {exp_id} ")]
    (row,) = [r for r in rows if r[3] == figure]
    return row


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
    assert row[7:] == [f"[{pct(mean - half)}, {pct(mean + half)}]", pct(min(values)), pct(max(values))]
    # Quick runs that stop before the printed epochs are kept out of the verdicts.
    assert "## Quick runs (not faithful)" in text and "No runs yet of an experiment with a printed result" in text


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
    assert row[3:9] == ["5", "train_acc", f"{pct(mean)} ± {pct(sd)}", f"[{pct(mean - half)}, {pct(mean + half)}]",
                        pct(min(values)), pct(max(values))]
    # iris-ce is judged by its printed loss log (epochs 100 and 2000), which no seed here recorded whole.
    verdict = verdict_cells(text, "iris-ce")
    assert verdict["test"] == "train_loss curve, epochs 100, 2000" and verdict["verdict"] == "no seed reached the printed epochs"
    assert summary_cells(text, "mnist-mlp-mylinear")[5] == "92.00%"  # nothing published: described only
    assert "mnist-mlp-mylinear" not in section(text, PRINTED)
    assert "1 row(s) superseded" in text
    assert "1 stale row(s) from an earlier recipe" in text and "iris-ce (1)" in text
    assert "not in the registry were ignored: retired-exp (1) (`--experiments-dir DIR` names the registry" in text
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
    # Unpaired: the Mann-Whitney U test on MNIST against Fashion-MNIST, its p exact (3 a side: 2/20 at least).
    mnist, fashion = ([0.93 - 0.1 * f + 1e-3 * s for s in range(3)] for f in (0, 1))
    row = [cells(x) for x in section(text, "MNIST versus Fashion-MNIST").splitlines() if x.startswith("| mnist-mlp ")][0]
    exact = scipy_stats.mannwhitneyu(fashion, mnist, method="exact").pvalue
    assert row[-2:] == [f"{exact:.2g}", f"{exact:.2g}"] == ["0.1", "0.1"]


def valid_loss_curve(minimum_at: int, rise: float, epochs: int = 10) -> list[float]:
    """A validation loss falling to its minimum at `minimum_at`, then rising linearly by `rise` to the end."""
    return [0.2 - 0.01 * e if e <= minimum_at else 0.2 - 0.01 * minimum_at + rise * (e - minimum_at) / (epochs - minimum_at)
            for e in range(1, epochs + 1)]


def test_dropout_outcomes_paired_by_seed(registry, tmp_path):
    out = tmp_path / "res"
    runs, epochs = [], []
    plain_rise = [0.030, 0.034, 0.027, 0.031, 0.036, 0.033, 0.029]
    dropout_rise = [0.004, 0.002, 0.006, 0.003, 0.001, 0.005, 0.004]
    plain_test = [0.9890, 0.9895, 0.9881, 0.9902, 0.9888, 0.9893, 0.9887]
    dropout_test = [0.9893, 0.9891, 0.9886, 0.9899, 0.9890, 0.9891, 0.9889]  # no consistent difference
    for seed in range(7):
        for exp_id, minimum_at, rise, test in (("mnist-cnn-50", 4, plain_rise, plain_test),
                                               ("mnist-cnn-dropout-50", 8, dropout_rise, dropout_test)):
            run = fake_run(registry, exp_id, seed, valid_acc=0.988, test_acc=test[seed])
            runs.append(run)
            epochs += fake_epochs(run, [{"train_acc": 0.97 + 0.002 * e, "valid_acc": 0.98 + 0.0008 * e, "train_loss": 0.1,
                                         "valid_loss": loss, "test_acc": test[seed] if e == 9 else 0.98}
                                        for e, loss in enumerate(valid_loss_curve(minimum_at, rise[seed]))])
    runs.append(fake_run(registry, "mnist-cnn-50", 7, valid_acc=0.99, test_acc=0.99))  # no partner: not paired
    record(out, runs, epochs, [])
    text = section(report(out), "Over-fitting")
    rows = {cells(x)[0]: cells(x) for x in text.splitlines() if x.startswith("| ") and "---" not in x}
    rise_row = rows["rise of the validation loss from its minimum to the last epoch"]
    differences = [d - p for p, d in zip(plain_rise, dropout_rise)]
    assert rise_row[3] == "7" and rise_row[4] == "0 / 0 / 7"  # pairs: seed 7 has one arm only; B lower in all seven
    assert rise_row[7] == "0.016"  # seven one-signed pairs: the exact permutation p, 2/2^7
    low, high = scipy_stats.t.interval(0.95, 6, loc=np.mean(differences), scale=scipy_stats.sem(differences))
    assert rise_row[6] == f"[{low:+.4f}, {high:+.4f}]"
    assert rows["epoch of the minimum validation loss"][1:3] == ["4.0", "8.0"]
    # Holm over the outcomes with a test, one family: the rise and the epoch (seven one-signed pairs each,
    # exact p = 2/2^7) and test accuracy; validation accuracy ties in every pair and has no test.
    def permutation(b, a):
        return scipy_stats.permutation_test((np.subtract(b, a),), np.mean, permutation_type="samples").pvalue
    holm = multipletests([2 / 128, 2 / 128, permutation(dropout_test, plain_test)], method="holm")[1]
    order = ["rise of the validation loss from its minimum to the last epoch", "epoch of the minimum validation loss",
             "test accuracy at the last epoch"]
    assert [rows[k][8] for k in order] == [f"{p:.2g}" for p in holm]
    assert rows["validation accuracy at the last epoch"][4] == "0 / 7 / 0" and rows["validation accuracy at the last epoch"][8] == "–"
    assert ("The data support that B (model.init_args.dropout: 0.0 → 0.5) curbs the rise of the validation loss, and do not "
            "show that it improves validation or test accuracy.") in text
    assert "A = `mnist-cnn-50`, B = `mnist-cnn-dropout-50` (model.init_args.dropout: 0.0 → 0.5)" in text  # from the recipes
    assert (out / "plots" / "overfitting-mnist-cnn-dropout-50.png").read_bytes()[:8] == PNG_MAGIC
    # Five pairs cannot show it: the least the sign flips can give is 2/2^5, above 5%, and the sentence says so.
    few = tmp_path / "few"
    keep = {r["run_id"] for r in runs if r["seed"] < 5}
    record(few, [dict(r) for r in runs if r["run_id"] in keep], [e for e in epochs if e["run_id"] in keep], [])
    text = section(report(few), "Over-fitting")
    assert "with 5 pairs the permutation test cannot go below p = 0.062, so no difference can be shown" in text
    assert "The data do not show that B (model.init_args.dropout: 0.0 → 0.5) curbs over-fitting" in text


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
    assert row[5] == "3" and row[6] == "3 / 0 / 0" and row[7] == f"{100 * np.mean(np.subtract(b, a)):+.2f} pp"
    exact = scipy_stats.permutation_test((np.subtract(b, a),), np.mean, permutation_type="samples").pvalue
    assert row[9] == f"{exact:.2g}" == "0.25"  # 3 pairs: all 8 sign patterns, the observed one and its mirror
    # Holm over the family: valid_acc and test_acc (test_loss is flagged, not tested), each 0.25: 0.5 both.
    assert row[10] == rows["valid_acc"][10] == "0.5"
    assert rows["test_loss"][8] == "not comparable" and rows["test_loss"][9] == "–"
    assert "B's test_loss: not tested, the two arms' values are not comparable (A's loss cannot go below" in text
    assert "B's test_acc: with 3 pairs the permutation test cannot go below p = 0.25, so no difference can be shown" in text
    # Runs a difference needs: from the arms' pooled spread, and the paired differences' over seeds 0-2.
    plan = {cells(x)[3]: cells(x) for x in plan_table.splitlines() if x.startswith("| cpu ") and "| test_acc " in x}
    margin = f"{100 * 0.1 * (1 - np.mean(list(softmax.values()))):.2f} pp"  # a tenth of A's error rate
    assert set(plan) == {"0.10 pp", margin}
    assert plan[margin][4] == "5 + 3 runs"
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
    one = verdict_cells(text, "mnist-mlp")
    assert one["verdict"] == "one seed: no spread to judge by" and one["where"] == "lies: below all 1 seeds"
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


def test_a_printed_run_is_judged_by_its_declared_test_and_its_other_figures_described(registry, tmp_path):
    out = tmp_path / "res"
    at_12 = [0.9871, 0.9855, 0.9866, 0.9849, 0.9862]  # T1 #10 printed 98.8583% after epoch 12
    runs, epochs = [], []
    for seed, value in enumerate(at_12):
        run = fake_run(registry, "mnist-cnn-50", seed, valid_acc=0.99, test_acc=0.99)  # epoch 50: not the one compared
        runs.append(run)
        epochs += fake_epochs(run, [{"valid_acc": value if e == 12 else 0.97, "train_acc": 0.99, "valid_loss": 0.05}
                                    for e in range(1, 14)])
    diverged = fake_run(registry, "mnist-cnn-50", 5, status="diverged", valid_acc=0.1, message="loss is nan",
                        epochs=13, diverged_epoch=13)
    runs.append(diverged)
    epochs += fake_epochs(diverged, [{"valid_acc": 0.1, "valid_loss": 9.0} for _ in range(1, 14)])
    same = 0.9821428571428571
    runs += [fake_run(registry, "iris-mylinear", s, train_acc=same, test_acc=0.97) for s in range(3)]
    record(out, runs, epochs, [])
    text = report(out)

    # T1 #10 declares its whole validation curve (epochs 1-13): the seeds sit at 97% but for epoch 12.
    curve = verdict_cells(text, "mnist-cnn-50")
    assert curve["run"] == "T1 #10" and curve["test"] == "valid_acc curve, epochs 1-13" and curve["seeds"] == "5 (+1 failed)"
    assert "above every seed at 12 of 13 epochs; below every seed at 1 of 13 epochs" in curve["where"]
    assert curve["verdict"] == "undecided: needs 79 seeds" and curve["would catch"].startswith("none: 5 seeds cannot reject")
    # Its figures on the curve are the curve's; the train accuracy at 13 is described, not judged.
    assert described_cells(text, "mnist-cnn-50", "train_acc @13")[4:] == ["99.27%", "5", "99.00% ± 0.00%", "100% / 0% / 0%"]
    flat = verdict_cells(text, "iris-mylinear")
    assert flat["test"] == f"train_acc @2000 = {pct(same)}" and flat["where"] == "lies: 0 seeds below, 3 equal, 0 above"
    assert flat["verdict"] == "undecided: needs 79 seeds"
    assert "mnist-cnn-50 seed 5 [cpu, fast] ended diverged: loss is nan; left out of every statistic." in text
    first = text.split("## What was read")[0]
    assert "**2 printed runs, each judged by the one test its recipe declares (1 whole curves, 1 figures): 0 inconsistent, " \
           "0 consistent, 2 undecided.**" in first
    assert "- *Undecided*: T1 #10, mnist-cnn-50 [cpu, fast]: 5 seeds cannot reject at 5% (the rank test needs 39); 79 seeds " \
           "would catch a run 3 sd out 4 times in 5 (`harness settle mnist-cnn-50`)." in first


def verdict(exp_id: str, seeds, published: float) -> RunVerdict:
    seeds = np.asarray(seeds, dtype=float)
    below, above = detectable_departure(seeds, bounds=(0.0, 1.0))
    return RunVerdict(exp_id, "cpu", "fast", "figure", "test_acc", (2000,), published, len(seeds), 0, rank(seeds, published),
                      math.nan, float(seeds.std(ddof=1)), below, above)


def test_the_answer_counts_each_verdict_and_names_every_run(registry):
    """Each printed run is tested once at 5%, no correction across runs: a figure above all of 79 seeds (rank p
    2/80 = 0.025) is inconsistent even beside two consistent runs, as it would be alone."""
    seeds = np.linspace(0.90, 0.95, 79)
    verdicts = [verdict("iris-mse", seeds, 0.99), verdict("iris-ce", seeds, 0.925), verdict("iris-mylinear", seeds[:20], 0.925)]
    assert [v.verdict for v in verdicts] == ["inconsistent", CONSISTENT, "undecided"]
    text = "\n".join(answer(verdicts, registry))
    assert text.startswith("**3 printed runs, each judged by the one test its recipe declares (0 whole curves, 3 figures): "
                           "1 inconsistent, 1 consistent, 1 undecided.**")
    assert "- *Inconsistent*: T1 #2, iris-mse [cpu, fast] test_acc @2000 = 99.00%: it lies: above all 79 seeds; rank p 0.025." in text
    assert "- *Consistent*: T1 #3 (iris-ce, 79 seeds, rank p 1; would catch below: " in text
    assert "- *Undecided*: T1 #6, iris-mylinear [cpu, fast]: 20 seeds cannot reject at 5%" in text
    assert "with no correction across runs" in text
    alone = "\n".join(answer(verdicts[:1], registry))
    assert alone.startswith("**1 printed runs") and "1 inconsistent, 0 consistent, 0 undecided" in alone


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
    # Two runs of 0.4 s one after another, stamped with the same second: not known to overlap. Two of 5 s
    # each begun in the same second: they did.
    quick = pd.DataFrame([run(0, 20, 0.4), run(1, 20, 0.4), run(2, 40, 5.0), run(3, 40, 5.0)])
    assert [r[5] for r in speed_rows(quick)] == ["2"]


def test_rows_of_a_users_own_recipe_read_without_its_registry_name_the_fix(tmp_path, capsys):
    """A user's rows read against the tutorials' registry (no --experiments-dir): the report, compare and
    export say which experiments they are of and name --experiments-dir, rather than "nothing to report"."""
    reg = tmp_path / "reg"
    reg.mkdir()
    recipe = (ROOT / "experiments" / "iris-ce.toml").read_text().replace('id = "iris-ce"', 'id = "mine"')
    (reg / "mine.toml").write_text(recipe.split("[published]")[0] + "[smoke]\nmin = 0.5\n")
    results = tmp_path / "res"
    for engine in ("fast", "reference"):
        assert main(["run", "mine", "--seeds", "0-1", "--epochs", "100", "--engine", engine, "--experiments-dir", str(reg),
                     "--results-dir", str(results)]) == 0
    capsys.readouterr()
    assert main(["report", "--results-dir", str(results)]) == 0
    out = capsys.readouterr().out
    assert "no current runs to report yet (4 row(s) of experiments not in this registry (mine): `--experiments-dir DIR`" in out
    assert "`--experiments-dir DIR` names the registry of your own recipes" in (results / "REPORT.md").read_text()
    assert main(["compare", str(results), "--by", "engine"]) == 2
    assert "4 row(s) of experiments not in this registry (mine): `--experiments-dir DIR`" in capsys.readouterr().err
    assert main(["compare", str(results), "--by", "engine", "--experiments-dir", str(reg)]) == 0
    capsys.readouterr()
    # check: one line, not a line per row and per tutorial recipe without results; with the registry, it passes
    assert main(["check", "--results-dir", str(results)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.strip() == (f"harness: error: {results}: no rows of this registry's experiments to check, only 4 row(s) "
                                         "of experiments not in this registry (mine): `--experiments-dir DIR` names the registry of "
                                         "your own recipes")
    assert main(["check", "--results-dir", str(results), "--experiments-dir", str(reg)]) == 0
    assert main(["plan", "mine", "--delta", "0.01", "--results-dir", str(results)]) == 2
    assert "`--experiments-dir DIR` finds recipes of your own" in capsys.readouterr().err
