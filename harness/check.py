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
from collections import defaultdict
from pathlib import Path

from . import rows as counted_rows
from .registry import variants
from .rows import FINISHED_STATUSES, RUN_METRICS, field_problem, is_current, run_row_problem
from .results import TABLES


def threshold_failures(registry: dict, results_dir: Path | str) -> list[str]:
    registry = {**registry, **variants(registry)}
    # Refused rows are integrity_failures' to report; here they are left out.
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in counted_rows.count(results_dir, registry).runs:
        if row["faithful"] == "true":
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
    read = counted_rows.read(results_dir)
    tables = {}
    for table in (read.runs, read.epochs, read.trace):
        if table.problem:
            failures.append(table.problem)
            tables[table.name] = None
            continue
        for line, fields in table.short:
            failures.append(f"{results_dir / table.name} line {line}: {fields} fields, expected {len(TABLES[table.name])} "
                            "(a partial or hand-edited row)")
        tables[table.name] = table.records
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
            problem = field_problem(row, TABLES[name]) or (None if row["epoch"] else "epoch is empty")
            if problem:
                failures.append(f"{results_dir / name} line {line}: run {row['run_id']}: {problem}")
            elif row["run_id"] not in all_run_ids:
                orphans[row["run_id"]] += 1
            elif name == "epochs.csv" and int(row["epoch"]) >= int(last_epoch.get(row["run_id"], {}).get("epoch", 0)):
                last_epoch[row["run_id"]] = row
        for run_id, n in orphans.items():
            failures.append(f"{results_dir / name}: {n} row(s) of run {run_id}, which has no row in runs.csv "
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
