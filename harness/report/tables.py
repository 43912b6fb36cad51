"""The report's tables: the answer, what was read, the published figures and curves judged as one draw
each, the seeds at the end of each recipe, and speed."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..named_datasets import split_sizes
from ..stats import (CONSISTENT, LEVEL, RANK_MIN_VALUES, CurveDraw, SingleDraw, bootstrap_mean_interval, detectable_shift,
                     single_draw, stalls, summarize, whole_curve)
from ..stats import holm as stats_holm
from ..catalogue import DASH, SAMPLE, fmt, fmt_diff, fmt_interval, fmt_p, fmt_speed, is_accuracy, metric_range
from .formatting import mean_std, short_source, table
from .loading import Results, at_epoch

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
        lines.append(f"- {sum(r.unregistered.values())} row(s) of experiments no longer in the registry were ignored: {detail}.")
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
# Published figures and curves, each judged as one draw from the seeds


@dataclass
class Verdict:
    """One published figure or curve of one printed run, set against one device x engine's seeds."""

    exp_id: str
    device: str
    engine: str
    what: str  # "train_acc @2000 (112 samples: ...)", "valid_acc curve"
    metric: str
    draw: SingleDraw | CurveDraw
    failed: int  # the cell's runs that did not end ok, counted beside the seeds
    holm_p: float = math.nan  # the rank p-value adjusted over every verdict of the report (one family)

    @property
    def cell(self) -> str:
        return f"{self.exp_id} [{self.device}, {self.engine}]"

    @property
    def figure(self) -> str:
        """What is judged, without the split's size: "train_acc @2000"."""
        return self.what.split(" (")[0]

    @property
    def verdict_text(self) -> str:
        n = self.draw.rank.n if isinstance(self.draw, SingleDraw) else self.draw.n
        return self.draw.verdict or ("no runs ok" if n == 0 else "one seed: no spread to judge by")

    def seeds(self, n: int) -> str:
        return f"{n}" + (f" (+{self.failed} failed)" if self.failed else "")


PUBLISHED_RULES = (
    "Each tutorial printed **one unseeded run**: a figure is judged as one draw from the distribution over "
    "seeds at the epoch it was printed for, and a printed curve as one draw of a whole curve. *Rank p*: the "
    "figure's rank among the seeds as an exact two-sided p-value, 2·(1 + seeds at least as far out on its "
    "side)/(n + 1), valid on discrete and skewed metrics alike; *above* or *below* where it is at most 0.05, "
    "else *consistent*. *Holm*: the rank p adjusted over every verdict in these two tables, one family. "
    "*Below / equal / above*: the share of seeds on each side of the figure. *Range holding one run*: the "
    "seeds' order statistics that contain one new run with the stated probability. *t interval*: the Student "
    "t 95% prediction interval for one run, clipped to the metric's range, shown only where Shapiro-Wilk does "
    "not reject the seeds' normality. *Detects*: the smallest shift of the printed run, in the seeds' standard "
    "deviations (and the metric's units), that the rank test and the t interval would catch with 80% power at "
    f"the seeds present, if the seeds are normal; the rank test cannot reject at all below {RANK_MIN_VALUES} seeds "
    "(2/(n + 1) > 0.05). Accuracies on a finite split move in steps of one sample (the split's size is given)."
)
CURVE_RULES = (
    "A printed curve's epochs are correlated (one run), so it gets one statistic: the mean over its epochs of "
    "its z against the seeds at each epoch; each seed's curve is scored the same way against the others (the "
    "printed one included), and the printed curve's score is ranked among the seeds' (`harness.stats.whole_curve`). "
    "The single figures above are then a description of where the curve lies."
)
FIGURE_HEADERS = [*CELL, "figure", "published (source)", "seeds", "mean ± std", "below / equal / above", "rank p",
                  "Holm", "verdict", "detects (80%): rank · t", "range holding one run", "t interval"]
CURVE_HEADERS = [*CELL, "curve", "epochs", "seeds", "score (mean z)", "seeds' scores", "epochs above / below every seed",
                 "rank p", "Holm", "verdict", "detects (80%)"]


def _figure_label(exp, metric: str, epoch: int) -> str:
    label = f"{metric} @{epoch}"
    if is_accuracy(metric):
        n = split_sizes(exp.data).get(metric.removesuffix("_acc"))
        if n:
            label += f" ({n:,} samples: steps of {100 / n:.2g} pp)"
    return label


def _shift(shift: float, sd: float, metric: str) -> str:
    if math.isinf(shift):
        return "none"
    units = f" = {fmt_diff(metric, shift * sd).lstrip('+')}" if sd > 0 else ""
    return f"{shift:.1f} sd{units}"


