"""`harness check`: do the recorded results meet the thresholds the registry declares?

A threshold is the worst mean over seeds a metric may have, for faithful runs that finished (the latest
row of each cell counts): a minimum for a metric where higher is better (an accuracy), a maximum where
lower is (a loss), as the catalogue says of its kind. An experiment with thresholds but no faithful rows fails: a check
that cannot see its results does not pass. Dataset variants (`<id>@fashion-mnist`) run on request
only, so theirs are checked where they have results.

`integrity_failures` (below) says whether the files themselves can be believed; `harness check` runs both.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from pathlib import Path

from . import rows as counted_rows
from . import safe_files
from .catalogue import cell_key, kind_of
from .errors import HarnessError
from .registry import variants
from .rows import FINISHED_STATUSES, is_current


def threshold_failures(registry: dict, results_dir: Path | str, only: set[str] | None = None) -> list[str]:
    """Each experiment's thresholds (of those in `only`, where given) against its faithful rows that count."""
    registry = {**registry, **variants(registry)}
    # Refused rows are integrity_failures' to report; here they are left out.
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in counted_rows.count(results_dir, registry).runs:
        if row["faithful"] == "true":
            groups[(row["experiment"], row["device"], row["engine"])].append(row)
    failures = []
    for exp in registry.values():
        if not exp.thresholds or (only is not None and exp.id not in only):
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
            for metric, worst in exp.thresholds.items():
                values = [float(r[metric]) for r in group if r[metric] != ""]
                mean = sum(values) / len(values) if values else math.nan
                higher = kind_of(metric).higher_is_better
                if not values or not (mean >= worst if higher else mean <= worst):
                    side = "below" if higher else "above"
                    failures.append(
                        f"{exp_id} [{device}, {engine}]: mean {metric} {mean:.4f} over {len(values)} seed(s) is {side} the threshold {worst}"
                    )
    return failures


# ---------------------------------------------------------------------------------------------------
# Integrity: are the results files still what the harness wrote? Thresholds say whether results are
# good; this says whether they can be believed: hand edits, damage, and rows recorded under a recipe
# that has changed since.

def _stale(row: dict, registry: dict) -> str | None:
    exp = registry.get(row["experiment"])
    if exp is None:
        return f"experiment {row['experiment']!r} is not in the registry"
    if not is_current(row, exp):
        current = exp.config_hash(json.loads(row["overrides"] or "{}"))
        return f"config_hash {row['config_hash']} is not the registry's {current} (the recipe changed, or the row was edited)"
    return None


def integrity_failures(registry: dict, results_dir: Path | str, only: set[str] | None = None) -> list[str]:
    """One line per damaged, inconsistent or stale thing in the results files; [] when all is sound. A
    runs.csv row named here is one no command counts (`rows.judge`, the one rule). With `only`, stale rows
    are those of these experiments (damage is damage whoever's rows it touches). A directory holding rows of
    other registries only is one line (HarnessError), not a failure per row."""
    registry = {**registry, **variants(registry)}
    results_dir = counted_rows.require_results(results_dir)  # "intact" is said of results only
    tables = counted_rows.read(results_dir)
    failures = [table.problem for table in (tables.runs, tables.epochs, tables.trace) if table.problem]
    if tables.runs.problem:
        return failures
    judged = counted_rows.judge(tables)
    _refuse_a_stranger(registry, results_dir, tables, judged)
    runs_path = results_dir / "runs.csv"
    failures += [f"{runs_path} line {line}: {why}" for line, why in judged.refused]
    failures += judged.damage

    # Stale rows: recorded under a recipe the registry no longer has. A stale row whose cell has since
    # been run again under the current recipe is history, not a problem.
    lines = {id(row): line for line, row in tables.runs.records}
    current_cells = {cell_key(r) for r in judged.accepted if r["status"] in FINISHED_STATUSES and not _stale(r, registry)}
    for row in judged.accepted:
        stale = _stale(row, registry)
        exp = registry.get(row["experiment"])
        now = exp and cell_key({**row, "config_hash": exp.config_hash(counted_rows.row_overrides(row))})  # its cell today
        if stale and now not in current_cells and (only is None or row["experiment"] in only):
            fix = (f"run `harness run {row['experiment']}` again for this seed, device and engine" if exp else
                   "name the folder of its recipe with --experiments-dir DIR, or move its rows out of this directory")
            failures.append(f"{runs_path} line {lines[id(row)]}: run {row['run_id']} is stale: {stale}; {fix}")
    return failures + weights_failures(results_dir, tables, judged.accepted)


def _refuse_a_stranger(registry: dict, results_dir: Path, tables: counted_rows.Tables, judged: counted_rows.Judged) -> None:
    """A results directory holding rows of other recipes only (a registry of your own, its folder not named) is a
    mistake in the command, not a line per row and per recipe of this registry: one line naming the fix. Where
    tables are unreadable or rows refused, their FAIL lines say more."""
    if any(t.problem for t in (tables.epochs, tables.trace)) or judged.refused:
        return
    newest = counted_rows.latest(judged.accepted)  # a row per cell, as the commands count them
    strangers: dict[str, int] = {}
    for row in newest:
        if row["experiment"] not in registry:
            strangers[row["experiment"]] = strangers.get(row["experiment"], 0) + 1
    if strangers and sum(strangers.values()) == len(newest):
        raise HarnessError(f"{results_dir}: no rows of this registry's experiments to check, only "
                           f"{counted_rows.unregistered_note(strangers)}")


def weights_failures(results_dir: Path, tables: counted_rows.Tables, runs: list[dict]) -> list[str]:
    """Each file in weights/ against the run it is named after: its weights must have the digest that run's
    row records (a file swapped for another run's does not), and a file of no recorded run is left over."""
    folder = results_dir / "weights"
    if os.path.islink(folder):
        return [str(safe_files.link_refused(folder))]
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".pt"))
    except (FileNotFoundError, NotADirectoryError):
        return []
    if not names:
        return []
    import torch

    from .training import state_sha256

    digests = {row["run_id"]: row["weights_sha256"] for row in runs}
    recorded = {row["run_id"] for row in tables.runs.rows}
    failures = []
    for name in names:
        run_id, path = name[: -len(".pt")], folder / name
        if run_id not in recorded:
            failures.append(f"{path}: weights of run {run_id}, which has no row in runs.csv; delete the file")
            continue
        if run_id not in digests:
            continue  # its row is refused above
        try:
            fd = safe_files.open_regular(path)
            with os.fdopen(fd, "rb") as f:
                digest = state_sha256(torch.load(f, weights_only=True))
        except HarnessError as e:
            failures.append(str(e))
            continue
        except Exception as e:  # not a state_dict torch can load
            failures.append(f"{path}: not weights torch.load can read ({type(e).__name__}); delete the file")
            continue
        if digest != digests[run_id]:
            failures.append(f"{path}: its weights have SHA-256 {digest[:12]}, but run {run_id} recorded "
                            f"{digests[run_id][:12] or 'none'} (a file swapped or edited); delete it or restore the run's own")
    return failures
