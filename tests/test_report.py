"""`harness report`: statistics, verdicts, what is counted and ignored, plots, and the empty cases."""

import csv
import json
import math
import statistics
import uuid

import pytest

from harness.cli import main
from harness.registry import variants
from harness.results import ResultsStore
from harness.stats import BETTER, NO_PUBLISHED, REPRODUCED, WORSE, summarize, verdict

T_975 = {2: 4.302652729911275, 4: 2.7764451051977987}  # Student t 97.5% quantiles by degrees of freedom
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def report(results_dir) -> str:
    assert main(["report", "--results-dir", str(results_dir)]) == 0
    return (results_dir / "REPORT.md").read_text()


def summary_cells(text, exp_id):
    """The cells of an experiment's row in the summary tables (the speed table names no metric)."""
    (line,) = [x for x in text.splitlines() if x.startswith(f"| {exp_id} ") and ("_acc " in x or "_loss " in x)]
    return [c.strip() for c in line.strip("|").split("|")]


def pct(value):
    return f"{100 * value:.2f}%"


def fake_run(registry, exp_id, seed, *, overrides=None, config_hash=None, started="2026-01-01T00:00:00+00:00", **values):
    """A runs.csv row as the runner writes it, with the given metrics."""
    exp = registry.get(exp_id)
    return {
        "run_id": uuid.uuid4().hex[:12], "experiment": exp_id, "seed": seed, "device": "cpu", "device_name": "Test CPU",
        "engine": "fast", "epochs": 2, "faithful": not overrides, "status": "ok", "wall_time_s": 2.0 + seed,
        "train_time_s": 1.0, "train_samples_per_s": 1000.0 * (seed + 1), "started_at": started,
        "config_hash": config_hash or exp.config_hash(overrides), "git_commit": "abc123", "torch_version": "2.14.1",
        "python_version": "3.11.7", "host": "testhost", "threads": 2,
        "overrides": json.dumps(overrides) if overrides else "", "dataset_md5": "md5-of-data", **values,
    }


def fake_epochs(run, metrics_per_epoch):
    return [{"run_id": run["run_id"], "epoch": i + 1, **m} for i, m in enumerate(metrics_per_epoch)]


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
    cells = summary_cells(text, "iris-ce")
    assert cells[3:7] == ["epochs=200", "3", "train_acc", f"{pct(mean)} ± {pct(sd)}"]
    assert cells[7:] == [f"[{pct(mean - half)}, {pct(mean + half)}]", pct(min(values)), pct(max(values))]
    # Quick runs are kept out of the comparison with the published value.
    assert "## Quick runs (not faithful)" in text and "No faithful runs yet" in text


def test_plots_exist_are_png_and_are_referenced(iris_quick_runs):
    text = (iris_quick_runs / "REPORT.md").read_text()
    for name in ("curves-iris-ce.png", "final-metric.png", "speed.png"):
        path = iris_quick_runs / "plots" / name
        assert path.read_bytes()[:8] == PNG_MAGIC
        assert f"(plots/{name})" in text  # relative, so it renders where the directory is browsed
    assert "AMD" in text or "| cpu " in text  # the environment table names the device


def test_verdict_rules():
    inside = summarize([0.96, 0.97, 0.98])  # CI about [0.945, 0.995]
    assert verdict(inside, 0.99, 0.0, "test_acc") == REPRODUCED
    assert verdict(inside, 0.999, 0.0, "test_acc") == WORSE  # published far above the CI: we fall short
    assert verdict(inside, 0.90, 0.0, "test_acc") == BETTER
    assert verdict(inside, 0.999, 0.03, "test_acc") == REPRODUCED  # within the tolerance of the mean
    assert verdict(inside, 0.90, 0.0, "train_loss") == WORSE  # a higher loss is worse
    assert verdict(inside, None, 0.0, "test_acc") == NO_PUBLISHED
    one = summarize([0.97])
    assert math.isnan(one.ci_low) and verdict(one, 0.975, 0.0, "test_acc") == WORSE  # one seed: tolerance only
    assert verdict(one, 0.975, 0.01, "test_acc") == REPRODUCED


