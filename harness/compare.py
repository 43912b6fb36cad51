"""`harness compare`: did these results reproduce those? Two results directories (A and B), or the
groups of one directory split by a column (engine, device, torch version, commit, host, CPU capability).

The rows compared are those the report counts: the latest row of each cell (split by the grouping
column too, so that rows of two commits or torch versions of one cell are both kept), of registered
experiments under their current recipe, ended ok. Cells are matched on experiment, configuration and
seed, and on device and engine where a side holds more than one of either (with --by: on every cell
column but the grouping one); the cells of one experiment (and configuration, device, engine) form an
*arm*. Four sections, in this order:

- environment: what differs between A and B (CPU or GPU, threads, kernels, torch, Python, commit,
  data, configuration): it explains the rest;
- bitwise: cells identical in every metric of runs.csv and epochs.csv, and where the others part;
- distribution: per arm and headline metric, A's seeds against B's: is the mean within the margin
  (TOST), and if not, does B differ from A? Where the sides share seeds (at least two), over those
  seeds, as pairs: the paired permutation test, as the report's ablations ask it. Otherwise as two
  samples: Mann-Whitney, as the report's datasets ask it. The 95% interval of B − A (paired t, else
  Welch) says how large the difference is. Verdict: identical (every shared seed's value bit for bit),
  equivalent (TOST p < 0.05), different (the test's p < 0.05 and not equivalent), or undecided, with
  the seeds per side that would decide at the observed spread (the t tests' counts);
- speed: samples/s and wall time per run, the ratio B/A of their geometric means with its 95% interval
  (Welch on the logarithms).

Only a *different* verdict is a failure (exit status 1).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from . import rows as counted_rows
from . import stats
from .errors import HarnessError
from .catalogue import (DASH, DEFAULT_METRIC, EPOCH_COLUMNS, MEASURES, SAMPLE, SPLITS, METRIC_NAMES as METRICS, RUN_COLUMNS, fmt,
                        fmt_diff, fmt_interval, fmt_p, fmt_speed, kind_of, metric_names, own_columns, with_own_columns)
from .results import csv_text, overrides_text

GROUPINGS = ("engine", "device", "torch_version", "git_commit", "host", "cpu_capability")
ENVIRONMENT_COLUMNS = ("device", "device_name", "threads", "cpu_capability", "kernel_settings", "engine", "torch_version",
                       "python_version", "git_commit", "host", "dataset_md5", "config_hash", "code_sha256")
SPEED_METRICS = ("train_samples_per_s", "wall_time_s")
ALPHA = 1 - stats.LEVEL

IDENTICAL, EQUIVALENT, DIFFERENT, UNDECIDED = "identical", "equivalent", "different", "undecided"
SEVERITY = (IDENTICAL, EQUIVALENT, UNDECIDED, DIFFERENT)  # an arm's verdict is its metrics' worst


# ---------------------------------------------------------------------------------------------------
# Margins


@dataclass(frozen=True)
class Margin:
    """How far two means may lie apart and still count as equivalent: absolute, or a share of A's mean, or
    of A's error rate (1 − mean: an accuracy's)."""

    value: float
    of: str = "absolute"  # "absolute", "mean" or "error"

    def around(self, mean_a: float) -> float:
        if self.of == "mean":
            return self.value * abs(mean_a)
        if self.of == "error":
            return self.value * (1 - mean_a)
        return self.value


def default_margin(metric: str) -> Margin:
    """The metric kind's margin, from the catalogue."""
    kind = kind_of(metric)
    return Margin(kind.margin, of=kind.margin_of)


def parse_margins(texts: list[str]) -> dict[str, Margin]:
    """`--margin metric=value` (absolute) or `metric=value%` (relative to A's mean), repeatable."""
    margins = {}
    for text in texts:
        m = re.fullmatch(r"(\w+)=([0-9.eE+-]+)(%?)", text.strip())
        try:
            value = float(m.group(2)) if m else math.nan
        except ValueError:
            value = math.nan
        if not m or m.group(1) not in metric_names() or not (math.isfinite(value) and value >= 0):
            raise HarnessError(f"--margin {text!r}: expected METRIC=VALUE or METRIC=VALUE% with METRIC a split ({', '.join(SPLITS)}) "
                               f"and a measure ({', '.join(MEASURES)}) joined by _ and VALUE a number >= 0 (e.g. test_acc=0.01, "
                               "test_loss=2%)")
        margins[m.group(1)] = Margin(value / 100, of="mean") if m.group(3) else Margin(value)
    return margins


