"""The report's tables: the answer, what was read, each printed run judged by its one test (verdicts.py),
the seeds at the end of each recipe, and speed."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..catalogue import DASH, SAMPLE, fmt, fmt_diff, fmt_interval, fmt_p, fmt_speed
from ..stats import RANK_MIN_VALUES, summarize
from .formatting import mean_std, short_source, table
from .loading import Results
from .verdicts import CONSISTENT, INCONSISTENT, UNDECIDED, Described, RunVerdict, described_figures

# The columns that name a table's row: a sample of runs (`catalogue.SAMPLE`), its recipe shown as its setting
# (the overrides of a quick run, or "faithful") rather than its hash, since every counted row is current.
CELL = [c for c in SAMPLE if c != "config_hash"]


def _cells(runs: pd.DataFrame, faithful: bool):
    """(experiment, device, engine, setting) and its runs, in order."""
    chosen = runs[runs["faithful"] == faithful]
    return chosen.groupby([*CELL, "setting"], sort=True)


def _seed_count(group: pd.DataFrame, n: int) -> str:
    failed = int((group["status"] != "ok").sum())
    return f"{n}" + (f" (+{failed} failed)" if failed else "")


# ---------------------------------------------------------------------------------------------------
# What was read


def accounting(results: Results, registry: dict) -> list[str]:
    r = results
    lines = [f"- {r.read} row(s) in runs.csv; {len(r.runs) + r.varied} count (the latest of each cell, current recipe)."]
    if r.added_from is not None:
        lines.append(f"- {r.added} of those counted are `{r.added_from}`'s: the cells not run here of the experiments run "
                     "here on the same device and engine (`--add-seeds-from`); every verdict and table judges them alongside "
                     "the runs made here.")
    if r.varied:
        lines.append(f"- {r.varied} of them vary one source of randomness at a time (`harness variance`): they appear "
                     "only in \"Where the spread comes from\", not in the tables of what the recipes reach.")
    if r.superseded:
        lines.append(f"- {r.superseded} row(s) superseded by a later run of the same cell (`--force`) were ignored.")
    if r.stale:
        detail = ", ".join(f"{k} ({v})" for k, v in sorted(r.stale.items()))
        lines.append(f"- {sum(r.stale.values())} stale row(s) from an earlier recipe (config_hash differs) were ignored: {detail}.")
    if r.unregistered:
        detail = ", ".join(f"{k} ({v})" for k, v in sorted(r.unregistered.items()))
        lines.append(f"- {sum(r.unregistered.values())} row(s) of experiments not in the registry were ignored: {detail} "
                     "(`--experiments-dir DIR` names the registry of your own recipes).")
    if r.malformed:
        lines.append(f"- {r.refused}; they were ignored.")
    if r.orphan_epochs:
        lines.append(f"- {r.orphan_epochs} epoch row(s) belong to no recorded run (an interrupted write) and were ignored.")
    failed = r.runs[r.runs["status"] != "ok"]
    for row in failed.itertuples():
        lines.append(f"- {row.experiment} seed {row.seed} [{row.device}, {row.engine}] ended {row.status}: {row.message or 'no message'}; "
                     "left out of every statistic.")
    # Dataset variants run on request only: their absence is not worth a line.
    missing = [e for e, exp in registry.items() if not exp.variant_of and not (r.runs["experiment"] == e).any()]
    if missing:
        lines.append(f"- No current runs of: {', '.join(missing)}.")
    return lines + [""]


# ---------------------------------------------------------------------------------------------------
# The printed runs, each judged by its one declared test (verdicts.py)


def _source(registry: dict, v) -> str:
    return short_source(registry[v.exp_id].source)


def _printed(v: RunVerdict) -> str:
    """What the test read: the figure, or the curve and its epochs."""
    if v.test == "figure":
        return f"{v.metric} @{v.epochs[0]} = {fmt(v.metric, v.published)}"
    epochs = ", ".join(map(str, v.epochs)) if len(v.epochs) <= 5 else f"{v.epochs[0]}-{v.epochs[-1]}"
    return f"{v.metric} curve, epochs {epochs}"


def _where(v: RunVerdict) -> str:
    """Where the printed run lies among the seeds, in words."""
    r = v.rank
    if v.test == "curve":
        lead = f"scores {v.score:+.2f} (mean z over its epochs)"
        extra = f"; above every seed at {v.above_all} of {len(v.epochs)} epochs" if v.above_all else ""
        extra += f"; below every seed at {v.below_all} of {len(v.epochs)} epochs" if v.below_all else ""
    else:
        lead, extra = "lies", ""
    if r.above == 0 and r.tied == 0:
        side = f"above all {r.n} seeds"
    elif r.below == 0 and r.tied == 0:
        side = f"below all {r.n} seeds"
    else:
        side = f"{r.below} seeds below, {r.tied} equal, {r.above} above"
    return f"{lead}: {side}{' in score' if v.test == 'curve' else ''}{extra}"


def _reach(v: RunVerdict) -> str:
    """The least departure the test would have caught 4 times in 5, each side: in the metric's units and the
    seeds' sds (a figure), or in sds at every epoch (a curve)."""
    if v.verdict == UNDECIDED:
        return f"none: {v.n} seeds cannot reject (needs {RANK_MIN_VALUES}); {v.needs} catch 3 sd"
    parts = []
    for name, d in (("below", v.below), ("above", v.above)):
        if math.isinf(d):
            parts.append(f"{name}: none")
        elif v.test == "curve":
            parts.append(f"{name}: {d:.1f} sd")
        else:
            parts.append(f"{name}: {fmt_diff(v.metric, d, sign=False)}" + (f" ({d / v.sd:.1f} sd)" if v.sd > 0 else ""))
    return "; ".join(parts)