def _detects(draw: SingleDraw, metric: str) -> str:
    if draw.seeds.n < 2:
        return DASH
    sd = draw.seeds.std
    rank = _shift(draw.shift_rank, sd, metric) if draw.seeds.n >= RANK_MIN_VALUES else f"none below {RANK_MIN_VALUES} seeds"
    t = _shift(draw.shift_t, sd, metric) if not math.isnan(draw.pi_low) else "not normal" if draw.shapiro_p < 0.05 else DASH
    return f"{rank} · {t}"


def _shares(r) -> str:
    return DASH if not r.n else " / ".join(f"{100 * k / r.n:.0f}%" for k in (r.below, r.tied, r.above))


def _curve_values(ok: pd.DataFrame, epochs: pd.DataFrame, exp, curve_epochs: list[int]) -> np.ndarray:
    """The seeds' curves, seeds x epochs, from the seeds that logged every epoch."""
    metric = exp.published["curve_metric"]
    by_epoch = pd.DataFrame({e: at_epoch(ok, epochs, metric, e) for e in curve_epochs})
    return by_epoch.dropna().to_numpy(dtype=float)


def published_verdicts(results: Results, registry: dict) -> list[Verdict]:
    """Every published figure and curve x device x engine against its seeds, Holm-adjusted as one family;
    a figure with fewer than two ok seeds has a Verdict with no verdict (`draw.verdict == ""`)."""
    verdicts = []
    for (exp_id, device, engine, _), group in _cells(results.runs, faithful=True):
        exp = registry[exp_id]
        ok = group[group["status"] == "ok"]
        cell = dict(exp_id=exp_id, device=device, engine=engine, failed=len(group) - len(ok))
        for figure in exp.published_figures:
            metric, epoch = figure["metric"], figure["epoch"]
            values = at_epoch(ok, results.epochs, metric, epoch)
            draw = single_draw(values, figure["value"], metric_range(metric))
            verdicts.append(Verdict(**cell, what=_figure_label(exp, metric, epoch), metric=metric, draw=draw))
        curve_epochs = (exp.published or {}).get("curve_epochs") or []
        if len(curve_epochs) > 1:
            metric = exp.published["curve_metric"]
            draw = whole_curve(_curve_values(ok, results.epochs, exp, curve_epochs), exp.published["curve_values"])
            verdicts.append(Verdict(**cell, what=f"{metric} curve", metric=metric, draw=draw))
    holm(verdicts)
    return verdicts


def holm(verdicts: list[Verdict]) -> None:
    """Holm's adjustment of the rank p-values of every verdict reached, one family, in place."""
    judged = [v for v in verdicts if v.draw.verdict]
    for v, p in zip(judged, stats_holm([v.draw.rank.p for v in judged])):
        v.holm_p = p


def _figure_row(v: Verdict, registry: dict) -> list:
    d, metric, exp = v.draw, v.metric, registry[v.exp_id]
    s = d.seeds
    coverage = f" ({100 * d.coverage:.0f}%)" if s.n >= 2 else ""
    return [v.exp_id, v.device, v.engine, v.what,
            f"{fmt(metric, d.published)} ({short_source(exp.source)})", v.seeds(s.n), mean_std(metric, s),
            _shares(d.rank), fmt_p(d.rank.p), fmt_p(v.holm_p), v.verdict_text, _detects(d, metric),
            fmt_interval(metric, d.range_low, d.range_high) + coverage, fmt_interval(metric, d.pi_low, d.pi_high)]


def _curve_row(v: Verdict, registry: dict) -> list:
    d, exp = v.draw, registry[v.exp_id]
    epochs = exp.published["curve_epochs"]
    detects = f"none below {RANK_MIN_VALUES} seeds" if d.n < RANK_MIN_VALUES else f"{detectable_shift(d.n, 'rank'):.1f} sd of the scores"
    scores = f"[{min(d.seed_scores):+.2f}, {max(d.seed_scores):+.2f}]" if d.seed_scores else DASH
    return [v.exp_id, v.device, v.engine, f"{v.metric} ({short_source(exp.source)})",
            ", ".join(map(str, epochs)) if len(epochs) <= 5 else f"{len(epochs)}: {epochs[0]}-{epochs[-1]}", v.seeds(d.n),
            DASH if math.isnan(d.score) else f"{d.score:+.2f}", scores, f"{d.above_all} / {d.below_all}",
            fmt_p(d.rank.p), fmt_p(v.holm_p), v.verdict_text, detects]


def _departure(v: Verdict) -> str:
    """Where a verdict's figure or curve lies, in words."""
    r = v.draw.rank
    side = (f"above all {r.n} seeds" if r.above == 0 and r.tied == 0 else f"below all {r.n} seeds" if r.below == 0 and r.tied == 0
            else f"{r.below} of {r.n} seeds below it, {r.tied} equal, {r.above} above")
    if isinstance(v.draw, CurveDraw):
        return f"{v.cell} {v.what} (score {v.draw.score:+.2f} sd; {side} in score), rank p {fmt_p(r.p)}"
    return f"{v.cell} {v.figure} = {fmt(v.metric, v.draw.published)} ({side}), rank p {fmt_p(r.p)}"