def margin_for(exp, metric: str, overrides: dict[str, Margin]) -> Margin:
    """The command line's margin, else the registry's `[margins]` (absolute), else the default."""
    if metric in overrides:
        return overrides[metric]
    if exp is not None and metric in exp.margins:
        return Margin(exp.margins[metric])
    return default_margin(metric)


# ---------------------------------------------------------------------------------------------------
# Reading


@dataclass
class Side:
    """One side of a comparison: its label, counted runs (ok, numeric metrics) and their epoch rows."""

    label: str
    runs: pd.DataFrame
    epochs: pd.DataFrame
    refused: str = ""  # what the directory's reading refused, as a clause for messages


def _numeric(frame: pd.DataFrame, columns) -> pd.DataFrame:
    for column in columns:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def read_side(directory: Path | str, registry: dict, also: tuple[str, ...] = ()) -> Side:
    """The rows of `directory` that count and ended ok (latest of each cell, split by the columns `also` too)."""
    directory = counted_rows.require_results(directory)
    counted = counted_rows.count(directory, registry, also)
    kept = [r for r in counted.runs if r["status"] == "ok"]
    runs = pd.DataFrame(kept, columns=with_own_columns(RUN_COLUMNS, kept))
    runs = _numeric(runs, [*METRICS, *own_columns(runs.columns), *SPEED_METRICS, "seed"])
    epochs = pd.DataFrame(counted.epochs, columns=with_own_columns(EPOCH_COLUMNS, counted.epochs))
    epochs = _numeric(epochs, ["epoch", *METRICS, *own_columns(epochs.columns)])
    notes = "; ".join(n for n in (counted.refusal_note(), counted.unregistered_note()) if n)
    return Side(str(directory), runs, epochs[epochs["run_id"].isin(set(runs["run_id"]))], notes)


def split_side(runs: pd.DataFrame, epochs: pd.DataFrame, column: str, refused: str = "") -> list[Side]:
    """One side per value of `column`, in the order they were first run (the baseline first)."""
    runs = runs.astype({column: str})
    groups = sorted(runs.groupby(column), key=lambda item: (item[1]["started_at"].min(), item[0]))
    return [Side(f"{column}={value or '?'}", group, epochs[epochs["run_id"].isin(set(group["run_id"]))], refused)
            for value, group in groups]


# ---------------------------------------------------------------------------------------------------
# The comparison of two sides


@dataclass
class Arm:
    """The cells of one experiment (and configuration, device, engine) on each side."""

    label: str
    exp: object  # registry entry
    a: pd.DataFrame
    b: pd.DataFrame


def match_columns(a: Side, b: Side, by: str | None) -> list[str]:
    """The columns besides the seed that match cells: see the module's docstring."""
    if by:
        return [c for c in SAMPLE if c != by]
    return ["experiment", "config_hash"] + [c for c in ("device", "engine")
                                            if a.runs[c].nunique() > 1 or b.runs[c].nunique() > 1]


def arms(a: Side, b: Side, columns: list[str], registry: dict) -> list[Arm]:
    groups_a, groups_b = (dict(iter(side.runs.groupby(columns))) for side in (a, b))
    named = [c for c in ("device", "engine") if c in columns and pd.concat([a.runs[c], b.runs[c]]).nunique() > 1]
    found = []
    for key in sorted(set(groups_a) & set(groups_b)):
        values = dict(zip(columns, key))
        first = groups_a[key].iloc[0]
        extra = [values[c] for c in named]
        if first["overrides"]:
            extra.append(overrides_text(first["overrides"]))
        label = values["experiment"] + (f" [{', '.join(extra)}]" if extra else "")
        found.append(Arm(label, registry.get(values["experiment"]), groups_a[key], groups_b[key]))
    return found


def environment_rows(found: list[Arm]) -> list[dict]:
    """The environment columns whose values differ between the two sides' runs of the arms compared."""
    rows = []
    runs_a, runs_b = (pd.concat([getattr(arm, side) for arm in found]) for side in ("a", "b"))
    for column in ENVIRONMENT_COLUMNS:
        values_a, values_b = (sorted(set(runs[column].astype(str))) for runs in (runs_a, runs_b))
        if values_a != values_b:
            rows.append({"column": column, "A": ", ".join(v or "(none)" for v in values_a),
                         "B": ", ".join(v or "(none)" for v in values_b)})
    return rows