def _verdict_text(v: RunVerdict) -> str:
    if v.verdict == UNDECIDED:
        return f"{UNDECIDED}: needs {v.needs} seeds"
    return v.verdict or ("no seed reached the printed epochs" if v.n == 0 else "one seed: no spread to judge by")


VERDICT_RULES = (
    "Each tutorial printed **one unseeded run**, judged by the one test its recipe declares (`[published] "
    "primary`): its printed curve as a whole where it printed one, else the figure it states as its result. "
    "*Rank p*: the printed figure's rank among the seeds (a curve: its score's, the mean over its epochs of its "
    "z against the seeds, among the seeds' own scores), as an exact two-sided p-value, 2·(1 + seeds at least as "
    "far out on its side)/(n + 1), valid on discrete and skewed metrics alike; the seeds are read at the "
    "precision the tutorial printed to (`[published] decimals`) and a tie counts against rejection. "
    f"*Inconsistent* where it is at most 0.05; *undecided* below {RANK_MIN_VALUES} seeds, where it cannot be; "
    "else *consistent*. *Would catch*: the least departure, below and above, that the test rejects 4 times in 5 "
    "at these seeds, from the seeds' own spread and shape (a run is one more seed moved by that much). Every seed "
    "that reached the printed epochs counts: a run stopped at the last printed epoch is, on those epochs, bit "
    "for bit the full-length run."
)
VERDICT_HEADERS = ["run", *CELL, "test: what was printed", "seeds", "where it lies", "rank p", "verdict", "would catch (80%)"]
DESCRIBED_HEADERS = [*CELL, "printed figure, described", "printed", "seeds", "mean ± std", "below / equal / above"]


def _verdict_row(v: RunVerdict, registry: dict) -> list:
    failed = f" (+{v.failed} failed)" if v.failed else ""
    return [_source(registry, v), v.exp_id, v.device, v.engine, _printed(v), f"{v.n}{failed}", _where(v),
            fmt_p(v.rank.p), _verdict_text(v), _reach(v)]