def answer(verdicts: list[Verdict], registry: dict) -> list[str]:
    """The report's first lines: how many printed runs are consistent with one run of their recipe, the
    largest departure, and what these seeds could and could not have detected."""
    judged = [v for v in verdicts if v.draw.verdict]
    if not judged:
        return []
    runs = sorted({v.cell for v in judged})
    out = sorted({v.cell for v in judged if v.holm_p <= 1 - LEVEL})
    raw = [v for v in judged if v.draw.verdict != CONSISTENT]
    figures = sum(isinstance(v.draw, SingleDraw) for v in judged)
    curves = len(judged) - figures
    sources = ", ".join(sorted({short_source(registry[v.exp_id].source) for v in judged}, key=_natural))
    head = (f"**{len(runs) - len(out)} of {len(runs)} printed runs ({sources}) are consistent with one run of their recipe** "
            f"({figures} published figures and {curves} whole curves, {len(judged)} verdicts by rank among the seeds, "
            "Holm-adjusted as one family).")
    if out:
        head += " Not consistent: " + "; ".join(_departure(v) for v in judged if v.holm_p <= 1 - LEVEL) + "."
    lines = [head, ""]
    if raw and not out:
        lines += [f"- Unadjusted, {len(raw)} of the {len(judged)} verdicts reject at 5% "
                  f"({'; '.join(_departure(v) for v in raw)}); about {0.05 * len(judged):.1f} would by chance alone if "
                  "every run were a typical draw, and none does after Holm's correction.", ""]
    elif not raw:
        lines += [f"- None of the {len(judged)} rejects at 5% even unadjusted, so no correction changes the answer.", ""]
    nearest = min(judged, key=lambda v: (v.draw.rank.p, isinstance(v.draw, SingleDraw)))  # a tie: the whole curve says more
    lines += [f"- The largest departure: {_departure(nearest)}.", ""]
    few = sorted({v.cell for v in judged if v.draw.rank.n < RANK_MIN_VALUES})
    if few:
        counts = sorted({v.draw.rank.n for v in judged if v.draw.rank.n < RANK_MIN_VALUES})
        lines += [f"- What these seeds could not detect: {len(few)} of the {len(runs)} runs have {_span(counts)} seeds, too few "
                  f"for a rank test to reject at all (it needs {RANK_MIN_VALUES}: its least p is 2/(n + 1)); for them "
                  "*consistent* means only that nothing could be ruled out. Where their seeds look normal, the t "
                  "interval would catch a run " + _t_span(judged, few) + " from the seeds' mean 4 times in 5.", ""]
    many = [v for v in judged if v.draw.rank.n >= RANK_MIN_VALUES and isinstance(v.draw, SingleDraw)]
    if many:
        shifts = sorted({round(v.draw.shift_rank, 1) for v in many})
        lines += [f"- Where there are {RANK_MIN_VALUES} or more seeds ({', '.join(sorted({v.cell for v in many}))}), the rank test "
                  f"catches a run {_span(shifts)} sd from the seeds' mean 4 times in 5 (normal seeds; about 2.8 sd with "
                  "unlimited seeds: one run is a blunt probe however many seeds there are).", ""]
    return lines


