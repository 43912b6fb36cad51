"""Comparisons between experiments: ablations paired by seed, datasets unpaired.

Which experiments are paired is data: a registry file's `[ablation]` section names the experiment it
varies (`of`), what the pair measures, what a seed gives both arms alike, and which outcomes to pair
(metrics after the last epoch, or the over-fitting outcomes read off the validation curve). What
differs between the two recipes is read off the recipes (`registry.differing_settings`).

Two experiments whose runs share a seed share what that seed draws (split, initial weights, data
order, as far as the recipes agree), so their difference is measured seed by seed: the per-seed
difference, its mean with a 95% interval, a paired t-test, the Wilcoxon signed-rank test and the
effect size. Runs that share nothing (MNIST against Fashion-MNIST) are compared as independent samples.
"""

from __future__ import annotations

import math
import pandas as pd

from .. import safe_files
from ..registry import differing_settings
from ..stats import Paired, paired, summarize, unpaired
from .formatting import DASH, fmt, fmt_diff, fmt_interval, fmt_p, mean_std, table
from .loading import faithful_ok
from .plots import plot_overfitting, plot_selection
from .variance import PLAN_HEADERS, PLAN_RULES, plan_rows


def ablations(registry: dict, outcomes: str) -> list:
    """The registered experiments that are ablations of another with these outcomes, in file order."""
    return [exp for exp in registry.values() if exp.ablation and exp.ablation["outcomes"] == outcomes]


def _arms(registry: dict, exp) -> str:
    """A and B named, with what B sets otherwise."""
    a = registry[exp.ablation["of"]]
    return f"A = `{a.id}`, B = `{exp.id}` ({'; '.join(differing_settings(a, exp))})"

PAIRED_HEADERS = ["device", "engine", "metric", "A: mean ± std", "B: mean ± std", "pairs", "B − A: mean",
                  "95% CI of B − A", "paired t p", "Wilcoxon p", "effect size d_z"]
PAIRED_RULES = (
    "Paired by seed: the question is *does B differ from A for the same seed?* Each seed's B − A; "
    "its mean with a 95% Student-t interval and the paired t-test (`scipy.stats.ttest_rel`); the Wilcoxon "
    "signed-rank test (`scipy.stats.wilcoxon`), which does not assume normal differences; Cohen's d_z, the "
    "mean difference over the differences' standard deviation. Faithful runs that ended ok, on the seeds "
    "both arms have."
)


def _paired_row(device: str, engine: str, metric: str, a: pd.Series, b: pd.Series) -> tuple[list, Paired]:
    seeds = a.index.intersection(b.index)
    result = paired(a[seeds], b[seeds])
    row = [device, engine, metric, mean_std(metric, summarize(a[seeds])), mean_std(metric, summarize(b[seeds])),
           str(result.n), fmt_diff(metric, result.mean), fmt_interval(metric, result.ci_low, result.ci_high, diff=True),
           fmt_p(result.t_p), fmt_p(result.wilcoxon_p), DASH if math.isnan(result.effect) else f"{result.effect:+.2f}"]
    return row, result


def finding(name: str, metric: str, result: Paired) -> str:
    """One sentence saying what a paired difference shows, following from its interval and tests."""
    if result.n < 2:
        return f"{name}: fewer than two paired seeds, nothing can be said."
    interval = fmt_interval(metric, result.ci_low, result.ci_high, diff=True)
    tests = f"paired t p = {fmt_p(result.t_p)}, Wilcoxon p = {fmt_p(result.wilcoxon_p)}, {result.n} pairs"
    if math.isnan(result.t_p):  # every seed's difference the same: no spread, no t-test
        if not result.mean:
            return f"{name} is the same as A's in every one of the {result.n} seeds."
        return f"{name} differs from A's by the same {fmt_diff(metric, result.mean)} in every one of the {result.n} seeds."
    if result.ci_low > 0 or result.ci_high < 0:
        direction = "higher" if result.mean > 0 else "lower"
        size = fmt_diff(metric, abs(result.mean)).lstrip("+")
        floor = ""
        if result.wilcoxon_floor > 0.05:  # so the two tests' disagreement is not read as doubt about the difference
            floor = f"; with {result.n} pairs the signed-rank test cannot go below p = {result.wilcoxon_floor:.2g}"
        return f"{name} is {direction} by {size} (95% CI {interval}; {tests}{floor})."
    return f"{name}: no difference shown; the 95% CI {interval} includes 0, and a difference, if any, lies within it ({tests})."


