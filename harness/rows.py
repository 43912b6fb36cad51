"""Which rows count: the one reader of runs.csv, epochs.csv and trace.csv, and the one rule for what counts.

Every command reads results through here (`run` deciding what is finished, `check`, `report`, `compare`):

- The three tables are read together under the directory's shared lock, so a run recording its rows
  meanwhile is never seen half-way.
- A file written by an earlier version (its columns this version's, in order, later ones missing) is
  read with the missing columns empty; columns reordered, renamed or unknown make the file unreadable.
- Values that mean the same are read as the same: a file re-saved by pandas or a spreadsheet has
  `True`/`TRUE` for `true`, `12.0` for an integer, a float written with other digits (`canonical`),
  so such a file counts as it was. What does not mean the same (a time reformatted, a float rounded
  away from what epochs.csv holds) is refused, row by row, with what changed.
- A runs.csv row counts only if the harness could have written it (`run_row_problem`) and its epoch
  rows agree with it (`judge`): the one rule, so that a row `harness check` refuses is neither reported,
  compared nor skipped as finished. Every refused row is counted with its reason and line.
- Of the accepted rows, the latest finished one of each cell counts (`latest`), of experiments still
  registered under their current recipe (`is_current`): see `count`.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .bounds import MAX_EPOCHS, MAX_SEED, OVERRIDE_LIMITS
from .catalogue import (BOOLEANS, CATALOGUE_COLUMNS, EARLIEST_COLUMNS, FLOATS, INTEGERS, LOSSES, MAX_FIELD, METRIC_NAMES,
                        METRICS, NUMBER, REQUIRED, RUN_COLUMNS, SEED_COLUMNS, TABLES, TIMES, cell_key, own_columns,
                        table_columns)
from .seeds import SOURCES, VARIED, source_seeds
from .errors import HarnessError
from .schema import ID_PATTERN, VARIANT_DATASETS, VARIANT_SEPARATOR
from .results import FINISHED_STATUSES, STATUSES, ResultsStore, overrides_json, read_table
# The largest value an integer column can hold as the harness writes it (the others: any).
MOST = {"seed": MAX_SEED, "epochs": MAX_EPOCHS, "epoch": MAX_EPOCHS, "diverged_epoch": MAX_EPOCHS,
        **{column: MAX_SEED for column in SEED_COLUMNS}}
STARTED_AT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\+00:00")  # isoformat(timespec="seconds") in UTC
_VARIANTS = sorted({name for names in VARIANT_DATASETS.values() for name in names})
EXPERIMENT = re.compile(rf"{ID_PATTERN.pattern}(?:{VARIANT_SEPARATOR}(?:{'|'.join(map(re.escape, _VARIANTS))}))?")
SHA256 = re.compile(r"[0-9a-f]{64}")


# ---------------------------------------------------------------------------------------------------
# Reading: values as the harness writes them


def canonical(column: str, text: str) -> str:
    """A field as the harness writes its value: what another program's re-save of the same value reads as.

    `True`/`TRUE` -> `true`; `12.0` in an integer column -> `12`. Anything else is left as it is, for
    `run_row_problem` to judge: floats need nothing, since everything that reads one parses it (a float
    written with other digits that parse to the same double is the same number).
    """
    if not text:
        return text
    if column in BOOLEANS and text.lower() in ("true", "false"):
        return text.lower()
    if column in INTEGERS and NUMBER.fullmatch(text) and not text.isdigit():
        value = float(text)
        return str(int(value)) if value.is_integer() and value >= 0 else text
    return text


@dataclass
class Table:
    """One results table: its records by line number (2 onwards), each field canonical, and what is
    wrong with the file as a whole (None: nothing)."""

    name: str
    records: list[tuple[int, dict]] = field(default_factory=list)
    problem: str | None = None  # unreadable: no record of it counts
    older: bool = False  # written by an earlier version (fewer columns): read, and widened when next appended to
    short: list[tuple[int, int]] = field(default_factory=list)  # (line, fields) of records cut short or too long

    @property
    def rows(self) -> list[dict]:
        return [row for _, row in self.records]


def read_table_file(path: Path) -> Table:
    """A table, each record a dict of this version's columns (an earlier version's missing ones empty)."""
    table = Table(path.name)
    try:
        header, records = read_table(path)
    except HarnessError as e:
        table.problem = str(e)
        return table
    if header is None:
        return table
    columns = table_columns(path.name, header)  # the catalogue's, then those of recipes' own metrics it holds
    if header != columns[: len(header)] or len(header) < len(EARLIEST_COLUMNS[path.name]):
        table.problem = _header_problem(path, header, columns)
        return table
    width = len(header)
    table.older = width < len(columns)
    for line, record in enumerate(records, start=2):
        if len(record) != width:
            table.short.append((line, len(record)))
            continue
        row = {c: canonical(c, record[i]) if i < width else "" for i, c in enumerate(columns)}
        table.records.append((line, row))
    return table


def _header_problem(path: Path, header: list[str], columns: list[str]) -> str:
    if set(header) == set(columns):
        return f"{path}: columns reordered; expected {','.join(columns)}"
    if header and header[0] != columns[0]:
        return f"{path}: header missing or replaced (first line {','.join(header)[:60]!r}); expected {','.join(columns)[:60]}..."
    unknown = [c for c in header if c not in columns]
    missing = [c for c in EARLIEST_COLUMNS[path.name] if c not in header]
    what = (f"unknown column(s) {', '.join(unknown)}" if unknown else f"missing column(s) {', '.join(missing)}" if missing
            else "columns out of order")
    return f"{path}: not this harness's columns ({what}); expected {','.join(columns)}"


@dataclass
class Tables:
    """runs.csv, epochs.csv and trace.csv of one directory, read together."""

    directory: Path
    runs: Table
    epochs: Table
    trace: Table


def require_results(directory: Path | str) -> Path:
    """`directory` as a results directory `harness run` wrote (it holds runs.csv), or one line saying it is
    not one: the commands that only read results create nothing (no lock, no report) anywhere else."""
    directory = Path(directory)
    if not (directory / "runs.csv").is_file():
        what = "no such directory" if not directory.is_dir() else "no runs.csv in it"
        raise HarnessError(f"{directory}: {what}; name a results directory that `harness run` wrote")
    return directory


def read(directory: Path | str, lock_held: bool = False) -> Tables:
    """The three tables, under the directory's shared lock (not half-way through a run recording rows);
    `lock_held`: the caller holds its exclusive lock already (a second lock would wait for ever)."""
    directory = Path(directory)
    with contextlib.nullcontext() if lock_held else ResultsStore(directory).reading():
        tables = {name: read_table_file(directory / name) for name in TABLES}
    return Tables(directory, tables["runs.csv"], tables["epochs.csv"], tables["trace.csv"])


def refuse_unreadable(tables: Tables) -> None:
    """A table that cannot be read stops the command: one line naming the file."""
    for table in (tables.runs, tables.epochs, tables.trace):
        if table.problem:
            raise HarnessError(f"{table.problem}; `harness check` names the damage, move the file aside to start afresh")


# ---------------------------------------------------------------------------------------------------
# Accepting: rows the harness could have written


def _number(text: str, kind=float):
    """The value of a numeric field: None when empty; ValueError when it does not parse."""
    return None if text == "" else kind(text)


def field_problem(row: dict, columns: list[str]) -> str | None:
    """What is wrong with one field of a runs/epochs/trace row, if anything (first problem only)."""
    for column in columns:
        text = row[column]
        if len(text) > MAX_FIELD:
            return f"{column} has {len(text):,} characters; the harness writes at most {MAX_FIELD:,}"
        try:
            if column in INTEGERS:
                value = _number(text, int)
                if value is not None and value < 0:
                    return f"{column} {text!r} is negative"
                if value is not None and column in MOST and value > MOST[column]:
                    return f"{column} {text!r} is beyond {MOST[column]}, more than the harness runs"
            elif column in FLOATS or column not in CATALOGUE_COLUMNS:  # a recipe's own metric is a number too
                value = _number(text)
                kind = METRICS[column].kind if column in METRICS else None
                if kind and value is not None and math.isfinite(kind.most) and not kind.least <= value <= kind.most:
                    return f"{column} {text!r} is outside [{kind.least:g}, {kind.most:g}]"
                if column in TIMES and value is not None and not (math.isfinite(value) and value >= 0):
                    return f"{column} {text!r} is not a finite time or rate of 0 or more"
                if column in LOSSES and value is not None and value < 0:  # both losses are 0 or more; nan: diverged
                    return f"{column} {text!r} is negative"
        except ValueError:
            return f"{column} {text!r} is not a number"
    return None


def run_row_problem(row: dict) -> str | None:
    """What makes a runs.csv row one the harness could not have written, if anything: None for a row
    that counts."""
    problem = field_problem(row, [*RUN_COLUMNS, *own_columns(row)])
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
    if row["status"] == "ok" and any(row[m] != "" and not math.isfinite(float(row[m])) for m in (*METRIC_NAMES, *own_columns(row))):
        return "status ok with a non-finite metric"
    for column in ("weights_sha256", "code_sha256"):
        if row[column] and not SHA256.fullmatch(row[column]):
            return f"{column} {row[column]!r} is not a SHA-256 (64 lowercase hex digits) as the harness writes it"
    if not _utc_timestamp(row["started_at"]):
        return f"started_at {row['started_at']!r} is not a UTC time as the harness writes it (e.g. 2025-01-31T12:00:00+00:00)"
    return _overrides_problem(row["overrides"]) or _source_seeds_problem(row)


def _source_seeds_problem(row: dict) -> str | None:
    """The seed_* columns are empty under the tutorials' scheme, and what `--vary` gives otherwise."""
    overrides = row_overrides(row) or {}
    written = tuple(row[column] for column in SEED_COLUMNS)
    if "vary" not in overrides:
        return None if not any(written) else "seed_* columns given, but overrides name no varied source (vary)"
    seeds = source_seeds(overrides["vary"], overrides["base_seed"], int(row["seed"]))
    expected = tuple("" if seeds[source] is None else str(seeds[source]) for source in SOURCES)
    if written != expected:
        return f"seed_* columns {','.join(written)} are not those of vary={overrides['vary']} (expected {','.join(expected)})"
    return None


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
    if ("vary" in overrides) != ("base_seed" in overrides):
        return f"overrides {text!r}: vary and base_seed come together"
    for key, value in overrides.items():
        if key == "vary":
            if value not in VARIED:
                return f"overrides {text!r}: vary is not one of {', '.join(VARIED)}"
            continue
        if key == "base_seed":
            if type(value) is not int or not 0 <= value <= MAX_SEED:
                return f"overrides {text!r}: base_seed is not an integer from 0 to {MAX_SEED}"
            continue
        if key not in OVERRIDE_LIMITS:
            return f"overrides {text!r}: {key!r} is not one of {', '.join((*OVERRIDE_LIMITS, 'vary', 'base_seed'))}"
        if type(value) is not int or not 1 <= value <= OVERRIDE_LIMITS[key]:
            return f"overrides {text!r}: {key} is not an integer from 1 to {OVERRIDE_LIMITS[key]}"
    written = overrides_json(overrides)
    if text != written:
        return f"overrides {text!r} is not as the harness writes it ({written})"
    return None


