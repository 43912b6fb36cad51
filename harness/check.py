"""`harness check`: do the recorded results meet the thresholds the registry declares?

A threshold is a minimum of the mean over seeds of one metric, for faithful runs that finished (the
latest row of each cell counts). An experiment with thresholds but no faithful rows fails: a check
that cannot see its results does not pass. Dataset variants (`<id>@fashion-mnist`) run on request
only, so theirs are checked where they have results.

`integrity_failures` (below) says whether the files themselves can be believed; `harness check` runs both.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from .bounds import MAX_EPOCHS, MAX_SEED, OVERRIDE_LIMITS
from .errors import HarnessError
from .registry import DATASETS, ID_PATTERN, VARIANT_SEPARATOR, variants
from .results import (FINISHED_STATUSES, RUN_COLUMNS, STATUSES, TABLES, ResultsStore, is_current, latest_rows, overrides_json,
                      read_table)


def accepted_rows(rows: list[dict]) -> list[dict]:
    """The runs.csv rows `harness check` accepts: whole, and nothing in them the harness could not have
    written. The only rows anything counts: a report, a comparison, a run deciding what is finished."""
    return [r for r in rows if None not in r.values() and not run_row_problem(r)]


def threshold_failures(registry: dict, results_dir: Path | str) -> list[str]:
    registry = {**registry, **variants(registry)}
    # Malformed rows are integrity_failures' to report; here they are left out.
    rows = latest_rows(accepted_rows(ResultsStore(results_dir).rows()))
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        if row["faithful"] == "true" and row["experiment"] in registry:
            if is_current(row, registry[row["experiment"]]):
                groups[(row["experiment"], row["device"], row["engine"])].append(row)
    failures = []
    for exp in registry.values():
        if not exp.thresholds:
            continue
        mine = {k: v for k, v in groups.items() if k[0] == exp.id}
        if not mine:
            if exp.variant_of:
                continue  # variants run on request only: checked where they have results
            failures.append(f"{exp.id}: no faithful results for the current recipe (config {exp.config_hash()}); run `harness run {exp.id}`")
            continue
        for (exp_id, device, engine), group in sorted(mine.items()):
            bad = [r for r in group if r["status"] != "ok"]
            if bad:
                failures.append(f"{exp_id} [{device}, {engine}]: {len(bad)} of {len(group)} run(s) ended {bad[0]['status']}: {bad[0]['message']}")
                continue
            for metric, minimum in exp.thresholds.items():
                values = [float(r[metric]) for r in group if r[metric] != ""]
                mean = sum(values) / len(values) if values else math.nan
                if not values or not mean >= minimum:
                    failures.append(
                        f"{exp_id} [{device}, {engine}]: mean {metric} {mean:.4f} over {len(values)} seed(s) is below the threshold {minimum}"
                    )
    return failures


# ---------------------------------------------------------------------------------------------------
# Integrity: are the results files still what the harness wrote? Thresholds say whether results are
# good; this says whether they can be believed: hand edits, damage, and rows recorded under a recipe
# that has changed since.

RUN_METRICS = ("train_loss", "train_acc", "valid_loss", "valid_acc", "test_loss", "test_acc")
TIMES = ("wall_time_s", "train_time_s", "train_samples_per_s", "epoch_time_s", "samples_per_s")
LOSSES = ("train_loss", "valid_loss", "test_loss", "running_loss")
INTEGERS = ("seed", "epochs", "epoch", "step", "samples", "threads", "diverged_epoch")
# The largest value an integer column can hold as the harness writes it (the others: any).
MOST = {"seed": MAX_SEED, "epochs": MAX_EPOCHS, "epoch": MAX_EPOCHS, "diverged_epoch": MAX_EPOCHS}
# What identifies a run: never empty in a row the harness wrote.
REQUIRED = ("run_id", "experiment", "seed", "device", "engine", "epochs", "faithful", "status", "config_hash", "started_at")
STARTED_AT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\+00:00")  # isoformat(timespec="seconds") in UTC
EXPERIMENT = re.compile(rf"{ID_PATTERN.pattern}(?:{VARIANT_SEPARATOR}(?:{'|'.join(map(re.escape, DATASETS))}))?")


def _number(text: str | None, kind=float):
    """The value of a numeric field: None when empty; ValueError when it does not parse."""
    if text is None:
        raise ValueError("missing")
    return None if text == "" else kind(text)


def _field_problem(row: dict, columns: list[str]) -> str | None:
    """What is wrong with one field of a runs/epochs/trace row, if anything (first problem only)."""
    for column in columns:
        text = row[column]
        try:
            if column in INTEGERS:
                value = _number(text, int)
                if value is not None and value < 0:
                    return f"{column} {text!r} is negative"
                if value is not None and column in MOST and value > MOST[column]:
                    return f"{column} {text!r} is beyond {MOST[column]}, more than the harness runs"
            elif column in RUN_METRICS or column in TIMES or column == "running_loss":
                value = _number(text)
                if column.endswith("_acc") and value is not None and not 0 <= value <= 1:
                    return f"{column} {text!r} is outside [0, 1]"
                if column in TIMES and value is not None and not (math.isfinite(value) and value >= 0):
                    return f"{column} {text!r} is not a finite time or rate of 0 or more"
                if column in LOSSES and value is not None and value < 0:  # both losses are 0 or more; nan: diverged
                    return f"{column} {text!r} is negative"
        except ValueError:
            return f"{column} {text!r} is not a number"
    return None


def run_row_problem(row: dict) -> str | None:
    """What makes a runs.csv row one the harness could not have written, if anything: None for a row
    `harness check` accepts, the only rows `harness report` counts."""
    problem = _field_problem(row, RUN_COLUMNS)
    if problem:
        return problem
    empty = [c for c in REQUIRED if not row[c]]
    if empty:
        return f"{', '.join(empty)} empty"
    if not EXPERIMENT.fullmatch(row["experiment"]):
        return f"experiment {row['experiment']!r} is not an experiment id"
    if row["status"] not in STATUSES:
        return f"status {row['status']!r} is not one of {', '.join(STATUSES)}"
    if row["faithful"] not in ("true", "false"):
        return f"faithful {row['faithful']!r} is not true or false"
    if (row["faithful"] == "true") != (row["overrides"] == ""):
        return f"faithful {row['faithful']!r} with overrides {row['overrides']!r}: a run is faithful exactly when nothing is overridden"
    if row["status"] in FINISHED_STATUSES and int(row["epochs"]) < 1:
        return f"status {row['status']} after {row['epochs']} epochs"
    if (row["status"] == "diverged") != (row["diverged_epoch"] != ""):
        return "diverged_epoch must be given exactly when status is diverged"
    if row["diverged_epoch"] and not 1 <= int(row["diverged_epoch"]) <= int(row["epochs"]):
        return f"diverged_epoch {row['diverged_epoch']} is not one of the run's {row['epochs']} epochs"
    if row["status"] == "ok" and any(row[m] != "" and not math.isfinite(float(row[m])) for m in RUN_METRICS):
        return "status ok with a non-finite metric"
    if not _utc_timestamp(row["started_at"]):
        return f"started_at {row['started_at']!r} is not a UTC time as the harness writes it (e.g. 2025-01-31T12:00:00+00:00)"
    return _overrides_problem(row["overrides"])


def _utc_timestamp(text: str) -> bool:
    if not STARTED_AT.fullmatch(text):
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:  # a day or hour that does not exist
        return False
    return True


def _overrides_problem(text: str) -> str | None:
    """Overrides are empty, or the JSON object the runner writes: known keys, integers in bounds, keys sorted."""
    if not text:
        return None
    try:
        overrides = json.loads(text)
    except (ValueError, RecursionError):
        overrides = None
    if not isinstance(overrides, dict) or not overrides:
        return f"overrides {text!r} is not a JSON object of overrides"
    for key, value in overrides.items():
        if key not in OVERRIDE_LIMITS:
            return f"overrides {text!r}: {key!r} is not one of {', '.join(OVERRIDE_LIMITS)}"
        if type(value) is not int or not 1 <= value <= OVERRIDE_LIMITS[key]:
            return f"overrides {text!r}: {key} is not an integer from 1 to {OVERRIDE_LIMITS[key]}"
    written = overrides_json(overrides)
    if text != written:
        return f"overrides {text!r} is not as the harness writes it ({written})"
    return None


def _header_problem(path: Path, header: list[str], columns: list[str]) -> str:
    if set(header) == set(columns):
        return f"{path}: columns reordered; expected {','.join(columns)}"
    if header and header[0] != columns[0]:
        return f"{path}: header missing or replaced (first line {','.join(header)[:60]!r}); expected {','.join(columns)[:60]}..."
    return f"{path}: header is not this version's columns; expected {','.join(columns)}"


def _read_checked(path: Path, columns: list[str], failures: list[str]) -> list[tuple[int, dict]] | None:
    """(line, row) for every record that has the right number of fields; None if the file cannot be read."""
    try:
        header, records = read_table(path)
    except HarnessError as e:
        failures.append(str(e))
        return None
    if header is None:
        return []
    if header != columns:
        failures.append(_header_problem(path, header, columns))
        return None
    rows = []
    for line, record in enumerate(records, start=2):
        if len(record) != len(columns):
            failures.append(f"{path} line {line}: {len(record)} fields, expected {len(columns)} (a partial or hand-edited row)")
        else:
            rows.append((line, dict(zip(columns, record))))
    return rows


def _same(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    return x == y or (math.isnan(x) and math.isnan(y))


def _stale(row: dict, registry: dict) -> str | None:
    exp = registry.get(row["experiment"])
    if exp is None:
        return f"experiment {row['experiment']!r} is not in the registry"
    if not is_current(row, exp):
        current = exp.config_hash(json.loads(row["overrides"] or "{}"))
        return f"config_hash {row['config_hash']} is not the registry's {current} (the recipe changed, or the row was edited)"
    return None


def integrity_failures(registry: dict, results_dir: Path | str) -> list[str]:
    """One line per damaged, inconsistent or stale thing in the results files; [] when all is sound."""
    registry = {**registry, **variants(registry)}
    results_dir = Path(results_dir)
    failures: list[str] = []
    runs_path = results_dir / "runs.csv"
    with ResultsStore(results_dir).reading():  # not half-way through a run recording its rows
        tables = {name: _read_checked(results_dir / name, columns, failures) for name, columns in TABLES.items()}
    runs = tables["runs.csv"]
    if runs is None:
        return failures

    good_runs: dict[str, tuple[int, dict]] = {}
    for line, row in runs:
        problem = run_row_problem(row)
        if problem:
            failures.append(f"{runs_path} line {line}: run {row['run_id']}: {problem}")
        elif row["run_id"] in good_runs:
            failures.append(f"{runs_path} line {line}: run_id {row['run_id']} repeats line {good_runs[row['run_id']][0]}")
        else:
            good_runs[row["run_id"]] = (line, row)
    all_run_ids = {row["run_id"] for _, row in runs}

    # Stale rows: recorded under a recipe the registry no longer has. A stale row whose cell has since
    # been run again under the current recipe is history, not a problem.
    current_cells = {
        (r["experiment"], r["seed"], r["device"], r["engine"], r["overrides"])
        for _, r in good_runs.values() if r["status"] in FINISHED_STATUSES and not _stale(r, registry)
    }
    for line, row in good_runs.values():
        stale = _stale(row, registry)
        if stale and (row["experiment"], row["seed"], row["device"], row["engine"], row["overrides"]) not in current_cells:
            failures.append(f"{runs_path} line {line}: run {row['run_id']} is stale: {stale}; "
                            f"run `harness run {row['experiment']}` again for this seed, device and engine")

    last_epoch: dict[str, dict] = {}
    for name in ("epochs.csv", "trace.csv"):
        rows = tables[name]
        if rows is None:
            continue
        orphans: dict[str, int] = defaultdict(int)
        for line, row in rows:
            problem = _field_problem(row, TABLES[name]) or (None if row["epoch"] else "epoch is empty")
            if problem:
                failures.append(f"{results_dir / name} line {line}: run {row['run_id']}: {problem}")
            elif row["run_id"] not in all_run_ids:
                orphans[row["run_id"]] += 1
            elif name == "epochs.csv" and int(row["epoch"]) >= int(last_epoch.get(row["run_id"], {}).get("epoch", 0)):
                last_epoch[row["run_id"]] = row
        for run_id, count in orphans.items():
            failures.append(f"{results_dir / name}: {count} row(s) of run {run_id}, which has no row in runs.csv "
                            "(an interrupted write or an edit); delete them")

    if tables["epochs.csv"] is not None:
        for line, row in good_runs.values():
            if row["status"] not in FINISHED_STATUSES:
                continue
            last = last_epoch.get(row["run_id"])
            if last is None:
                failures.append(f"{runs_path} line {line}: run {row['run_id']} has no rows in epochs.csv")
                continue
            differ = [m for m in ("epochs", *RUN_METRICS) if not _same(row[m], last["epoch" if m == "epochs" else m])]
            if differ:
                m = differ[0]
                failures.append(f"{runs_path} line {line}: run {row['run_id']}: {m} {row[m]!r} disagrees with its last "
                                f"epochs.csv row ({last['epoch' if m == 'epochs' else m]!r})")
    return failures
