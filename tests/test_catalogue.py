"""One catalogue of metrics and columns (harness/catalogue.py): a metric added there and computed by the
training loop reaches the rows, check, the report and compare, with no other module of harness/ touched."""

import csv
import filecmp
import math
import re
import os
import shutil
import subprocess
import sys

import pytest

from harness.catalogue import ACCURACY, LOSS, METRICS, R2, fmt, fmt_diff, kind_of
from harness.errors import HarnessError

from .conftest import ROOT

IRIS_CE = (ROOT / "experiments" / "iris-ce.toml").read_text()
NEW_METRIC = '''
ERROR = Kind("error", 0.0, 1.0, higher_is_better=False, margin=0.1, margin_of="mean", percent=True)
MEASURES["err"] = Measure("err", ERROR, "error", ("classes",))
'''
COMPUTED = '''
                row["err"] = 1 - row["acc"]'''


def changed_files(a, b) -> list[str]:
    """The files that differ between two trees (caches aside), by path relative to them."""
    found = []
    for root, folders, files in os.walk(a):
        folders[:] = [f for f in folders if f != "__pycache__"]
        for name in files:
            left = os.path.join(root, name)
            right = os.path.join(b, os.path.relpath(left, a))
            if not os.path.exists(right) or not filecmp.cmp(left, right, shallow=False):
                found.append(os.path.relpath(left, a))
    return sorted(found)


@pytest.mark.slow
def test_a_metric_added_in_two_modules_reaches_rows_check_report_and_compare(tmp_path):
    package = tmp_path / "harness"
    shutil.copytree(ROOT / "harness", package, ignore=shutil.ignore_patterns("__pycache__"))
    catalogue = (package / "catalogue.py").read_text()
    anchor = "METRICS: dict[str, Metric] = {"
    assert anchor in catalogue
    (package / "catalogue.py").write_text(catalogue.replace(anchor, NEW_METRIC.strip() + "\n" + anchor))
    training = (package / "training.py").read_text()
    anchor = '                row["acc"] = int(correct) / n'
    assert anchor in training
    (package / "training.py").write_text(training.replace(anchor, anchor + COMPUTED))
    assert changed_files(package, ROOT / "harness") == ["catalogue.py", "training.py"]

    registry = tmp_path / "reg"
    registry.mkdir()
    recipe = IRIS_CE.replace('primary = "curve"', 'primary = "figure"').replace('metric = "train_acc"\nvalue', 'metric = "test_err"\nvalue')
    recipe = recipe.replace("seeds = 50", "seeds = 3")
    assert 'primary = "figure"' in recipe and 'metric = "test_err"\nvalue' in recipe
    recipe = recipe.split("[thresholds]")[0] + "[thresholds]\ntest_err = 0.2\n[smoke]\nmin = 0.5\n"
    (registry / "iris-ce.toml").write_text(recipe)
    results = tmp_path / "res"

    def harness(*args):
        return subprocess.run([sys.executable, "-m", "harness", *map(str, args), "--experiments-dir", registry], cwd=tmp_path,
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(tmp_path)})

    assert harness("run", "--results-dir", results).returncode == 0
    with open(results / "runs.csv", newline="") as f:
        runs = list(csv.DictReader(f))
    assert all(float(r["test_err"]) == 1 - float(r["test_acc"]) for r in runs) and len(runs) == 3
    with open(results / "epochs.csv", newline="") as f:
        assert all(r["test_err"] != "" for r in csv.DictReader(f))
    check = harness("check", "--results-dir", results)
    assert check.returncode == 0, check.stdout + check.stderr
    (registry / "iris-ce.toml").write_text(recipe.replace("test_err = 0.2", "test_err = 0.001"))  # a maximum: an error rate
    check = harness("check", "--results-dir", results)
    assert check.returncode == 1 and "mean test_err" in check.stdout and "is above the threshold 0.001" in check.stdout
    (registry / "iris-ce.toml").write_text(recipe)
    assert harness("report", "--results-dir", results).returncode == 0
    report = (results / "REPORT.md").read_text()
    assert "test_err @2000" in report and "% ±" in report  # judged, and read in percent as its kind says
    compare = harness("compare", results, results)
    assert compare.returncode == 0 and re.search(r"test_err .* ±[0-9.]+ pp ", compare.stdout), compare.stdout


def test_every_metric_has_a_kind_and_reads_as_its_kind_says():
    kinds = {"loss": LOSS, "acc": ACCURACY, "mse": LOSS, "mae": LOSS, "r2": R2}
    assert {m: kind_of(m) for m in METRICS} == {f"{split}_{short}": kind for short, kind in kinds.items()
                                                for split in ("train", "valid", "test")}
    assert (R2.least, R2.most, R2.higher_is_better) == (-math.inf, 1.0, True)
    assert (fmt("test_acc", 0.98765), fmt("test_loss", 0.98765)) == ("98.77%", "0.9877")
    assert (fmt_diff("test_acc", -0.0012), fmt_diff("test_loss", 2e-9), fmt_diff("test_acc", 0.005, sign=False)) == (
        "-0.12 pp", "+2.0e-09", "0.50 pp")
    with pytest.raises(HarnessError, match="unknown metric 'test_accuracy' \\(did you mean 'test_acc'\\?\\); known: train_loss"):
        kind_of("test_accuracy")
