"""Comparisons between experiments: ablations paired by seed, datasets unpaired.

Which experiments are paired is data: a registry file's `[ablation]` section names the experiment it
varies (`of`), what the pair measures, what a seed gives both arms alike, and which outcomes to pair
(metrics after the last epoch, or the over-fitting outcomes read off the validation curve). What
differs between the two recipes is read off the recipes (`registry.differing_settings`).

Two experiments whose runs share a seed share what that seed draws (split, initial weights, data
order, as far as the recipes agree), so their difference is measured seed by seed: does B differ (the
paired permutation test, Holm over the family), by how much (the mean difference's t interval), and,
where no difference shows, is it within the margin (TOST)? Runs that share nothing (MNIST against
Fashion-MNIST) are compared as independent samples: Mann-Whitney, with Welch's interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from .. import safe_files
from ..compare import margin_for
from ..registry import differing_settings
from ..stats import Paired, equivalence_p, paired, summarize, unpaired
from ..stats import holm as holm_adjusted
from ..catalogue import DASH, fmt, fmt_diff, fmt_interval, fmt_p, fmt_p_clause
from .formatting import mean_std, table
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

PAIRED_HEADERS = ["device", "engine", "metric", "A: mean ± std", "B: mean ± std", "pairs", "B > / = / < A", "B − A: mean",
                  "95% CI of B − A", "permutation p", "Holm"]
PAIRED_RULES = (
    "Paired by seed: the question is *does B differ from A for the same seed?*, answered by the paired "
    "permutation test of the mean difference (sign flips, `scipy.stats.permutation_test`: exact up to 16 pairs), "
    "which assumes neither normal differences nor untied pairs. Each seed's B − A: how many pairs B wins, ties "
    "and loses; its mean with a 95% Student-t interval, for how large it is. *Holm*: the permutation p adjusted "
    "over the family named below the table (`statsmodels.stats.multitest.multipletests`). Where no difference "
    "is shown, the two one-sided tests (TOST, statsmodels' `ttost_paired`) ask whether it lies within the "
    "equivalence margin (the registry's `[margins]`, else a tenth of A's error rate for accuracies, 2% of A's "
    "mean for losses). Faithful runs that ended ok, on the seeds both arms have."
)


@dataclass
class PairedOutcome:
    """One paired comparison of a family: B − A of one metric (or outcome) in one device x engine."""

    device: str
    engine: str
    metric: str  # the metric as formatted (an outcome's column formats as the metric it is)
    a: pd.Series  # by seed
    b: pd.Series
    result: Paired
    margin: float  # the equivalence margin, in the metric's units
    tost_p: float
    not_comparable: str = ""  # why the metric means different things in the two arms ("" where it does not)
    holm_p: float = math.nan


def compare_paired(device: str, engine: str, metric: str, a: pd.Series, b: pd.Series, margin: float,
                   not_comparable: str = "") -> PairedOutcome:
    seeds = a.index.intersection(b.index)
    a, b = a[seeds], b[seeds]
    result = paired(a, b)
    tost = equivalence_p(a, b, margin, paired=True) if result.n >= 2 and not not_comparable else math.nan
    return PairedOutcome(device, engine, metric, a, b, result, margin, tost, not_comparable)


def holm(comparisons: list[PairedOutcome]) -> None:
    """Holm's adjustment of the permutation p over one family, in place; comparisons with no test are left out."""
    tested = [c for c in comparisons if not c.not_comparable]
    for c, p in zip(tested, holm_adjusted([c.result.permutation_p for c in tested])):
        c.holm_p = p


def _paired_row(c: PairedOutcome) -> list:
    r, metric = c.result, c.metric
    row = [c.device, c.engine, metric, mean_std(metric, summarize(c.a)), mean_std(metric, summarize(c.b)), str(r.n),
           f"{r.wins} / {r.ties} / {r.losses}"]
    if c.not_comparable:  # the reason is in the sentence below the table
        return row + [fmt_diff(metric, r.mean), "not comparable", DASH, DASH]
    return row + [fmt_diff(metric, r.mean), fmt_interval(metric, r.ci_low, r.ci_high, diff=True), fmt_p(r.permutation_p, r.permutation_floor),
                  fmt_p(c.holm_p)]


