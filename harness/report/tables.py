"""The report's tables: what was read, the published figures judged as one draw each, the seeds at
the end of each recipe, and speed."""

from __future__ import annotations

import math

import pandas as pd

from ..datasets import split_sizes
from ..stats import CONSISTENT, EMPIRICAL_MIN_SEEDS, SingleDraw, single_draw, summarize
from .formatting import DASH, fmt, fmt_interval, headline_metric, is_accuracy, mean_std, short_source, spread, table
from .loading import Results, at_epoch

CELL = ["experiment", "device", "engine"]


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
    no_epochs = sorted(set(r.runs["run_id"]) - set(r.epochs["run_id"]))
    if no_epochs:
        lines.append(f"- {len(no_epochs)} run(s) have no epoch rows, so no learning curve: {', '.join(no_epochs)}.")
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
# Published figures, each judged as one draw from the seeds' distribution

PUBLISHED_HEADERS = [*CELL, "figure", "published (source)", "seeds", "seeds at that epoch: mean ± std",
                     "95% CI of the mean", "95% prediction interval", "seeds' 2.5-97.5%", "percentile", "verdict",
                     "seeds to tell the mean apart"]
PUBLISHED_RULES = (
    "Each tutorial printed **one unseeded run**, so each published figure is judged as one draw from the "
    "distribution over seeds, at the epoch it was printed for (from `epochs.csv`). The question: *could a "
    "single run of this recipe have printed this figure?* "
    f"Verdict: *{CONSISTENT}* when the figure lies inside the 95% prediction interval for one new run "
    "(Student t: mean ± t(n−1)·s·√(1 + 1/n), its ends included), *above* or *below* otherwise. "
    "*Percentile*: the figure's rank among the seeds (0: below every seed, 100: above every seed, ties count half). "
    f"With {EMPIRICAL_MIN_SEEDS} or more seeds the seeds' own 2.5-97.5% quantiles are shown beside the t interval, "
    "which assumes a roughly normal spread (near 100% an accuracy's t interval can pass its ceiling; the quantiles and "
    "the percentile are then the better guide). The confidence interval of the mean describes the seeds (where their "
    "average lies), not the verdict. *Seeds to tell the mean apart*: how many seeds a one-sample t-test "
    "(5% level, power 0.8) would need to detect that the seeds' mean differs from the figure by the observed "
    "difference at the observed spread; a verdict of *consistent* from far fewer seeds than that says little "
    "about the mean. Accuracies on a finite split move in steps of one sample (the split's size is given). "
    "Statistics are over faithful runs that ended ok; failed runs are counted beside the seeds."
)


def _figure_label(exp, metric: str, epoch: int) -> str:
    label = f"{metric} @{epoch}"
    if is_accuracy(metric):
        n = split_sizes(exp.data).get(metric.removesuffix("_acc"))
        if n:
            label += f" ({n:,} samples: steps of {100 / n:.2g} pp)"
    return label


def _seeds_needed(draw: SingleDraw) -> str:
    needed = draw.seeds_needed
    if math.isnan(needed):
        return DASH
    if math.isinf(needed):
        return "any number (no difference)"
    return f"{math.ceil(needed):,}" if needed <= 10_000 else "> 10,000"


def published_rows(results: Results, registry: dict) -> tuple[list[list], list[tuple]]:
    """One row per published figure x device x engine; and (experiment, figure, draw) per verdict reached."""
    rows, draws = [], []
    for (exp_id, device, engine, _), group in _cells(results.runs, faithful=True):
        exp = registry[exp_id]
        ok = group[group["status"] == "ok"]
        for figure in exp.published_figures:
            metric, epoch, value = figure["metric"], figure["epoch"], figure["value"]
            values = at_epoch(ok, results.epochs, metric, epoch, exp.training["epochs"])
            draw = single_draw(values, value)
            s = draw.seeds
            verdict = draw.verdict or ("no runs ok" if s.n == 0 else "one seed: no spread to judge by")
            rows.append([
                exp_id, device, engine, _figure_label(exp, metric, epoch), f"{fmt(metric, value)} ({short_source(exp.source)})",
                _seed_count(group, s.n), mean_std(metric, s), fmt_interval(metric, s.ci_low, s.ci_high),
                fmt_interval(metric, draw.pi_low, draw.pi_high), fmt_interval(metric, draw.q_low, draw.q_high),
                DASH if math.isnan(draw.percentile) else f"{draw.percentile:.0f}", verdict, _seeds_needed(draw),
            ])
            if draw.verdict:
                draws.append((f"{exp_id} [{device}, {engine}]", figure, draw))
    return rows, draws