def bitwise_row(arm: Arm, a: Side, b: Side) -> dict:
    runs_a, runs_b = (r.drop_duplicates("seed").set_index("seed") for r in (arm.a, arm.b))
    seeds = sorted(set(runs_a.index) & set(runs_b.index))
    partings = []
    for seed in seeds:
        ra, rb = runs_a.loc[seed], runs_b.loc[seed]
        parting = counted_rows.first_parting(ra.to_dict(), rb.to_dict(), a.epochs[a.epochs["run_id"] == ra["run_id"]].to_dict("records"),
                                             b.epochs[b.epochs["run_id"] == rb["run_id"]].to_dict("records"))
        if parting:
            partings.append({"seed": int(seed), **parting})
    # The earliest epoch first, the weights (after the last epoch) after every epoch; then the lowest seed.
    earliest = min(partings, key=lambda p: (math.inf if p["epoch"] == "final" else p["epoch"], p["seed"]), default=None)
    return {"arm": arm.label, "cells": len(seeds), "identical": len(seeds) - len(partings), "first_parting": earliest}


@dataclass
class Comparison:
    """Two samples of one metric over seeds, and what they say."""

    metric: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    margin: float
    verdict: str
    test: str = ""  # PAIRED or UNPAIRED
    diff: float = math.nan  # mean B - mean A
    ci_low: float = math.nan  # its 95% interval
    ci_high: float = math.nan
    p_difference: float = math.nan  # the test of a difference: paired permutation, or Mann-Whitney
    p_floor: bool = False  # that p is the floor of the random sign flips: the exact one is smaller
    unshared: int = 0  # seeds of one side only, left out of a paired comparison
    p_tost: float = math.nan
    seeds_needed: int | None = None  # per side, for an undecided verdict
    note: str = ""


PAIRED, UNPAIRED = "paired permutation", "Mann-Whitney"


def compare_metric(metric: str, a: pd.Series, b: pd.Series, margin: Margin) -> Comparison:
    """`a` and `b`: the metric by seed. See the module's docstring for the questions answered.

    Where both sides hold a seed, its two runs start from the same weights, split and shuffling order,
    and part only where the kernels differ: over the seeds both hold (two at least) the runs are compared
    as pairs (the spread that matters is that of the differences, not the seeds'), and a side's other
    seeds are left out. Otherwise as two independent samples.
    """
    a, b = a.dropna(), b.dropna()
    shared = a.index.intersection(b.index)
    paired = len(shared) >= 2 or (len(shared) == 1 and a.index.equals(b.index))
    unshared = len(a) + len(b) - 2 * len(shared) if paired else 0
    if paired:
        a, b = a.loc[shared].sort_index(), b.loc[shared].sort_index()
    x, y = a.to_numpy(float), b.to_numpy(float)
    mean_a = float(np.mean(x)) if len(x) else math.nan
    base = dict(metric=metric, n_a=len(x), n_b=len(y), mean_a=mean_a, mean_b=float(np.mean(y)) if len(y) else math.nan,
                margin=margin.around(mean_a), unshared=unshared)
    base["diff"] = base["mean_b"] - mean_a
    if len(x) and paired and all(counted_rows.same(p, q) for p, q in zip(x, y)):
        return Comparison(**base, verdict=IDENTICAL)
    if len(x) < 2 or len(y) < 2:
        return Comparison(**base, verdict=UNDECIDED, note="fewer than 2 seeds on a side: no spread to judge by")
    sd = float(np.std(y - x, ddof=1)) if paired else stats.pooled_sd(x, y)
    if sd == 0:  # no spread: the difference is exact, no test needed
        verdict = EQUIVALENT if abs(base["diff"]) <= base["margin"] else DIFFERENT
        return Comparison(**base, verdict=verdict, ci_low=base["diff"], ci_high=base["diff"], note="no spread")
    base["test"] = PAIRED if paired else UNPAIRED
    floor = False
    if paired:
        tests = stats.paired(x, y)
        p_difference, floor = tests.permutation_p, tests.permutation_floor
    else:
        tests = stats.unpaired(x, y)
        p_difference = tests.mann_whitney_p
    p_tost = stats.equivalence_p(x, y, base["margin"], paired)
    if p_tost < ALPHA:
        verdict = EQUIVALENT
    elif p_difference < ALPHA:
        verdict = DIFFERENT
    else:
        verdict = UNDECIDED
    needed = stats.seeds_to_decide(base["diff"], sd, base["margin"], paired) if verdict == UNDECIDED else None
    return Comparison(**base, verdict=verdict, ci_low=tests.ci_low, ci_high=tests.ci_high, p_difference=p_difference,
                      p_floor=floor, p_tost=p_tost, seeds_needed=needed)