def family_sentence(name: str, comparisons: list[PairedOutcome]) -> str:
    """What Holm's correction over a family changes, in one sentence."""
    tested = [c for c in comparisons if not math.isnan(c.holm_p)]
    if not tested:
        return ""
    raw = sum(c.result.permutation_p <= 0.05 for c in tested)
    adjusted = sum(c.holm_p <= 0.05 for c in tested)
    change = ("the correction changes none of them" if raw == adjusted
              else f"{adjusted} remain after Holm's correction")
    return (f"Family: {name}, {len(tested)} comparisons; {raw} with a permutation p ≤ 0.05, {change}. "
            "The sentences under each table follow the intervals; a difference the correction removes is named as such.")


def finding(name: str, c: PairedOutcome) -> str:
    """One sentence saying what a paired difference shows, following from its interval and tests."""
    result, metric = c.result, c.metric
    if result.n < 2:
        return f"{name}: fewer than two paired seeds, nothing can be said."
    if c.not_comparable:
        return f"{name}: not tested, the two arms' values are not comparable ({c.not_comparable})."
    ties = f", {result.ties} of {result.n} pairs tied" if result.ties else ""
    interval = fmt_interval(metric, result.ci_low, result.ci_high, diff=True)
    tests = (f"{fmt_p_clause('permutation', result.permutation_p, result.permutation_floor)} "
             f"(Holm {fmt_p(c.holm_p)}), {result.n} pairs{ties}")
    if result.ci_low == result.ci_high:  # every seed's difference the same: no spread
        if not result.mean:
            return f"{name} is the same as A's in every one of the {result.n} seeds."
        return f"{name} differs from A's by the same {fmt_diff(metric, result.mean)} in every one of the {result.n} seeds."
    floor = 2 / 2 ** result.n  # every pair one sign: the least p the sign flips can give
    if result.permutation_p <= 0.05:
        direction = "higher" if result.mean > 0 else "lower"
        size = fmt_diff(metric, abs(result.mean)).lstrip("+")
        removed = "; not after Holm's correction over the family" if c.holm_p > 0.05 else ""
        return f"{name} is {direction} by {size} (95% CI {interval}; {tests}){removed}."
    if floor > 0.05:  # so a clear-looking interval is not read as a difference the test could have shown
        return (f"{name}: with {result.n} pairs the permutation test cannot go below p = {floor:.2g}, so no difference "
                f"can be shown (95% CI {interval}; {tests}).")
    if not c.margin > 0:
        return f"{name}: no difference shown ({tests}; 95% CI {interval})."
    margin = fmt_diff(metric, c.margin).lstrip("+")
    if c.tost_p <= 0.05:
        return (f"{name} is equivalent to A's within ±{margin} (TOST p = {fmt_p(c.tost_p)}; 95% CI {interval}; {tests}).")
    return (f"{name}: neither a difference nor equivalence within ±{margin} is shown (95% CI {interval} includes 0; "
            f"TOST p = {fmt_p(c.tost_p)}; {tests}).")


def _seed_values(runs: pd.DataFrame, exp_id: str, device: str, engine: str, metric: str) -> pd.Series:
    rows = faithful_ok(runs, exp_id)
    rows = rows[(rows["device"] == device) & (rows["engine"] == engine)]
    return rows.set_index("seed")[metric].dropna()


def _environments(runs: pd.DataFrame, *exp_ids: str) -> list[tuple[str, str]]:
    """(device, engine) where every one of the experiments has faithful runs that ended ok."""
    sets = [set(map(tuple, faithful_ok(runs, e)[["device", "engine"]].drop_duplicates().to_numpy())) for e in exp_ids]
    return sorted(set.intersection(*sets))