@dataclass
class Judged:
    """Every runs.csv row of a directory judged by the one rule: what `harness check` refuses counts nowhere."""

    accepted: list[dict]  # the runs.csv rows that count at all
    refused: list[tuple[int, str]]  # (line, why) of those that do not, by line
    damage: list[str]  # damaged or orphaned lines of epochs.csv and trace.csv, one sentence each


def judge(tables: Tables) -> Judged:
    """A runs.csv row counts only if the harness could have written it (`run_row_problem`), its run_id is
    not one an earlier line already has, and, for a finished run, its epoch and trace rows are whole and
    its figures are those of its last epoch: a figure edited by hand, or an epochs.csv cut short, refuses
    the run rather than counting it with what it no longer matches."""
    refused = [(line, f"{n} fields, expected {len(RUN_COLUMNS)} (a partial or hand-edited row)") for line, n in tables.runs.short]
    damage: list[str] = []
    run_ids = {row["run_id"] for row in tables.runs.rows}
    damaged: dict[str, str] = {}  # run_id -> its first damaged epoch or trace line
    last_epoch: dict[str, dict] = {}
    for table in (tables.epochs, tables.trace):
        path, columns = tables.directory / table.name, TABLES[table.name]
        for line, n in table.short:
            damage.append(f"{path} line {line}: {n} fields, expected {len(columns)} (a partial or hand-edited row)")
        orphans: dict[str, int] = {}
        for line, row in table.records:
            problem = field_problem(row, [*columns, *own_columns(row)]) or (None if row["epoch"] else "epoch is empty")
            if problem:
                damage.append(f"{path} line {line}: run {row['run_id']}: {problem}")
                damaged.setdefault(row["run_id"], f"its {table.name} line {line}: {problem}")
            elif row["run_id"] not in run_ids:
                orphans[row["run_id"]] = orphans.get(row["run_id"], 0) + 1
            elif table.name == "epochs.csv" and int(row["epoch"]) >= int(last_epoch.get(row["run_id"], {}).get("epoch", 0)):
                last_epoch[row["run_id"]] = row
        for run_id, n in orphans.items():
            damage.append(f"{path}: {n} row(s) of run {run_id}, which has no row in runs.csv (an interrupted write or an edit); "
                          "delete them")
    accepted, first_line = [], {}
    for line, row in tables.runs.records:
        why = run_row_problem(row)
        if why:
            why = f"run {row['run_id']}: {why}"
        elif row["run_id"] in first_line:
            why = f"run_id {row['run_id']} repeats line {first_line[row['run_id']]}"
        elif row["status"] in FINISHED_STATUSES and not tables.epochs.problem:  # an unreadable epochs.csv is said once
            why = _epochs_problem(row, last_epoch.get(row["run_id"]), damaged.get(row["run_id"]))
        if why:
            refused.append((line, why))
            continue
        first_line[row["run_id"]] = line
        accepted.append(row)
    return Judged(accepted, sorted(refused), damage)


