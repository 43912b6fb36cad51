"""Metrics of a recipe's own ([metrics.<name>]): declared as data (which way is better, bounded like an accuracy
or not, how batches combine), computed by a function beside the recipe, returned by its steps, or printed by
its script; recorded in runs.csv and epochs.csv on every split, and read by the report, `check`, `compare` and
the published-figure verdicts like the catalogue's own, with no code per metric."""

import csv
import math

import pytest

from .test_recipes import DATA, NET, RECIPE as BASE, harness, user_registry

SCORES = '''import torch
from torch.nn import functional as F


def top1(outputs, targets):
    """The batch's accuracy, as the harness counts it: the share whose largest output is the target."""
    return (outputs.argmax(dim=1) == targets).float().mean()


def nll(outputs, targets):
    """The batch's cross-entropy, summed over its samples."""
    return F.cross_entropy(outputs, targets, reduction="sum")


def per_sample(outputs, targets):
    return F.cross_entropy(outputs, targets, reduction="none")


def broken(outputs, targets):
    raise ValueError("no such score")
'''

BROKEN_LINE = SCORES.splitlines().index('    raise ValueError("no such score")') + 1

OWN = '''
[metrics.top1]
label = "top-1 accuracy"
better = "higher"
bounded = true
function = "scores:top1"

[metrics.nll]
label = "summed negative log-likelihood"
better = "lower"
reduction = "sum"
function = "scores:nll"
'''

RECIPE = BASE.replace("[optimizer]", OWN.lstrip() + "\n[optimizer]").replace("seeds = 2", "seeds = 3")


def registry(tmp_path, recipe=RECIPE, scores=SCORES):
    directory = user_registry(tmp_path, recipe=recipe, net=NET, data=DATA)
    (directory / "scores.py").write_text(scores)
    return directory


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("engine", ["reference", "fast"])
def test_a_metric_function_beside_the_recipe_is_recorded_on_every_split_and_combined_as_declared(tmp_path, capsys, engine):
    """top1, a batch mean weighted by its samples, is the harness's own accuracy; nll, summed over each batch and
    divided by the split's samples, is its mean cross-entropy loss: both on every logged epoch, in both tables."""
    directory = registry(tmp_path)
    status, out, err = harness(capsys, "run", "mine", "--experiments-dir", directory, "--results-dir", tmp_path / "R", "--engine", engine)
    assert status == 0, err
    runs, epochs = read(tmp_path / "R" / "runs.csv"), read(tmp_path / "R" / "epochs.csv")
    header = list(runs[0])
    assert header[-6:] == ["train_top1", "valid_top1", "test_top1", "train_nll", "valid_nll", "test_nll"]
    assert list(epochs[0])[-6:] == header[-6:]
    for row in (*runs, *epochs):
        for split in ("train", "test"):
            assert float(row[f"{split}_top1"]) == float(row[f"{split}_acc"])
            assert math.isclose(float(row[f"{split}_nll"]), float(row[f"{split}_loss"]), rel_tol=1e-6)
        assert row["valid_top1"] == row["valid_nll"] == ""  # no validation split
    status, out, err = harness(capsys, "check", "--results-dir", tmp_path / "R", "--experiments-dir", directory)
    assert status == 0, out + err


def test_the_report_compare_and_check_read_a_recipes_own_metrics_by_their_declared_kind(tmp_path, capsys):
    """The report's table of the seeds and its plots, `compare`'s margins (a bounded metric's: a tenth of what it
    leaves; an unbounded one's: 2% of its mean) and `check`'s thresholds (a minimum where higher is better, a
    maximum where lower is) take each own metric's kind from its declaration. A threshold the seeds miss fails."""
    recipe = RECIPE + "\n[thresholds]\ntest_top1 = 0.5\ntest_nll = 0.001\n"
    directory = registry(tmp_path, recipe)
    for engine in ("reference", "fast"):
        assert harness(capsys, "run", "mine", "--experiments-dir", directory, "--results-dir", tmp_path / "R", "--engine", engine)[0] == 0
    status, out, err = harness(capsys, "check", "--results-dir", tmp_path / "R", "--experiments-dir", directory)
    assert status == 1 and "mean test_nll" in out and "is above the threshold 0.001" in out and "test_top1" not in out, out + err
    status, out, err = harness(capsys, "compare", tmp_path / "R", "--by", "engine", "--experiments-dir", directory)
    assert status == 0, err
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith("mine ") and len(line.split()) > 1}
    assert "%" in lines["test_top1"] and " pp " in lines["test_top1"] and "identical" in lines["test_top1"]
    assert "%" not in lines["test_nll"] and "identical" in lines["test_nll"]
    status, out, err = harness(capsys, "report", "--results-dir", tmp_path / "R", "--experiments-dir", directory)
    assert status == 0, err
    report = (tmp_path / "R" / "REPORT.md").read_text()
    assert any(line.startswith("| mine ") and "| test_top1 |" in line and "% ±" in line for line in report.splitlines())
    assert any(line.startswith("| mine ") and "| test_nll  |" in line and "±" in line and "%" not in line for line in report.splitlines())
    assert (tmp_path / "R" / "plots" / "curves-mine.png").stat().st_size > 0


