"""The rows the report counts (`harness.rows.count`, as every command counts them), as data frames.

Everything `count` sets aside is counted in `Results` for the report's "What was read".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import rows as counted_rows
from ..variance import is_varied
from ..catalogue import EPOCH_COLUMNS, METRIC_NAMES, RUN_COLUMNS, TRACE_COLUMNS, own_columns, with_own_columns
from ..results import overrides_text

NUMERIC_RUN_COLUMNS = [*METRIC_NAMES, "epochs", "wall_time_s", "train_time_s", "train_samples_per_s"]


@dataclass
class Results:
    """The rows the report is about, and an account of what was set aside."""

    runs: pd.DataFrame  # latest, current rows of registered experiments, numeric columns as numbers
    epochs: pd.DataFrame  # epoch rows of those runs
    trace: pd.DataFrame
    read: int = 0  # rows in runs.csv
    malformed: int = 0
    superseded: int = 0
    stale: dict = field(default_factory=dict)  # experiment -> rows of an earlier recipe
    unregistered: dict = field(default_factory=dict)  # experiment -> rows
    orphan_epochs: int = 0  # epoch rows of no recorded run (an interrupted write)
    refused: str = ""  # what was refused, naming the command that lists it
    unregistered_note: str = ""  # rows of experiments the registry does not hold, naming --experiments-dir
    # Every counted run as read, those varying one source at a time included: `runs` leaves those out, since
    # they answer where the spread comes from (the variance section), not what a recipe reaches.
    rows: list = field(default_factory=list)
    varied: int = 0
    added_from: Path | None = None  # a directory whose rows count for the cells this one lacks
    added: int = 0


def load_results(results_dir: Path, registry: dict, lock_held: bool = False, add_from: Path | None = None) -> Results:
    """The rows the report counts, and how many of the others were set aside, and why. `add_from`: another
    results directory whose counted rows count too, for the cells `results_dir` lacks."""
    counted = counted_rows.count(results_dir, registry, lock_held=lock_held)
    added = counted_rows.add_missing_cells(counted, counted_rows.count(add_from, registry)) if add_from else 0
    ordinary = [r for r in counted.runs if not is_varied(r)]
    runs = pd.DataFrame(ordinary, columns=with_own_columns(RUN_COLUMNS, ordinary))
    for column in [*NUMERIC_RUN_COLUMNS, *own_columns(runs.columns), "seed"]:
        runs[column] = pd.to_numeric(runs[column], errors="coerce")
    runs["faithful"] = runs["faithful"] == "true"
    runs["setting"] = [overrides_text(o) or "faithful" for o in runs["overrides"]]
    kept = set(runs["run_id"])
    epoch_rows = [e for e in counted.epochs if e["run_id"] in kept]
    epochs = pd.DataFrame(epoch_rows, columns=with_own_columns(EPOCH_COLUMNS, epoch_rows))
    trace = pd.DataFrame([t for t in counted.trace if t["run_id"] in kept], columns=TRACE_COLUMNS)
    return Results(
        runs=runs.sort_values(["experiment", "device", "engine", "seed"], ignore_index=True),
        epochs=epochs.apply(_numeric_except_run_id), trace=trace.apply(_numeric_except_run_id),
        read=counted.read, malformed=len(counted.refused), superseded=counted.superseded, stale=counted.stale,
        unregistered=counted.unregistered, orphan_epochs=counted.orphan_epochs, refused=counted.refusal_note(),
        unregistered_note=counted.unregistered_note(),
        rows=counted.runs, varied=len(counted.runs) - len(ordinary), added_from=add_from, added=added,
    )


def _numeric_except_run_id(column: pd.Series) -> pd.Series:
    return column if column.name == "run_id" else pd.to_numeric(column, errors="coerce")


# ---------------------------------------------------------------------------------------------------
# Values the statistics are computed on


def faithful_ok(runs: pd.DataFrame, exp_id: str) -> pd.DataFrame:
    """An experiment's faithful runs that finished ok: the runs every comparison is made on."""
    return runs[(runs["experiment"] == exp_id) & runs["faithful"] & (runs["status"] == "ok")]


def at_epoch(runs: pd.DataFrame, epochs: pd.DataFrame, metric: str, epoch: int) -> pd.Series:
    """Each run's `metric` after `epoch`, by seed, from its epochs.csv row (a counted run's last one holds its
    final figures: rows.judge). Runs without the value are left out."""
    logged = epochs[epochs["epoch"] == epoch].drop_duplicates("run_id").set_index("run_id")[metric]
    by_run = runs.set_index("run_id")
    values = logged.reindex(by_run.index).astype(float)  # float even where there are no epoch rows at all
    return pd.Series(values.to_numpy(dtype=float), index=by_run["seed"].astype(int).to_numpy()).dropna().sort_index()