def ablation_section(registry: dict, runs: pd.DataFrame) -> list[str]:
    """Every `final` ablation, its metrics paired by seed; the permutation p-values Holm-adjusted over all
    of them, one family (the tutorials' questions of what one change to a recipe does)."""
    pairs = {}
    for exp in ablations(registry, "final"):
        arms = (exp.ablation["of"], exp.id)
        pairs[exp.id] = []
        for device, engine in _environments(runs, *arms):
            for metric in exp.ablation["metrics"]:
                a, b = (_seed_values(runs, e, device, engine, metric) for e in arms)
                if not (a.empty or b.empty):
                    margin = margin_for(registry[arms[0]], metric, {}).around(a.mean())
                    pairs[exp.id].append(compare_paired(device, engine, metric, a, b, margin,
                                                        exp.ablation["not_comparable"].get(metric, "")))
    family = [c for comparisons in pairs.values() for c in comparisons]
    holm(family)
    if not pairs:
        return []
    lines = ["## Ablations, paired by seed", "", PAIRED_RULES, ""]
    if family:
        lines += [family_sentence(f"every metric of the {len(pairs)} ablations below", family), "", PLAN_RULES, ""]
    for exp in ablations(registry, "final"):
        arms = (exp.ablation["of"], exp.id)
        # Two pairs may ask the same question of different recipes (MyLinear on iris and on MNIST): the arms tell them apart.
        lines += [f"### Ablation: {exp.ablation['about']} ({arms[0]} → {arms[1]})", "",
                  f"{_arms(registry, exp)}. A seed gives both {exp.ablation['shared']}.", ""]
        comparisons = pairs[exp.id]
        if comparisons:
            lines += [table([_paired_row(c) for c in comparisons], PAIRED_HEADERS), ""]
            lines += [f"- [{c.device}, {c.engine}] " + finding(f"B's {c.metric}", c) for c in comparisons]
            lines += [""] + _plan(registry, runs, exp, exp.ablation["metrics"])
        else:
            lines += [f"Not assessed yet: `harness run {' '.join(arms)}`.", ""]
    return lines


def _plan(registry: dict, runs: pd.DataFrame, exp, metrics, rules: bool = False) -> list[str]:
    """How many seeds the pair would need to detect a difference of δ, from the spread of these runs
    (`rules`: with the paragraph that says how, where no section above has said it)."""
    a_id = exp.ablation["of"]
    rows = []
    for device, engine in _environments(runs, a_id, exp.id):
        for metric in metrics:
            a, b = (_seed_values(runs, e, device, engine, metric).to_dict() for e in (a_id, exp.id))
            rows += [[device, engine, *row] for row in plan_rows(registry[a_id], metric, a, b)]
    if not rows:
        return []
    return ([PLAN_RULES, ""] if rules else []) + [table(rows, ["device", "engine", *PLAN_HEADERS]), ""]


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
    results = {}
    for column, _, metric in OUTCOMES:
        margin = 0.0 if metric == "epoch" else margin_for(registry[plain_id], metric, {}).around(plain[column].mean())
        results[column] = compare_paired("", "", metric, plain[column], dropout[column], margin)
    holm(list(results.values()))
    rows = []
    for column, reading, metric in OUTCOMES:
        c = results[column]
        r = c.result
        rows.append([reading, _fmt_outcome(metric, plain[column].mean()), _fmt_outcome(metric, dropout[column].mean()),
                     str(r.n), f"{r.wins} / {r.ties} / {r.losses}", _fmt_outcome(metric, r.mean, diff=True),
                     "[" + ", ".join(_fmt_outcome(metric, v, diff=True) for v in (r.ci_low, r.ci_high)) + "]"
                     if not math.isnan(r.ci_low) else DASH,
                     fmt_p(r.permutation_p, r.permutation_floor), fmt_p(c.holm_p)])
    labels = {e: label for e, (_, label) in selections.items()}
    last = sorted(set(plain["last_epoch"]) | set(dropout["last_epoch"])) if len(shared) else []
    lines += [
        "T1 #10 reads over-fitting off its curves: validation loss flat then rising while train accuracy climbs. "
        "Measured here on what a user of the model cares about, per seed: the rise of the validation loss from "
        "its minimum to the last epoch, the epoch of that minimum, and validation and test accuracy at the end. "
        f"{_arms(registry, exp)}; a seed gives both {exp.ablation['shared']}, so each outcome is compared "
        f"seed by seed. {PAIRED_RULES}", "",
        table(rows, ["outcome", "A: mean", "B: mean", "pairs", "B > / = / < A", "B − A: mean", "95% CI of B − A",
                     "permutation p", "Holm"]), "",
        family_sentence(f"the {len(OUTCOMES)} over-fitting outcomes", list(results.values())), "",
    ]
    rise, valid, test = results["valid_loss_rise"], results["valid_acc"], results["test_acc"]
    lines += _overfitting_conclusion(f"B ({change})", rise, valid, test)
    if any(label != "faithful" for label in labels.values()):
        lines += [f"These are quick runs ({labels[plain_id]}; {labels[dropout_id]}), not the 50-epoch recipe.", ""]
    if last:
        lines += [f"Last epoch: {', '.join(map(str, last))}.", ""]
    lines += _plan(registry, runs, exp, ("valid_acc", "test_acc"), rules=True)
    lines += [
        "Train accuracy is measured during the training steps, with any dropout active, which lowers it by "
        "itself: the train − validation gap in the right panel is shown as a curve only, not tested.", "",
        f"![validation loss, accuracy and the train/validation gap of A and B](plots/{plot})", "",
    ]
    return lines