def _epochs_problem(run: dict, last: dict | None, damaged: str | None) -> str | None:
    """What makes a finished run's epoch rows disagree with it, if anything."""
    if damaged:
        return f"run {run['run_id']}: {damaged}"
    if last is None:
        return f"run {run['run_id']} has no rows in epochs.csv"
    for column in ("epochs", *METRIC_NAMES, *own_columns(run)):
        mine, theirs = run[column], last.get("epoch" if column == "epochs" else column, "")
        if not same(mine, theirs):
            return f"run {run['run_id']}: {column} {mine!r} disagrees with its last epochs.csv row ({theirs!r})"
    return None


def same(a, b) -> bool:
    """Two fields that hold the same value (floats written with other digits included; nan is nan; an empty
    field is as missing as NaN)."""
    if a == b:
        return True
    try:
        x, y = (math.nan if v in ("", None) else float(v) for v in (a, b))
    except (TypeError, ValueError):
        return False
    return x == y or (math.isnan(x) and math.isnan(y))


# ---------------------------------------------------------------------------------------------------
# Two runs of one cell: bit for bit the same, or where they first part


FINAL = ("status", "epochs", *METRIC_NAMES, "diverged_epoch")  # what a run row says of its end


def first_parting(a: dict, b: dict, epochs_a=(), epochs_b=(), trace_a=(), trace_b=()) -> dict | None:
    """Where two runs of one cell first part: the earliest epoch with a figure that differs (or logged by one
    run only), then the trace's running losses, then the rows' final figures, then the final weights (where
    both rows record their digest); None where they are bit for bit the same. Values compare by what they
    mean (`same`: text as read, or numbers); a repeated epoch row counts once (its first).

    Returns {"epoch": ..., "column": ..., "a": ..., "b": ...}: the epoch is "final" for the run rows and
    weights; the column "(epoch rows)" where one run logged the epoch and the other did not."""
    own = own_columns({c: None for row in (a, b) for c in row})
    for rows_a, rows_b, where, columns in ((epochs_a, epochs_b, ("epoch",), (*METRIC_NAMES, *own)),
                                           (trace_a, trace_b, ("epoch", "step"), ("samples", "running_loss"))):
        by_a, by_b = ({}, {})
        for rows, into in ((rows_a, by_a), (rows_b, by_b)):
            for row in rows:
                into.setdefault(tuple(float(row[c]) for c in where), row)
        for at in sorted(by_a.keys() | by_b.keys()):
            epoch = int(at[0])
            if at not in by_a or at not in by_b:
                return {"epoch": epoch, "column": "(epoch rows)" if len(where) == 1 else "(trace rows)", "a": at in by_a, "b": at in by_b}
            for column in columns:
                x, y = by_a[at].get(column, ""), by_b[at].get(column, "")
                if not same(x, y):
                    return {"epoch": epoch, "column": column, "a": x, "b": y}
    for column in (*FINAL, *own):
        if column in a and column in b and not same(a[column], b[column]):
            return {"epoch": "final", "column": column, "a": a[column], "b": b[column]}
    digests = a.get("weights_sha256") or "", b.get("weights_sha256") or ""
    if all(digests) and digests[0] != digests[1]:
        return {"epoch": "final", "column": "weights_sha256", "a": digests[0], "b": digests[1]}
    return None