def _seed_values(runs: pd.DataFrame, exp_id: str, device: str, engine: str, metric: str) -> pd.Series:
    rows = faithful_ok(runs, exp_id)
    rows = rows[(rows["device"] == device) & (rows["engine"] == engine)]
    return rows.set_index("seed")[metric].dropna()


def _environments(runs: pd.DataFrame, *exp_ids: str) -> list[tuple[str, str]]:
    """(device, engine) where every one of the experiments has faithful runs that ended ok."""
    sets = [set(map(tuple, faithful_ok(runs, e)[["device", "engine"]].drop_duplicates().to_numpy())) for e in exp_ids]
    return sorted(set.intersection(*sets))


def ablation_section(registry: dict, runs: pd.DataFrame) -> list[str]:
    lines = []
    for exp in ablations(registry, "final"):
        arms = (exp.ablation["of"], exp.id)
        lines += [f"## Ablation: {exp.ablation['about']}", "",
                  f"{_arms(registry, exp)}. A seed gives both {exp.ablation['shared']}. {PAIRED_RULES}", ""]
        rows, sentences = [], []
        for device, engine in _environments(runs, *arms):
            for metric in exp.ablation["metrics"]:
                a, b = (_seed_values(runs, e, device, engine, metric) for e in arms)
                if a.empty or b.empty:
                    continue
                row, result = _paired_row(device, engine, metric, a, b)
                rows.append(row)
                sentences.append(f"- [{device}, {engine}] " + finding(f"B's {metric}", metric, result))
        if rows:
            lines += [table(rows, PAIRED_HEADERS), ""] + sentences + [""] + _plan(registry, runs, exp, exp.ablation["metrics"])
        else:
            lines += [f"Not assessed yet: `harness run {' '.join(arms)}`.", ""]
    return lines


def _plan(registry: dict, runs: pd.DataFrame, exp, metrics) -> list[str]:
    """How many seeds the pair would need to detect a difference of δ, from the spread of these runs."""
    a_id = exp.ablation["of"]
    rows = []
    for device, engine in _environments(runs, a_id, exp.id):
        for metric in metrics:
            a, b = (_seed_values(runs, e, device, engine, metric).to_dict() for e in (a_id, exp.id))
            rows += [[device, engine, *row] for row in plan_rows(registry[a_id], metric, a, b)]
    if not rows:
        return []
    return [PLAN_RULES, "", table(rows, ["device", "engine", *PLAN_HEADERS]), ""]


# ---------------------------------------------------------------------------------------------------
# Over-fitting, on the outcomes a user cares about


def dropout_outcomes(epoch_rows: pd.DataFrame) -> pd.DataFrame:
    """Per run: the epoch of its minimum validation loss, the loss's rise from that minimum to the last
    epoch, and validation and test accuracy at the last epoch."""
    out = {}
    for run_id, rows in epoch_rows.dropna(subset=["valid_loss"]).sort_values("epoch").groupby("run_id"):
        best = rows.loc[rows["valid_loss"].idxmin()]
        last = rows.iloc[-1]
        out[run_id] = {"best_epoch": float(best["epoch"]), "valid_loss_rise": last["valid_loss"] - best["valid_loss"],
                       "valid_acc": last["valid_acc"], "test_acc": last["test_acc"], "last_epoch": int(last["epoch"])}
    return pd.DataFrame.from_dict(out, orient="index")