def _overfitting_conclusion(b: str, rise: PairedOutcome, valid: PairedOutcome, test: PairedOutcome) -> list[str]:
    """What the paired outcomes support, in sentences that follow from their tests (Holm over the family); `b`
    names arm B."""
    lines = ["- " + finding(f"In {b}, the validation loss's rise from its minimum", rise),
             "- " + finding(f"In {b}, validation accuracy at the last epoch", valid),
             "- " + finding(f"In {b}, test accuracy at the last epoch", test)]
    def shown(c: PairedOutcome, sign: int) -> bool:  # the family's test, after Holm, in that direction
        return c.holm_p <= 0.05 and c.result.mean * sign > 0

    curbs = shown(rise, -1)
    improves = [name for name, c in (("validation", valid), ("test", test)) if shown(c, 1)]
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
        verdict = (f"The data do not show that {b} curbs over-fitting on these outcomes: no test shows a "
                   "difference in its favour.")
    return lines + ["", f"**{verdict}**", ""]


# ---------------------------------------------------------------------------------------------------
# Datasets: independent samples


def dataset_section(registry: dict, runs: pd.DataFrame) -> list[str]:
    """Each MNIST recipe's test accuracy on MNIST against the same recipe on Fashion-MNIST."""
    pairs = []
    for exp_id in sorted(runs["experiment"].unique()):
        exp = registry[exp_id]
        if not exp.variant_of:
            continue
        a = faithful_ok(runs, exp.variant_of)["test_acc"]
        b = faithful_ok(runs, exp_id)["test_acc"]
        if a.dropna().empty or b.dropna().empty:
            continue
        pairs.append((exp, unpaired(a, b)))
    if not pairs:
        return []
    holm_p = holm_adjusted([r.mann_whitney_p for _, r in pairs])
    rows = [[exp.variant_of, exp.data["dataset"], f"{mean_std('test_acc', r.a)} (n={r.a.n})", f"{mean_std('test_acc', r.b)} (n={r.b.n})",
             fmt_diff("test_acc", r.difference) + " " + fmt_interval("test_acc", r.ci_low, r.ci_high, diff=True),
             fmt_p(r.mann_whitney_p), fmt_p(h)]
            for (exp, r), h in zip(pairs, holm_p)]
    return ["## MNIST versus Fashion-MNIST", "",
            "The same recipe on both datasets, as independent samples (the data differ, so a seed shares nothing "
            "that matters): *do the test accuracies differ?*, answered by the Mann-Whitney U test (`scipy.stats."
            "mannwhitneyu`, two-sided, its p exact over every split of the pooled seeds, ties and all); *Holm*: that p "
            "adjusted over the rows, one family. How far apart: the difference of the means with Welch's 95% "
            "interval. With 5 seeds a side the Mann-Whitney test cannot go below p = 0.0079.", "",
            table(rows, ["experiment", "other dataset", "MNIST", "other", "other − MNIST [95% CI]", "Mann-Whitney p", "Holm"]), ""]