def verdict_sentences(draws: list[tuple]) -> list[str]:
    """What the verdict table says, in words: how many figures are consistent, and each that is not."""
    if not draws:
        return []
    consistent = sum(d.verdict == CONSISTENT for _, _, d in draws)
    lines = [f"{consistent} of {len(draws)} published figure(s) are consistent with one run of their recipe."]
    for cell, figure, d in draws:
        metric = figure["metric"]
        where = f"{cell} {metric} @{figure['epoch']}: published {fmt(metric, d.published)}"
        if d.verdict != CONSISTENT:
            lines.append(f"- {where} lies {d.verdict} the 95% prediction interval "
                         f"{fmt_interval(metric, d.pi_low, d.pi_high)} (percentile {d.percentile:.0f} of {d.seeds.n} seeds).")
        elif not d.seeds.ci_low <= d.published <= d.seeds.ci_high:
            lines.append(f"- {where} is consistent with one run (percentile {d.percentile:.0f}), but the seeds' mean "
                         f"differs from it: the 95% CI of the mean {fmt_interval(metric, d.seeds.ci_low, d.seeds.ci_high)} "
                         "excludes it.")
        inside_quantiles = d.q_low <= d.published <= d.q_high
        if not math.isnan(d.q_low) and inside_quantiles != (d.verdict == CONSISTENT):
            lines.append(f"- {where}: the t interval and the seeds' own 2.5-97.5% range "
                         f"{fmt_interval(metric, d.q_low, d.q_high)} disagree (the seeds are far from normally "
                         f"spread); the percentile ({d.percentile:.0f}) is the safer guide.")
    return lines + [""]


def published_section(results: Results, registry: dict) -> list[str]:
    lines = ["## Published figures, each as one draw from the seeds", "", PUBLISHED_RULES, ""]
    rows, draws = published_rows(results, registry)
    if not rows:
        return lines + ["No faithful runs yet of an experiment with a published figure: nothing to set against "
                        "the published numbers.", ""]
    runs = results.runs
    sources = sorted({e for e in runs.loc[runs["faithful"], "experiment"] if registry[e].published})
    return (lines + [table(rows, PUBLISHED_HEADERS), ""] + verdict_sentences(draws) + ["As printed:", ""]
            + [f"- {e}: {registry[e].source}: {registry[e].published_text}" for e in sources] + [""])


# ---------------------------------------------------------------------------------------------------
# The seeds at the end of each recipe, and quick runs

SUMMARY_HEADERS = [*CELL, "seeds", "metric", "mean ± std", "95% CI of the mean", "min", "max"]


def summary_rows(runs: pd.DataFrame, registry: dict, faithful: bool) -> list[list]:
    """One row per experiment x device x engine (x quick-run setting): the headline metric at the end of
    the run, described (where the seeds' mean lies); no verdict."""
    rows = []
    for (exp_id, device, engine, setting), group in _cells(runs, faithful):
        metric = headline_metric(registry[exp_id])
        ok = group[group["status"] == "ok"]
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
                  "Where the seeds' mean lies, for every faithful experiment (published figure or not): the headline "
                  "metric after the recipe's last epoch, mean ± standard deviation, the 95% confidence interval of "
                  "the mean (Student t, n − 1 degrees of freedom), min and max. A description, not a verdict.", "",
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
    rows = []
    for (exp_id, device, engine, setting), group in runs.groupby([*CELL, "setting"], sort=True):
        wall, rate = summarize(group["wall_time_s"].dropna()), summarize(group["train_samples_per_s"].dropna())
        rows.append([exp_id, device, engine, setting, len(group), spread(wall, "{:.1f} s"), spread(rate, "{:,.0f}")])
    return rows