def accepted(tables: Tables) -> list[dict]:
    """The runs.csv rows that count at all (`judge`)."""
    return judge(tables).accepted


# ---------------------------------------------------------------------------------------------------
# Counting: the latest finished row of each cell, current recipe


def latest(rows: list[dict], also: tuple[str, ...] = ()) -> list[dict]:
    """One row per cell: the most recent finished one (a --force re-run supersedes the earlier row),
    else the most recent. A later attempt that failed (`error`, as when its worker is killed) never
    hides a finished run: the cell counts as finished, so `run` does not run it again, and its result
    is the one counted. With `also`, one per cell and value of those columns (the latest of each torch
    version, say)."""
    found: dict[tuple, dict] = {}
    for row in rows:
        key = cell_key(row) + tuple(row.get(c) or "" for c in also)
        if key not in found or _rank(row) >= _rank(found[key]):
            found[key] = row
    return list(found.values())


def _rank(row: dict) -> tuple:
    return row["status"] in FINISHED_STATUSES, row["started_at"]


def finished_keys(rows: list[dict]) -> set[tuple]:
    """The cells an ok or diverged row finished, among accepted rows (a hand-edited row finishes
    nothing: its cell runs again)."""
    return {cell_key(r) for r in rows if r["status"] in FINISHED_STATUSES}


