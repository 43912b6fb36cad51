"""Which rows the report counts, read from runs/epochs/trace.csv, and the values it takes from them.

What counts: the latest row of each cell (a --force re-run supersedes the earlier one), of experiments
still in the registry, whose config_hash is the recipe's current one. `load_results` is the one place
that decides; everything it sets aside is counted in `Results` for the report's "What was read".
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import safe_files
from ..check import accepted_rows
from ..errors import HarnessError
from ..registry import METRICS
from ..results import EPOCH_COLUMNS, RUN_COLUMNS, TRACE_COLUMNS, is_current, latest_rows, overrides_text

KEY_COLUMNS = ("run_id", "experiment", "seed", "device", "engine", "config_hash", "started_at", "faithful", "status")
NUMERIC_RUN_COLUMNS = [*METRICS, "epochs", "wall_time_s", "train_time_s", "train_samples_per_s"]


def _read_csv(path: Path, columns: list[str], required: tuple[str, ...]) -> pd.DataFrame:
    """A results table as text, exactly as written (what latest_rows expects; run ids stay strings).

    Absent or empty gives no rows; optional columns missing from an older file are added empty.
    """
    empty = pd.DataFrame(columns=columns, dtype=str)
    data = safe_files.read_bytes(path)  # a link is refused, not followed
    if not data:
        return empty
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        return empty
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise HarnessError(f"{path}: not a readable CSV file ({str(e).strip()}); move it aside and run `harness run` again") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise HarnessError(f"{path}: missing column(s) {', '.join(missing)}; is this a harness results file?")
    for column in columns:
        if column not in frame.columns:
            frame[column] = ""
    return frame.fillna("")  # a short (truncated) line leaves NaN in its last cells


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


def load_results(results_dir: Path, registry: dict) -> Results:
    """The rows the report counts, and how many of the others were set aside, and why."""
    runs_text = _read_csv(results_dir / "runs.csv", RUN_COLUMNS, KEY_COLUMNS)
    records = runs_text.to_dict("records")
    well_formed = accepted_rows(records)
    latest = latest_rows(well_formed)
    kept, stale, unregistered = [], {}, {}
    for row in latest:
        exp = registry.get(row["experiment"])
        if exp is None:
            unregistered[row["experiment"]] = unregistered.get(row["experiment"], 0) + 1
        elif not is_current(row, exp):
            stale[exp.id] = stale.get(exp.id, 0) + 1
        else:
            kept.append(row)
    runs = pd.DataFrame(kept, columns=RUN_COLUMNS)
    for column in NUMERIC_RUN_COLUMNS + ["seed"]:
        runs[column] = pd.to_numeric(runs[column], errors="coerce")
    runs["faithful"] = runs["faithful"] == "true"
    runs["setting"] = [overrides_text(o) or "faithful" for o in runs["overrides"]]

    epochs = _read_csv(results_dir / "epochs.csv", EPOCH_COLUMNS, ("run_id", "epoch"))
    trace = _read_csv(results_dir / "trace.csv", TRACE_COLUMNS, ("run_id", "step", "running_loss"))
    all_run_ids = {r["run_id"] for r in records}
    orphan_epochs = int((~epochs["run_id"].isin(all_run_ids)).sum())
    ids = set(runs["run_id"])
    return Results(
        runs=runs.sort_values(["experiment", "device", "engine", "seed"], ignore_index=True),
        epochs=epochs[epochs["run_id"].isin(ids)].apply(_numeric_except_run_id),
        trace=trace[trace["run_id"].isin(ids)].apply(_numeric_except_run_id),
        read=len(records), malformed=len(records) - len(well_formed),
        superseded=len(well_formed) - len(latest), stale=stale, unregistered=unregistered,
        orphan_epochs=orphan_epochs,
    )


def _numeric_except_run_id(column: pd.Series) -> pd.Series:
    return column if column.name == "run_id" else pd.to_numeric(column, errors="coerce")


# ---------------------------------------------------------------------------------------------------
# Values the statistics are computed on


def faithful_ok(runs: pd.DataFrame, exp_id: str) -> pd.DataFrame:
    """An experiment's faithful runs that finished ok: the runs every comparison is made on."""
    return runs[(runs["experiment"] == exp_id) & runs["faithful"] & (runs["status"] == "ok")]


def at_epoch(runs: pd.DataFrame, epochs: pd.DataFrame, metric: str, epoch: int, last_epoch: int) -> pd.Series:
    """Each run's `metric` after `epoch`, by seed: its epochs.csv row, or for the recipe's last epoch its
    runs.csv value (the same number) where the run has no epoch rows. Runs without the value are left out."""
    logged = epochs[epochs["epoch"] == epoch].drop_duplicates("run_id").set_index("run_id")[metric]
    by_run = runs.set_index("run_id")
    values = logged.reindex(by_run.index).astype(float)  # float even where there are no epoch rows at all
    if epoch == last_epoch:
        values = values.fillna(by_run[metric])
    return pd.Series(values.to_numpy(dtype=float), index=by_run["seed"].astype(int).to_numpy()).dropna().sort_index()