OUTCOMES = (  # column, how it reads, the metric it is formatted as
    ("valid_loss_rise", "rise of the validation loss from its minimum to the last epoch", "valid_loss"),
    ("best_epoch", "epoch of the minimum validation loss", "epoch"),
    ("valid_acc", "validation accuracy at the last epoch", "valid_acc"),
    ("test_acc", "test accuracy at the last epoch", "test_acc"),
)


def _fmt_outcome(metric: str, value: float, diff: bool = False) -> str:
    if metric == "epoch":
        return DASH if math.isnan(value) else (f"{value:+.1f}" if diff else f"{value:.1f}")
    return (fmt_diff if diff else fmt)(metric, value)


def overfitting_section(registry: dict, runs: pd.DataFrame, epochs: pd.DataFrame, plots: safe_files.Folder) -> list[str]:
    lines = []
    for exp in ablations(registry, "over-fitting"):
        lines += _overfitting(registry, exp, runs, epochs, plots)
    return lines


def _overfitting(registry: dict, exp, runs: pd.DataFrame, epochs: pd.DataFrame, plots: safe_files.Folder) -> list[str]:
    plain_id, dropout_id = exp.ablation["of"], exp.id
    change = "; ".join(differing_settings(registry[plain_id], exp))
    plot = f"overfitting-{dropout_id}.png"
    lines = [f"## Over-fitting: {exp.ablation['about']}", ""]
    selections = {e: plot_selection(runs, e) for e in (plain_id, dropout_id)}
    arms = {e: epochs[epochs["run_id"].isin(sel["run_id"])].dropna(subset=["valid_loss"]) for e, (sel, _) in selections.items()}
    missing = [e for e, rows in arms.items() if rows.empty]
    if missing:
        return lines + [f"Not assessed yet: no runs with a validation split of {' and '.join(missing)} "
                        f"(`harness run {plain_id} {dropout_id}`).", ""]
    plot_overfitting(arms, plots / plot)

    def by_seed(exp_id: str) -> pd.DataFrame:
        selection = selections[exp_id][0]
        outcomes = dropout_outcomes(arms[exp_id])
        keys = selection.set_index("run_id")[["device", "engine", "seed"]]
        return outcomes.join(keys).set_index(["device", "engine", "seed"])

    plain, dropout = by_seed(plain_id), by_seed(dropout_id)
    shared = plain.index.intersection(dropout.index)
    plain, dropout = plain.loc[shared], dropout.loc[shared]
    rows, results = [], {}
    for column, reading, metric in OUTCOMES:
        result = paired(plain[column], dropout[column])
        results[column] = result
        rows.append([reading, _fmt_outcome(metric, plain[column].mean()), _fmt_outcome(metric, dropout[column].mean()),
                     str(result.n), _fmt_outcome(metric, result.mean, diff=True),
                     "[" + ", ".join(_fmt_outcome(metric, v, diff=True) for v in (result.ci_low, result.ci_high)) + "]"
                     if not math.isnan(result.ci_low) else DASH,
                     fmt_p(result.t_p), fmt_p(result.wilcoxon_p)])
    labels = {e: label for e, (_, label) in selections.items()}
    last = sorted(set(plain["last_epoch"]) | set(dropout["last_epoch"])) if len(shared) else []
    lines += [
        "T1 #10 reads over-fitting off its curves: validation loss flat then rising while train accuracy climbs. "
        "Measured here on what a user of the model cares about, per seed: the rise of the validation loss from "
        "its minimum to the last epoch, the epoch of that minimum, and validation and test accuracy at the end. "
        f"{_arms(registry, exp)}; a seed gives both {exp.ablation['shared']}, so each outcome is compared "
        f"seed by seed. {PAIRED_RULES}", "",
        table(rows, ["outcome", "A: mean", "B: mean", "pairs", "B − A: mean", "95% CI of B − A", "paired t p", "Wilcoxon p"]), "",
    ]
    rise, valid, test = results["valid_loss_rise"], results["valid_acc"], results["test_acc"]
    lines += _overfitting_conclusion(f"B ({change})", rise, valid, test)
    if any(label != "faithful" for label in labels.values()):
        lines += [f"These are quick runs ({labels[plain_id]}; {labels[dropout_id]}), not the 50-epoch recipe.", ""]
    if last:
        lines += [f"Last epoch: {', '.join(map(str, last))}.", ""]
    lines += _plan(registry, runs, exp, ("valid_acc", "test_acc"))
    lines += [
        "Train accuracy is measured during the training steps, with any dropout active, which lowers it by "
        "itself: the train − validation gap in the right panel is shown as a curve only, not tested.", "",
        f"![validation loss, accuracy and the train/validation gap of A and B](plots/{plot})", "",
    ]
    return lines