def row_overrides(row: dict) -> dict | None:
    return json.loads(row["overrides"]) if row.get("overrides") else None


def is_current(row: dict, experiment) -> bool:
    """Whether a row was produced by the experiment's recipe as the registry states it now (with the
    row's own quick-run overrides): an edited recipe makes its earlier rows stale."""
    try:
        overrides = row_overrides(row)
    except ValueError:
        return False
    return row["config_hash"] == experiment.config_hash(overrides)


@dataclass
class Counted:
    """The rows that count in one directory, and an account of every row set aside, and why."""

    directory: Path
    runs: list[dict]  # the latest accepted row of each cell, registered, current recipe (any status)
    epochs: list[dict]  # epoch rows of those runs
    trace: list[dict]
    read: int = 0  # rows in runs.csv
    refused: list[tuple[int, str]] = field(default_factory=list)  # (line, why) of runs.csv rows that do not count
    superseded: int = 0
    stale: dict = field(default_factory=dict)  # experiment -> rows of an earlier recipe
    unregistered: dict = field(default_factory=dict)  # experiment -> rows
    orphan_epochs: int = 0  # epoch rows of no recorded run (an interrupted write)

    def unregistered_note(self) -> str:
        return unregistered_note(self.unregistered)

    def refusal_note(self) -> str:
        """What was refused, as a clause for a message; '' when nothing was."""
        if not self.refused:
            return ""
        line, why = self.refused[0]
        return (f"{len(self.refused)} of {self.read} row(s) in {self.directory / 'runs.csv'} refused (first, line {line}: {why}); "
                f"`harness check --results-dir {self.directory}` lists them")