def test_steps_return_the_recipes_own_metrics_beside_their_loss(tmp_path, capsys):
    """A step returning {"loss": ..., "<name>": ...} trains on the loss and records the others on the splits it
    runs on: the training step's on the training split, the evaluation step's on the others."""
    steps = '''from torch.nn import functional as F


def training_step(model, batch):
    x, y = batch
    logits = model(x)
    return {"loss": F.cross_entropy(logits, y), "margin": (logits.max(1).values - logits.min(1).values).mean()}


def evaluation_step(model, batch):
    x, y = batch
    return F.cross_entropy(model(x), y)
'''
    recipe = (BASE.replace('[loss]\nclass_path = "CrossEntropyLoss"', '[steps]\ntraining = "steps:training_step"\n'
                           'evaluation = "steps:evaluation_step"\n\n[metrics.margin]\nbetter = "higher"')
              .replace("min = 0.5", "max = 5.0"))
    directory = registry(tmp_path, recipe)
    (directory / "steps.py").write_text(steps)
    status, out, err = harness(capsys, "run", "mine", "--experiments-dir", directory, "--results-dir", tmp_path / "R", "--engine", "fast")
    assert status == 0, err
    for row in read(tmp_path / "R" / "runs.csv"):
        assert float(row["train_margin"]) > 0 and row["test_margin"] == ""