def _described_row(d: Described) -> list:
    s = summarize(d.seeds)
    below, equal, above = d.shares
    shares = DASH if not s.n else " / ".join(f"{100 * k / s.n:.0f}%" for k in (below, equal, above))
    return [d.exp_id, d.device, d.engine, f"{d.metric} @{d.epoch}", fmt(d.metric, d.published), str(s.n),
            mean_std(d.metric, s), shares]


def verdict_sentence(v: RunVerdict) -> str:
    """One printed run's verdict in one line, as `harness settle` prints it."""
    if not v.verdict:
        return f"{v.cell}: {_verdict_text(v)}"
    return f"{v.cell} {_printed(v)}: {_verdict_text(v)}; {v.n} seeds; it {_where(v)}; rank p {fmt_p(v.rank.p)}; would catch {_reach(v)}"


def answer(verdicts: list[RunVerdict], registry: dict) -> list[str]:
    """The report's first lines: how many printed runs are inconsistent, consistent or undecided, each named,
    with what each test could have caught, and the one sentence on multiplicity."""
    judged = [v for v in verdicts if v.verdict]
    if not judged:
        return []
    groups = {name: [v for v in judged if v.verdict == name] for name in (INCONSISTENT, CONSISTENT, UNDECIDED)}
    counts = ", ".join(f"{len(found)} {name}" for name, found in groups.items())
    curves = sum(v.test == "curve" for v in judged)
    lines = [f"**{len(judged)} printed runs, each judged by the one test its recipe declares ({curves} whole curves, "
             f"{len(judged) - curves} figures): {counts}.**", ""]
    for v in groups[INCONSISTENT]:
        lines += [f"- *Inconsistent*: {_source(registry, v)}, {v.cell} {_printed(v)}: it {_where(v)}; rank p {fmt_p(v.rank.p)}.", ""]
    if groups[CONSISTENT]:
        named = "; ".join(f"{_source(registry, v)} ({v.exp_id}, {v.n} seeds, rank p {fmt_p(v.rank.p)}; would catch {_reach(v)})"
                          for v in groups[CONSISTENT])
        lines += [f"- *Consistent*: {named}.", ""]
    for v in groups[UNDECIDED]:
        lines += [f"- *Undecided*: {_source(registry, v)}, {v.cell}: {v.n} seeds cannot reject at 5% (the rank test needs "
                  f"{RANK_MIN_VALUES}); {v.needs} seeds would catch a run 3 sd out 4 times in 5 (`harness settle {v.exp_id}`).", ""]
    lines += ["- Each printed run is its own question, asked once of its declared test at 5%, with no correction across "
              "runs: a correction would only make each run harder to reject on its own seeds (docs/reports.md).", ""]
    return lines


def published_section(results: Results, registry: dict, verdicts: list[RunVerdict]) -> list[str]:
    lines = ["## The printed runs, each judged by its one test", ""]
    if not verdicts:
        return lines + ["No runs yet of an experiment with a printed result: nothing to set against what was printed.", ""]
    lines += [VERDICT_RULES, "", table([_verdict_row(v, registry) for v in verdicts], VERDICT_HEADERS), ""]
    described = described_figures(results, registry)
    if described:
        lines += ["### The other printed figures, described", "",
                  "What else the tutorials printed, set beside the seeds at the same epoch and precision: a "
                  "description, not a verdict (each run's one test is above).", "",
                  table([_described_row(d) for d in described], DESCRIBED_HEADERS), ""]
    runs = results.runs
    sources = sorted({e for e in runs["experiment"] if registry[e].published})
    return lines + ["As printed:", ""] + [f"- {e}: {registry[e].source}: {registry[e].published_text}" for e in sources] + [""]


# ---------------------------------------------------------------------------------------------------
# The seeds at the end of each recipe, and quick runs

SUMMARY_HEADERS = [*CELL, "seeds", "metric", "mean ± std", "95% CI of the mean (t)", "min", "max"]