def headline_metrics(exp) -> list[str]:
    """The recipe's headline metric, then each final test metric its runs record (a classifier's accuracy and
    loss; a regression's declared metrics and loss)."""
    if exp is None:
        return [DEFAULT_METRIC, "test_loss"]
    return list(dict.fromkeys([exp.headline_metric, *(m for m in exp.metrics if m.startswith("test_"))]))


def distribution_rows(arm: Arm, margins: dict[str, Margin]) -> list[tuple[str, Comparison]]:
    a, b = (r.drop_duplicates("seed").set_index("seed").sort_index() for r in (arm.a, arm.b))
    found = []
    for metric in headline_metrics(arm.exp):
        if a[metric].notna().any() or b[metric].notna().any():
            found.append((arm.label, compare_metric(metric, a[metric], b[metric], margin_for(arm.exp, metric, margins))))
    return found


@dataclass
class Speed:
    metric: str
    n_a: int
    n_b: int
    median_a: float
    median_b: float
    ratio: float  # of geometric means, B / A
    ci_low: float = math.nan
    ci_high: float = math.nan


def compare_speed(metric: str, a: pd.Series, b: pd.Series) -> Speed | None:
    """Ratio B/A of the geometric means, 95% interval from Welch's t on the logarithms."""
    x, y = (s[s > 0].dropna().to_numpy(float) for s in (a, b))
    if not len(x) or not len(y):
        return None
    log_x, log_y = np.log(x), np.log(y)
    speed = Speed(metric, len(x), len(y), float(np.median(x)), float(np.median(y)), float(np.exp(log_y.mean() - log_x.mean())))
    if log_x.std() > 0 or log_y.std() > 0:
        low, high = stats.welch_interval(log_x, log_y)
        speed.ci_low, speed.ci_high = float(np.exp(low)), float(np.exp(high))
    return speed


@dataclass
class PairReport:
    """Everything compared between two sides."""

    a: Side
    b: Side
    environment: list[dict]
    bitwise: list[dict]
    distribution: list[tuple[str, Comparison]]
    speed: list[tuple[str, Speed]] = field(default_factory=list)

    def arm_verdicts(self) -> dict[str, str]:
        """Each arm's verdict: the worst of its metrics'."""
        verdicts: dict[str, str] = {}
        for label, c in self.distribution:
            verdicts[label] = max(verdicts.get(label, IDENTICAL), c.verdict, key=SEVERITY.index)
        return verdicts

    @property
    def any_different(self) -> bool:
        return any(c.verdict == DIFFERENT for _, c in self.distribution)

    def summary(self) -> str:
        cells = sum(r["cells"] for r in self.bitwise)
        identical = sum(r["identical"] for r in self.bitwise)
        by_arm = self.arm_verdicts()
        verdicts = list(by_arm.values())
        counts = ", ".join(f"{verdicts.count(v)} {v}" for v in SEVERITY)
        named = "; ".join(f"{v}: {', '.join(a for a, w in by_arm.items() if w == v)}" for v in reversed(SEVERITY[1:])
                          if v in verdicts)  # the experiments that are not identical, the worst first
        refused = "".join(f"; {note}" for note in dict.fromkeys(s.refused for s in (self.a, self.b) if s.refused))
        return (f"{self.b.label} against {self.a.label}: {identical} of {cells} cells bit for bit; "
                f"experiments {counts}" + (f" ({named})" if named else "") + refused)


def compare_sides(a: Side, b: Side, registry: dict, margins: dict[str, Margin], by: str | None = None) -> PairReport:
    found = arms(a, b, match_columns(a, b, by), registry)
    report = PairReport(a, b, environment_rows(found) if found else [], [bitwise_row(arm, a, b) for arm in found],
                        [row for arm in found for row in distribution_rows(arm, margins)])
    for arm in found:
        for metric in SPEED_METRICS:
            speed = compare_speed(metric, arm.a[metric], arm.b[metric])
            if speed:
                report.speed.append((arm.label, speed))
    return report