BAD = {
    "a catalogue name": (("[metrics.nll]", "[metrics.acc]"), "[metrics.acc]: 'acc' is the catalogue's own (accuracy); every run records it"),
    "a name that is no column": (("[metrics.nll]", "[metrics.Neg-LL]"), "[metrics.Neg-LL]: a metric's name is 1 to 32 of a-z 0-9 _"),
    "no direction": (('better = "lower"\n', ""), "missing key 'metrics.nll.better'"),
    "a direction that is none": (('better = "lower"', 'better = "down"'), "'metrics.nll.better'"),
    "no function": (('function = "scores:nll"\n', ""), "[metrics.nll] needs 'function', beside the recipe"),
    "a function from elsewhere": (('"scores:nll"', '"shutil:rmtree"'), "'metrics.nll.function'"),
    "a threshold of no metric": (("[optimizer]", "[thresholds]\ntest_nl = 1.0\n\n[optimizer]"), "unknown key 'thresholds.test_nl'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_declaration_that_cannot_work_is_one_line_before_anything_runs(tmp_path, capsys, case):
    (old, new), expect = BAD[case]
    assert old in RECIPE
    directory = registry(tmp_path, RECIPE.replace(old, new, 1))
    for command in (["validate"], ["run", "--results-dir", tmp_path / "R"]):
        status, out, err = harness(capsys, *command, "--experiments-dir", directory)
        assert status == 2 and err.count("\n") == 1 and expect in err, err
    assert not (tmp_path / "R").exists()


@pytest.mark.parametrize("function,expect", [
    ("per_sample", "'metrics.nll.function' gave nll as (16,) torch.float32; give one number per batch"),
    ("broken", f"scores.py:{BROKEN_LINE}: ValueError: no such score"),
])
def test_a_metric_function_that_fails_is_one_line_at_validate_naming_it(tmp_path, capsys, function, expect):
    directory = registry(tmp_path, RECIPE.replace('"scores:nll"', f'"scores:{function}"'))
    for command in (["validate"], ["run", "--results-dir", tmp_path / "R"]):
        status, out, err = harness(capsys, *command, "--experiments-dir", directory)
        assert status == 2 and err.count("\n") == 1 and expect in err, err
    assert not (tmp_path / "R").exists()


@pytest.mark.parametrize("returned,expect", [
    ('{"loss": loss}', "returned [] with no 'margin', which [metrics.margin] declares"),
    ('{"loss": loss, "margin": loss, "spread": loss}', "returned 'spread', which no [metrics.spread] declares"),
    ('{"margin": loss}', "'steps.training' returned a dict without \"loss\""),
])
def test_a_step_that_returns_other_metrics_than_declared_is_one_line(tmp_path, capsys, returned, expect):
    steps = f'''from torch.nn import functional as F


def training_step(model, batch):
    x, y = batch
    loss = F.cross_entropy(model(x), y)
    return {returned}
'''
    recipe = (BASE.replace('[loss]\nclass_path = "CrossEntropyLoss"', '[steps]\ntraining = "steps:training_step"\n\n'
                           '[metrics.margin]\nbetter = "higher"').replace("min = 0.5", "max = 5.0"))
    directory = registry(tmp_path, recipe)
    (directory / "steps.py").write_text(steps)
    status, out, err = harness(capsys, "validate", "--experiments-dir", directory)
    assert status == 2 and err.count("\n") == 1 and expect in err, err


def test_two_recipes_beside_each_other_give_a_name_one_meaning(tmp_path, capsys):
    directory = registry(tmp_path)
    other = RECIPE.replace('id = "mine"', 'id = "other"').replace('better = "lower"', 'better = "higher"')
    (directory / "other.toml").write_text(other)
    status, out, err = harness(capsys, "validate", "--experiments-dir", directory)
    assert status == 2 and "[metrics.nll] declares 'nll' otherwise than another recipe's beside it" in err, err


def test_the_multiseed_engine_records_a_recipes_own_metrics_lane_by_lane(tmp_path, capsys):
    """Seeds trained together as one batched model: each seed's top1 is its own accuracy exactly, its summed nll its
    mean loss, and both agree with the same seed's run on `fast` to rounding (multiseed's products sum in another order)."""
    directory = registry(tmp_path)
    for engine in ("multiseed", "fast"):
        status, out, err = harness(capsys, "run", "mine", "--experiments-dir", directory, "--results-dir", tmp_path / engine, "--engine", engine)
        assert status == 0, err
    lanes, single = read(tmp_path / "multiseed" / "runs.csv"), read(tmp_path / "fast" / "runs.csv")
    assert [r["seed"] for r in lanes] == [r["seed"] for r in single] == ["0", "1", "2"]
    assert len({r["test_nll"] for r in lanes}) == 3  # three seeds, three models
    for lane, run in zip(lanes, single):
        for split in ("train", "test"):
            assert float(lane[f"{split}_top1"]) == float(lane[f"{split}_acc"])
            assert math.isclose(float(lane[f"{split}_nll"]), float(lane[f"{split}_loss"]), rel_tol=1e-6)
            assert math.isclose(float(lane[f"{split}_nll"]), float(run[f"{split}_nll"]), rel_tol=1e-4)
            assert abs(float(lane[f"{split}_top1"]) - float(run[f"{split}_top1"])) <= 1 / 16


def test_the_multiseed_engine_records_what_a_recipes_steps_return_lane_by_lane(tmp_path, capsys):
    """A training step returning {"loss": ..., "margin": ...}, mapped over the seeds: each seed's margin is its own,
    as its run on `fast` records it, to rounding."""
    steps = '''from torch.nn import functional as F


def training_step(model, batch):
    x, y = batch
    logits = model(x)
    return {"loss": F.cross_entropy(logits, y), "margin": (logits.max(1).values - logits.min(1).values).mean()}
'''
    recipe = (BASE.replace('[loss]\nclass_path = "CrossEntropyLoss"', '[steps]\ntraining = "steps:training_step"\n\n'
                           '[metrics.margin]\nbetter = "higher"').replace("min = 0.5", "max = 5.0"))
    directory = registry(tmp_path, recipe)
    (directory / "steps.py").write_text(steps)
    for engine in ("multiseed", "fast"):
        status, out, err = harness(capsys, "run", "mine", "--experiments-dir", directory, "--results-dir", tmp_path / engine, "--engine", engine)
        assert status == 0, err
    lanes, single = read(tmp_path / "multiseed" / "runs.csv"), read(tmp_path / "fast" / "runs.csv")
    assert len(lanes) == len(single) == 2 and lanes[0]["train_margin"] != lanes[1]["train_margin"]
    for lane, run in zip(lanes, single):
        assert math.isclose(float(lane["train_margin"]), float(run["train_margin"]), rel_tol=1e-4)
        assert math.isclose(float(lane["test_margin"]), float(run["test_margin"]), rel_tol=1e-4)


def test_tables_widen_for_own_metrics_and_keep_those_of_recipes_not_loaded(tmp_path, capsys):
    """A results directory written without own metrics takes a recipe's: its tables gain the columns, the older
    rows reading empty there; a command that does not load that recipe (the tutorials' registry) reads the
    tables and appends to them, keeping its columns; a hand-edited bounded figure outside [0, 1] is named."""
    results = tmp_path / "R"
    plain = registry(tmp_path / "plain", BASE)
    assert harness(capsys, "run", "mine", "--experiments-dir", plain, "--results-dir", results, "--seeds", "0")[0] == 0
    own = registry(tmp_path / "own", RECIPE.replace('id = "mine"', 'id = "scored"').replace("mine.toml", "scored.toml"))
    (own / "mine.toml").rename(own / "scored.toml")
    assert harness(capsys, "run", "scored", "--experiments-dir", own, "--results-dir", results, "--seeds", "0")[0] == 0
    runs = read(results / "runs.csv")
    assert [r["experiment"] for r in runs] == ["mine", "scored"] and runs[0]["test_nll"] == "" and runs[1]["test_nll"] != ""
    status, out, err = harness(capsys, "run", "iris-ce", "--results-dir", results, "--seeds", "0", "--epochs", "1")
    assert status == 0, err
    runs = read(results / "runs.csv")
    assert len(runs) == 3 and list(runs[0])[-3:] == ["train_nll", "valid_nll", "test_nll"] and runs[1]["test_nll"] != ""
    status, out, err = harness(capsys, "check", "--results-dir", results, "--experiments-dir", own)
    assert "line 3" not in out and "line 2" in out, out  # its own run counts; the others' recipes are not in its registry
    text = (results / "runs.csv").read_text().splitlines()
    fields = text[2].split(",")
    fields[list(runs[0]).index("test_top1")] = "1.5"
    (results / "runs.csv").write_text("\n".join([*text[:2], ",".join(fields), *text[3:]]) + "\n")
    status, out, err = harness(capsys, "check", "--results-dir", results, "--experiments-dir", own)
    assert status == 1 and "test_top1 '1.5' is outside [0, 1]" in out + err, out + err


def test_runs_in_worker_processes_stop_on_a_recipes_own_metric(tmp_path, capsys):
    """--jobs 2 trains in fresh processes, which learn the recipe's own metrics from the recipe they are handed:
    a run stops once its training top-1 accuracy passes 0.5 (`stop_metric` naming an own metric)."""
    recipe = RECIPE.replace("epochs = 2", "epochs = 50\nstop_metric = \"train_top1\"\nstop_at = 0.5")
    directory = registry(tmp_path, recipe)
    status, out, err = harness(capsys, "run", "mine", "--experiments-dir", directory, "--results-dir", tmp_path / "R", "--jobs", "2")
    assert status == 0, err
    runs = read(tmp_path / "R" / "runs.csv")
    assert len(runs) == 3
    for run in runs:
        assert int(run["epochs"]) < 50 and float(run["train_top1"]) > 0.5
        assert run["message"] == f"stopped after epoch {run['epochs']}: train_top1 {float(run['train_top1'])!r} passed 0.5"


def test_a_step_that_returns_its_metrics_for_some_batches_only_is_one_line(tmp_path, capsys):
    steps = '''from torch.nn import functional as F

calls = []


def training_step(model, batch):
    x, y = batch
    loss = F.cross_entropy(model(x), y)
    calls.append(1)
    return {"loss": loss, "margin": loss} if len(calls) % 3 else loss
'''
    recipe = (BASE.replace('[loss]\nclass_path = "CrossEntropyLoss"', '[steps]\ntraining = "steps:training_step"\n\n'
                           '[metrics.margin]\nbetter = "higher"').replace("min = 0.5", "max = 5.0"))
    directory = registry(tmp_path, recipe)
    (directory / "steps.py").write_text(steps)
    status, out, err = harness(capsys, "run", "mine", "--experiments-dir", directory, "--results-dir", tmp_path / "R", "--seeds", "0")
    assert status == 2 and err.count("\n") == 1, err
    assert "a step returned the recipe's own metrics for some batches of a split and not for others" in err
    assert not (tmp_path / "R" / "runs.csv").exists()  # nothing written


def test_variance_by_source_tabulates_a_recipes_own_metrics(tmp_path, capsys):
    """`harness variance` and the report's "Where the spread comes from" give each own metric's test figure a
    table of its own, its spread read in its declared kind (a bounded one in percent, an unbounded one not)."""
    directory, results = registry(tmp_path), tmp_path / "R"
    status, out, err = harness(capsys, "variance", "mine", "--sources", "init", "--runs", "3", "--reruns", "2",
                               "--experiments-dir", directory, "--results-dir", results)
    assert status == 0, err
    tables = [line for line in out.splitlines() if line.startswith("mine [cpu, fast, base seed 0]: ")]
    assert [line.rsplit(": ", 1)[1] for line in tables] == ["test_acc", "test_top1", "test_nll", "test_loss"], out
    assert "reruns with every seed fixed: identical" in out
    status, out, err = harness(capsys, "report", "--results-dir", results, "--experiments-dir", directory)
    assert status == 0, err
    rows = [line.split("|") for line in (results / "REPORT.md").read_text().splitlines() if line.startswith("| test_")]
    by_metric = {}
    for cells in rows:
        by_metric.setdefault(cells[1].strip(), []).append(cells)
    assert set(by_metric) == {"test_acc", "test_top1", "test_nll", "test_loss"}
    assert all("%" in cells[4] for cells in by_metric["test_top1"]) and not any("%" in cells[4] for cells in by_metric["test_nll"])
    assert [cells[2].strip() for cells in by_metric["test_nll"]] == ["all", "init", "none"]