def add_missing_cells(counted: Counted, other: Counted) -> int:
    """Count `other`'s rows for the cells `counted` lacks (with their epoch and trace rows), of the
    experiments it ran on the same device and engine, as where a directory re-made some of another's seeds
    and is judged with all of them (a recipe's shortened runs too, which reach its printed epochs); how
    many were added."""
    def arm(row: dict) -> tuple:
        return row["experiment"], row["device"], row["engine"]

    present = {cell_key(r) for r in counted.runs}
    ran = {arm(r) for r in counted.runs}
    added = [r for r in other.runs if arm(r) in ran and cell_key(r) not in present]
    ids = {r["run_id"] for r in added}
    counted.runs += added
    counted.epochs += [r for r in other.epochs if r["run_id"] in ids]
    counted.trace += [r for r in other.trace if r["run_id"] in ids]
    return len(added)


def unregistered_note(unregistered: dict) -> str:
    """Rows of experiments the registry does not hold (experiment -> rows), as a clause naming the fix; '' when
    there are none."""
    if not unregistered:
        return ""
    names = ", ".join(sorted(unregistered)[:5]) + (", ..." if len(unregistered) > 5 else "")
    return (f"{sum(unregistered.values())} row(s) of experiments not in this registry ({names}): "
            "`--experiments-dir DIR` names the registry of your own recipes")


def count(directory: Path | str, registry: dict, also: tuple[str, ...] = (), lock_held: bool = False) -> Counted:
    """The rows of `directory` that count; unreadable tables are errors (one line naming the file)."""
    tables = read(directory, lock_held)
    refuse_unreadable(tables)
    judged = judge(tables)
    good, refused = judged.accepted, judged.refused
    newest = latest(good, also)
    kept, stale, unregistered = [], {}, {}
    for row in newest:
        exp = registry.get(row["experiment"])
        if exp is None:
            unregistered[row["experiment"]] = unregistered.get(row["experiment"], 0) + 1
        elif not is_current(row, exp):
            stale[exp.id] = stale.get(exp.id, 0) + 1
        else:
            kept.append(row)
    ids = {r["run_id"] for r in kept}
    all_ids = {r["run_id"] for r in tables.runs.rows}
    return Counted(
        directory=tables.directory, runs=kept,
        epochs=[r for r in tables.epochs.rows if r["run_id"] in ids],
        trace=[r for r in tables.trace.rows if r["run_id"] in ids],
        read=len(tables.runs.records) + len(tables.runs.short), refused=refused,
        superseded=len(good) - len(newest), stale=stale, unregistered=unregistered,
        orphan_epochs=sum(r["run_id"] not in all_ids for r in tables.epochs.rows),
    )