def compare_directories(dirs: list[str], registry: dict, margins: dict[str, Margin], by: str | None = None) -> list[PairReport]:
    """`harness compare A B`, or `harness compare DIR --by COLUMN` (each group against the one run first)."""
    if by is not None and by not in GROUPINGS:
        raise HarnessError(f"--by: unknown column {by!r}; use one of {', '.join(GROUPINGS)}")
    if by is None and len(dirs) != 2:
        raise HarnessError(f"compare takes two results directories (A B), or one with --by; got {len(dirs)}")
    if by is not None and len(dirs) != 1:
        raise HarnessError(f"compare --by {by} takes one results directory; got {len(dirs)}")
    if by is None:
        sides = [read_side(d, registry) for d in dirs]
    else:
        whole = read_side(dirs[0], registry, also=(by,))
        sides = split_side(whole.runs, whole.epochs, by, whole.refused)
        if len(sides) < 2:
            only = sides[0].label if sides else "no ok runs"
            raise HarnessError(f"{dirs[0]}: one {by} only ({only}): nothing to compare; run with another {by} first"
                               + _refused_clause([whole]))
    reports = [compare_sides(sides[0], other, registry, margins, by) for other in sides[1:]]
    if not any(r.bitwise for r in reports):
        raise HarnessError(f"no experiment (with the same configuration) has ok runs in both {sides[0].label} and "
                           f"{', '.join(s.label for s in sides[1:])}: nothing to compare" + _refused_clause(sides))
    return reports


def _refused_clause(sides: list[Side]) -> str:
    """What reading refused, for a message that would otherwise say only that nothing could be compared."""
    notes = list(dict.fromkeys(s.refused for s in sides if s.refused))
    return ("; " + "; ".join(notes)) if notes else "; no row was refused"


# ---------------------------------------------------------------------------------------------------
# Output


def _parting_text(p: dict | None) -> str:
    if p is None:
        return DASH
    if p["column"] == "(epoch rows)":
        return f"seed {p['seed']}, epoch {p['epoch']}: logged on one side only"
    if p["column"] == "weights_sha256":
        return f"seed {p['seed']}: every figure alike, the final weights not (weights_sha256 {p['a'][:12]}… vs {p['b'][:12]}…)"
    # Each value as runs.csv holds it (the shortest text that reads back the same float): values one ulp
    # apart can agree in any fixed number of digits.
    return (f"seed {p['seed']}, epoch {p['epoch']}, {p['column']}: {float(p['a'])!r} vs {float(p['b'])!r} "
            f"(Δ {p['b'] - p['a']:+.2g})")


def _difference_text(c: Comparison) -> str:
    """B − A with its 95% interval, where there is one."""
    interval = "" if math.isnan(c.ci_low) else " " + fmt_interval(c.metric, c.ci_low, c.ci_high, diff=True)
    return fmt_diff(c.metric, c.diff) + interval


def _verdict_text(c: Comparison) -> str:
    if c.verdict == UNDECIDED:
        if c.seeds_needed:
            return f"{UNDECIDED} (about {c.seeds_needed} seeds per side would decide)"
        return f"{UNDECIDED} ({c.note})" if c.note else UNDECIDED
    return c.verdict


def sections(report: PairReport) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, headers, rows) for each section, in order; rows as text."""
    env = [[r["column"], r["A"], r["B"]] for r in report.environment] or [["(none)", "", ""]]
    bitwise = [[r["arm"], f"{r['identical']} of {r['cells']}", _parting_text(r["first_parting"])] for r in report.bitwise]
    distribution = [
        [label, c.metric, f"{c.n_a}/{c.n_b}" + (f" (+{c.unshared} unshared)" if c.unshared else ""), fmt(c.metric, c.mean_a), fmt(c.metric, c.mean_b),
         _difference_text(c),
         c.test or DASH, fmt_p(c.p_difference, c.p_floor), "±" + fmt_diff(c.metric, c.margin, sign=False), fmt_p(c.p_tost),
         _verdict_text(c)]
        for label, c in report.distribution
    ]
    speed = [[label, s.metric, f"{s.n_a}/{s.n_b}", fmt_speed(s.metric, s.median_a), fmt_speed(s.metric, s.median_b),
              f"{s.ratio:.3g}" + ("" if math.isnan(s.ci_low) else f" [{s.ci_low:.3g}, {s.ci_high:.3g}]")]
             for label, s in report.speed]
    return [
        ("Environment: what differs", ["column", "A", "B"], env),
        ("Bitwise: cells identical in every metric, and where the others first part",
         ["experiment", "identical cells", "first parting"], bitwise),
        ("Distribution over seeds: does B differ (paired permutation test over shared seeds, else Mann-Whitney)? "
         "Is it within the margin (TOST)?",
         ["experiment", "metric", "seeds A/B", "mean A", "mean B", "B − A [95% CI]", "test", "p", "margin",
          "TOST p", "verdict"], distribution),
        ("Speed per run: B/A ratio of geometric means [95% CI]",
         ["experiment", "metric", "runs A/B", "median A", "median B", "B/A [95% CI]"], speed),
    ]


def render(reports: list[PairReport], *, markdown: bool, heading: str = "##") -> str:
    """The summaries first, then each comparison's sections: a terminal table or markdown."""
    tablefmt = "github" if markdown else "simple"
    lines = [("- " if markdown else "") + r.summary() for r in reports]
    for report in reports:
        lines += ["", f"{heading} A = {report.a.label}, B = {report.b.label}" if markdown else
                  f"=== A = {report.a.label}   B = {report.b.label}"]
        for title, headers, rows in sections(report):
            lines += ["", f"{heading}# {title}" if markdown else f"--- {title}", ""]
            lines.append(tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True) if rows else "(nothing)")
    return "\n".join(lines)