def test_faithful_table_latest_rows_stale_and_unregistered(registry, tmp_path):
    out = tmp_path / "res"
    values = [0.97, 0.98, 0.975, 0.965, 0.99]
    runs = [fake_run(registry, "iris-ce", s, train_acc=v, test_acc=0.9) for s, v in enumerate(values)]
    # Superseded by a later --force run of seed 0 (0.97 above), so 0.10 must not count.
    runs.insert(0, fake_run(registry, "iris-ce", 0, started="2025-12-31T00:00:00+00:00", train_acc=0.10))
    runs.append(fake_run(registry, "iris-ce", 7, config_hash="0ld0ld0ld0ld", train_acc=0.2))  # an earlier recipe
    runs.append(fake_run(registry, "iris-mse", 0, test_acc=0.5))  # published 1.0, tolerance 0.05: far below
    runs.append(fake_run(registry, "mnist-mlp-mylinear", 0, test_acc=0.92))  # nothing published
    runs.append(fake_run(registry, "iris-ce", 1, config_hash="f00f00f00f00", experiment="retired-exp", test_acc=0.5))
    epochs = fake_epochs(runs[1], [{"train_loss": 1.0, "train_acc": 0.9}, {"train_loss": 0.6, "train_acc": 0.97}])
    ResultsStore(out).append(runs, epochs, [])
    text = report(out)

    mean, sd = statistics.mean(values), statistics.stdev(values)
    half = T_975[4] * sd / math.sqrt(5)
    cells = summary_cells(text, "iris-ce")
    assert cells[3:9] == ["5", "train_acc", f"{pct(mean)} ± {pct(sd)}", f"[{pct(mean - half)}, {pct(mean + half)}]",
                          pct(min(values)), pct(max(values))]
    assert cells[9] == f"{pct(registry['iris-ce'].published['value'])} (T1 #3)" and cells[11] == REPRODUCED
    assert summary_cells(text, "iris-mse")[-1] == WORSE
    assert summary_cells(text, "mnist-mlp-mylinear")[-1] == NO_PUBLISHED
    assert "1 row(s) superseded" in text
    assert "1 stale row(s) from an earlier recipe" in text and "iris-ce (1)" in text
    assert "no longer in the registry were ignored: retired-exp (1)" in text
    assert "have no epoch rows" in text  # every run but one was recorded without epochs
    assert (out / "plots" / "curves-iris-ce.png").read_bytes()[:8] == PNG_MAGIC


def test_trace_and_dropout_gap(registry, tmp_path):
    out = tmp_path / "res"
    with_variants = {**registry, **variants(registry)}
    runs, epochs, trace = [], [], []
    for seed in range(3):
        for exp_id, gap in (("mnist-cnn-50", 0.02), ("mnist-cnn-dropout-50", 0.005)):
            run = fake_run(registry, exp_id, seed, valid_acc=0.98, test_acc=0.98)
            runs.append(run)
            epochs += fake_epochs(run, [{"train_acc": 0.95 + e * 0.01 + gap + seed * 1e-3, "valid_acc": 0.95 + e * 0.01,
                                         "train_loss": 0.2 - e * 0.01, "valid_loss": 0.2 - e * 0.01 + gap}
                                        for e in range(4)])
        for exp_id in ("mnist-mlp", "mnist-mlp@fashion-mnist"):
            run = fake_run(with_variants, exp_id, seed, test_acc=0.93 - 0.1 * ("@" in exp_id) + 1e-3 * seed)
            runs.append(run)
            trace += [{"run_id": run["run_id"], "epoch": 1 + step // 3000, "step": step,
                       "samples": 20 * (step % 3000 or 3000), "running_loss": 1.0 / (step / 500) + 0.01 * seed}
                      for step in range(500, 6001, 500)]
    ResultsStore(out).append(runs, epochs, trace)
    text = report(out)
    for name in ("dropout-gap.png", "trace-mnist-mlp.png", "trace-mnist-mlp@fashion-mnist.png", "speed.png"):
        assert (out / "plots" / name).read_bytes()[:8] == PNG_MAGIC
    # The published trace is MNIST's: the Fashion-MNIST variant's plot has nothing to set against.
    assert "Running training loss of mnist-mlp against the published one:" in text
    assert "Running training loss of mnist-mlp@fashion-mnist:" in text
    assert "the data support the claim that dropout curbs over-fitting" in text


def test_one_run(registry, tmp_path):
    out = tmp_path / "res"
    ResultsStore(out).append([fake_run(registry, "mnist-mlp", 0, test_acc=0.93)], [], [])
    with open(out / "runs.csv", "a") as f:
        f.write("0123456789ab,mnist-mlp,1\n")  # a line cut short
    text = report(out)
    assert "1 malformed row(s)" in text
    cells = summary_cells(text, "mnist-mlp")
    assert cells[3:7] == ["1", "test_acc", "93.00%", "–"]  # no spread, no interval from one seed
    assert cells[-1] == REPRODUCED  # within the registry's tolerance (0.005) of 92.78%
    assert "have no epoch rows" in text and not (out / "plots" / "curves-mnist-mlp.png").exists()


def test_no_runs(tmp_path, capsys):
    missing = tmp_path / "never-run"
    assert main(["report", "--results-dir", str(missing)]) == 0
    assert "nothing to report" in capsys.readouterr().out and not missing.exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    assert "Nothing to report yet" in report(empty)
    (empty / "runs.csv").write_text("")  # an empty file
    assert "Nothing to report yet" in report(empty)
    (empty / "runs.csv").write_text("run_id,experiment,seed\n")  # an older, partial header
    assert main(["report", "--results-dir", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "missing column(s)" in err and "Traceback" not in err