def _natural(text: str) -> list:
    """'T1 #10' after 'T1 #2': numbers compared as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _span(values: list) -> str:
    return f"{values[0]:g}" if len(values) == 1 else f"{values[0]:g}-{values[-1]:g}"


def _t_span(judged: list[Verdict], cells: list[str]) -> str:
    shifts = sorted({round(v.draw.shift_t, 1) for v in judged
                     if v.cell in cells and isinstance(v.draw, SingleDraw) and not math.isnan(v.draw.pi_low)})
    return f"{_span(shifts)} sd" if shifts else "(none look normal)"


def figure_notes(verdicts: list[Verdict]) -> list[str]:
    """What the tables' columns do not say on their own: where the t interval was left out, and where the
    t interval and the rank disagree."""
    lines = []
    figures = [v for v in verdicts if isinstance(v.draw, SingleDraw) and v.draw.verdict]
    skewed = [v for v in figures if v.draw.shapiro_p < 1 - LEVEL]
    if skewed:
        lines.append("- Not normally spread (Shapiro-Wilk p < 0.05), so no t interval: "
                     + "; ".join(f"{v.cell} {v.figure} (p = {fmt_p(v.draw.shapiro_p)}, seeds "
                                 f"{fmt(v.metric, v.draw.seeds.min)} to {fmt(v.metric, v.draw.seeds.max)})" for v in skewed) + ".")
    for v in figures:
        d = v.draw
        if not math.isnan(d.pi_low) and (d.pi_low <= d.published <= d.pi_high) != (d.verdict == CONSISTENT):
            inside = "inside" if d.pi_low <= d.published <= d.pi_high else "outside"
            lines.append(f"- {v.cell} {v.figure}: {inside} the t interval "
                         f"{fmt_interval(v.metric, d.pi_low, d.pi_high)}, but {d.verdict} by rank (p = {fmt_p(d.rank.p)}).")
    return lines + [""] if lines else []


def published_section(results: Results, registry: dict, verdicts: list[Verdict]) -> list[str]:
    lines = ["## Published figures and curves, each as one draw from the seeds", ""]
    if not verdicts:
        return lines + ["No faithful runs yet of an experiment with a published figure: nothing to set against "
                        "the published numbers.", ""]
    figures = [_figure_row(v, registry) for v in verdicts if not isinstance(v.draw, CurveDraw)]
    lines += [PUBLISHED_RULES, "", table(figures, FIGURE_HEADERS), ""]
    curves = [v for v in verdicts if isinstance(v.draw, CurveDraw)]
    if curves:
        rows = [_curve_row(v, registry) for v in curves]
        lines += ["### Whole curves", "", CURVE_RULES, "", table(rows, CURVE_HEADERS), ""]
    lines += figure_notes(verdicts)
    runs = results.runs
    sources = sorted({e for e in runs.loc[runs["faithful"], "experiment"] if registry[e].published})
    return lines + ["As printed:", ""] + [f"- {e}: {registry[e].source}: {registry[e].published_text}" for e in sources] + [""]


# ---------------------------------------------------------------------------------------------------
# The seeds at the end of each recipe, and quick runs

SUMMARY_HEADERS = [*CELL, "seeds", "metric", "mean ± std", "95% CI of the mean (t)", "95% CI (bootstrap BCa)", "min", "max",
                   "far below the rest"]


def summary_rows(runs: pd.DataFrame, registry: dict, faithful: bool) -> list[list]:
    """One row per experiment x device x engine (x quick-run setting): the headline metric at the end of
    the run, described (where the seeds' mean lies); no verdict."""
    rows = []
    for (exp_id, device, engine, setting), group in _cells(runs, faithful):
        metric = registry[exp_id].headline_metric
        ok = group[group["status"] == "ok"]
        values = ok[metric].dropna()
        s = summarize(values)
        row = [exp_id, device, engine] + ([] if faithful else [setting])
        row += [_seed_count(group, s.n), metric, mean_std(metric, s), fmt_interval(metric, s.ci_low, s.ci_high),
                fmt_interval(metric, *bootstrap_mean_interval(values)), fmt(metric, s.min), fmt(metric, s.max),
                _stalls(metric, values)]
        rows.append(row)
    return rows


def _stalls(metric: str, values) -> str:
    if not is_accuracy(metric):
        return DASH
    st = stalls(values)
    if math.isnan(st.fence):
        return DASH
    if not st.count:
        return f"none of {st.n}"
    return (f"{st.count} of {st.n} below {fmt(metric, st.fence)} (rate 95% CI [{100 * st.low:.1f}%, {100 * st.high:.1f}%]); "
            f"the rest {mean_std(metric, st.rest)}")


def seeds_sections(runs: pd.DataFrame, registry: dict) -> list[str]:
    lines = []
    faithful = summary_rows(runs, registry, faithful=True)
    if faithful:
        lines += ["## The seeds at the end of each recipe", "",
                  "Where the seeds' mean lies, for every faithful experiment (published figure or not): the headline "
                  "metric after the recipe's last epoch, mean ± standard deviation, the 95% confidence interval of "
                  "the mean by Student t and by the bias-corrected bootstrap (the two part where the seeds are "
                  "skewed), min and max. *Far below the rest*: the runs below Tukey's far-out fence (Q1 − 3 IQR), "
                  "a stalled or collapsed run, with the Clopper-Pearson interval of how often that happens and the "
                  "other runs' mean ± std. A description, not a verdict.", "",
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
    """Whether each run's time span (started_at + wall_time_s) overlaps another run's on the same host."""
    start = pd.to_datetime(runs["started_at"], utc=True, errors="coerce", format="ISO8601")
    end = start + pd.to_timedelta(runs["wall_time_s"], unit="s")
    shared = pd.Series(False, index=runs.index)
    for _, idx in runs.groupby("host").groups.items():
        s, e = start[idx].to_numpy(), end[idx].to_numpy()
        overlap = (s[:, None] < e[None, :]) & (s[None, :] < e[:, None])
        np.fill_diagonal(overlap, False)
        shared[idx] = overlap.any(axis=1)
    return shared