def write_csv(reports: list[PairReport], path: Path | str) -> None:
    """One row per distribution, bitwise and speed result, with the sides they compare."""
    records = []
    for r in reports:
        sides = {"a": r.a.label, "b": r.b.label}
        for row in r.environment:
            records.append({"section": "environment", **sides, "metric": row["column"], "value_a": row["A"], "value_b": row["B"]})
        for row in r.bitwise:
            p = row["first_parting"] or {}
            records.append({"section": "bitwise", **sides, "experiment": row["arm"], "n_a": row["cells"], "n_b": row["cells"],
                            "identical": row["identical"], "seed": p.get("seed"), "epoch": p.get("epoch"),
                            "metric": p.get("column"), "value_a": p.get("a"), "value_b": p.get("b")})
        for label, c in r.distribution:
            records.append({"section": "distribution", **sides, "experiment": label, "metric": c.metric, "n_a": c.n_a,
                            "n_b": c.n_b, "value_a": c.mean_a, "value_b": c.mean_b, "difference": c.diff,
                            "ci_low": c.ci_low, "ci_high": c.ci_high, "test": c.test, "p_difference": c.p_difference, "p_floor": c.p_floor,
                            "unshared": c.unshared,
                            "margin": c.margin, "p_tost": c.p_tost,
                            "verdict": c.verdict, "seeds_needed": c.seeds_needed})
        for label, s in r.speed:
            records.append({"section": "speed", **sides, "experiment": label, "metric": s.metric, "n_a": s.n_a, "n_b": s.n_b,
                            "value_a": s.median_a, "value_b": s.median_b, "ratio": s.ratio, "ci_low": s.ci_low,
                            "ci_high": s.ci_high})
    columns = list(dict.fromkeys(k for record in records for k in record))
    text = csv_text(columns, [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in rec.items()} for rec in records])
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as e:
        raise HarnessError(f"--csv {path}: cannot write ({e.strerror}); pass a writable path") from None


# ---------------------------------------------------------------------------------------------------
# The report's section


ACROSS_COLUMNS = ("device", "engine", "torch_version")


def across_environments_section(runs: pd.DataFrame, registry: dict, epochs: pd.DataFrame) -> str:
    """The report's "Across environments" section: for each of device, engine and torch version that
    takes more than one value within an experiment, its groups compared as `harness compare --by` does.
    `runs` and `epochs` are the report's counted rows; empty when no experiment is run more than one way
    on cells that the groups share (the same seeds, and the other columns alike)."""
    runs = runs[runs["status"] == "ok"]
    parts = []
    for column in ACROSS_COLUMNS:
        mixed = runs.groupby("experiment")[column].nunique()
        chosen = runs[runs["experiment"].isin(mixed[mixed > 1].index)]
        sides = split_side(chosen, epochs, column)
        reports = [r for r in (compare_sides(sides[0], other, registry, {}, by=column) for other in sides[1:]) if r.bitwise]
        if reports:
            parts += [f"### By {column}", "", render(reports, markdown=True, heading="####"), ""]
    if not parts:
        return ""
    intro = ("Experiments run more than one way in this directory, compared as `harness compare DIR --by COLUMN` "
             "does: cells bit for bit, the headline metrics' distributions over seeds (paired permutation test "
             "over shared seeds, else Mann-Whitney; TOST against each metric's margin) and speed.")
    return "\n".join(["## Across environments", "", intro, "", *parts])