def summary_rows(runs: pd.DataFrame, registry: dict, faithful: bool) -> list[list]:
    """One row per experiment x device x engine (x quick-run setting) x metric: the headline metric at the end
    of the run (and the other metrics its recipe declares), described (where the seeds' mean lies); no verdict."""
    rows = []
    for (exp_id, device, engine, setting), group in _cells(runs, faithful):
        exp = registry[exp_id]
        ok = group[group["status"] == "ok"]
        for metric in dict.fromkeys([exp.headline_metric, *exp.declared_test_metrics]):
            s = summarize(ok[metric].dropna())
            row = [exp_id, device, engine] + ([] if faithful else [setting])
            row += [_seed_count(group, s.n), metric, mean_std(metric, s), fmt_interval(metric, s.ci_low, s.ci_high),
                    fmt(metric, s.min), fmt(metric, s.max)]
            rows.append(row)
    return rows


def seeds_sections(runs: pd.DataFrame, registry: dict) -> list[str]:
    lines = []
    faithful = summary_rows(runs, registry, faithful=True)
    if faithful:
        lines += ["## The seeds at the end of each recipe", "",
                  "Where the seeds' mean lies, for every faithful experiment (printed result or not): the headline "
                  "metric (and the other metrics its recipe declares) after the recipe's last epoch, mean ± standard deviation, the 95% confidence interval of "
                  "the mean by Student t, min and max. A description, not a verdict.", "",
                  table(faithful, SUMMARY_HEADERS), ""]
    quick = summary_rows(runs, registry, faithful=False)
    if quick:
        lines += ["## Quick runs (not faithful)", "",
                  "Runs with the recipe overridden (`--epochs`, `--train-limit`): not comparable with the published values.", "",
                  table(quick, SUMMARY_HEADERS[:3] + ["overrides"] + SUMMARY_HEADERS[3:]), ""]
    return lines


# ---------------------------------------------------------------------------------------------------
# Speed


def speed_rows(runs: pd.DataFrame) -> list[list]:
    """Per cell: runs, how many overlapped another run in time, and the median wall time and throughput
    with their quartiles (one run slowed by a neighbour moves a mean, not a median)."""
    shared = _overlapping(runs)
    rows = []
    for (exp_id, device, engine, setting), group in runs.groupby([*CELL, "setting"], sort=True):
        rows.append([exp_id, device, engine, setting, len(group), f"{int(shared[group.index].sum())}",
                     _median_quartiles(group, "wall_time_s"), _median_quartiles(group, "train_samples_per_s")])
    return rows


def _median_quartiles(runs: pd.DataFrame, column: str) -> str:
    x = runs[column].dropna()
    if x.empty:
        return DASH
    q1, median, q3 = x.quantile([0.25, 0.5, 0.75])
    return fmt_speed(column, median) + ("" if len(x) == 1 else f" [{fmt_speed(column, q1)}, {fmt_speed(column, q3)}]")


def _overlapping(runs: pd.DataFrame) -> pd.Series:
    """Whether each run's time span (started_at + wall_time_s) surely overlaps another run's on the same host.
    `started_at` is written to the second, so a run began up to a second after it says: two spans overlap
    for sure only where each began, at the latest, before the other ended at the earliest (runs of a
    fraction of a second one after another, stamped with the same second, do not)."""
    start = pd.to_datetime(runs["started_at"], utc=True, errors="coerce", format="ISO8601")
    end = start + pd.to_timedelta(runs["wall_time_s"], unit="s")
    latest_start = start + pd.Timedelta(seconds=1)
    shared = pd.Series(False, index=runs.index)
    for _, idx in runs.groupby("host").groups.items():
        s, e = latest_start[idx].to_numpy(), end[idx].to_numpy()
        overlap = (s[:, None] < e[None, :]) & (s[None, :] < e[:, None])
        np.fill_diagonal(overlap, False)
        shared[idx] = overlap.any(axis=1)
    return shared