def _overfitting_conclusion(b: str, rise: Paired, valid: Paired, test: Paired) -> list[str]:
    """What the paired outcomes support, in sentences that follow from their intervals; `b` names arm B."""
    lines = ["- " + finding(f"In {b}, the validation loss's rise from its minimum", "valid_loss", rise),
             "- " + finding(f"In {b}, validation accuracy at the last epoch", "valid_acc", valid),
             "- " + finding(f"In {b}, test accuracy at the last epoch", "test_acc", test)]
    curbs = rise.n >= 2 and rise.ci_high < 0
    improves = [name for name, r in (("validation", valid), ("test", test)) if r.n >= 2 and r.ci_low > 0]
    if curbs and improves:
        verdict = (f"The data support the claim that {b} curbs over-fitting: the validation loss rises less, "
                   f"and {' and '.join(improves)} accuracy is higher.")
    elif curbs:
        verdict = (f"The data support that {b} curbs the rise of the validation loss, and do not show that it "
                   "improves validation or test accuracy.")
    elif improves:
        verdict = (f"The data show higher {' and '.join(improves)} accuracy in {b}, but not a smaller rise of "
                   "the validation loss.")
    else:
        verdict = (f"The data do not show that {b} curbs over-fitting on these outcomes: no interval excludes "
                   "zero in its favour.")
    return lines + ["", f"**{verdict}**", ""]


# ---------------------------------------------------------------------------------------------------
# Datasets: independent samples


def dataset_section(registry: dict, runs: pd.DataFrame) -> list[str]:
    """Each MNIST recipe's test accuracy on MNIST against the same recipe on Fashion-MNIST."""
    rows = []
    for exp_id in sorted(runs["experiment"].unique()):
        exp = registry[exp_id]
        if not exp.variant_of:
            continue
        a = faithful_ok(runs, exp.variant_of)["test_acc"]
        b = faithful_ok(runs, exp_id)["test_acc"]
        if a.dropna().empty or b.dropna().empty:
            continue
        r = unpaired(a, b)
        rows.append([exp.variant_of, exp.data["dataset"], f"{mean_std('test_acc', r.a)} (n={r.a.n})",
                     f"{mean_std('test_acc', r.b)} (n={r.b.n})", fmt_diff("test_acc", r.difference),
                     fmt_p(r.welch_p), fmt_p(r.mann_whitney_p)])
    if not rows:
        return []
    return ["## MNIST versus Fashion-MNIST", "",
            "The same recipe on both datasets, as independent samples (the data differ, so a seed shares nothing "
            "that matters): *how far apart are the test accuracies?* Mean ± std over seeds (faithful runs), "
            "Welch's t-test on the means (`scipy.stats.ttest_ind(equal_var=False)`) and the Mann-Whitney U test "
            "(`scipy.stats.mannwhitneyu`), both two-sided.", "",
            table(rows, ["experiment", "other dataset", "MNIST", "other", "other − MNIST", "Welch p", "Mann-Whitney p"]), ""]
