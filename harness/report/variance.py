"""The report's "Where the spread comes from" (rows of `harness variance`), and the runs a difference
needs (`harness plan`), which the variance section and the comparisons both cite.

The numbers are `harness.variance`'s, as `harness variance` and `harness plan` print them.
"""

from __future__ import annotations


from .. import safe_files
from ..compare import margin_for
from ..variance import (ALL, NONE, NOT_ADDITIVE, SPREAD_HEADERS, design_groups, designs, measured, metric_values, metrics_of,
                        plan_from_values, reruns_problem, spread_rows, spreads)
from ..catalogue import fmt, fmt_diff, fmt_spread, is_accuracy, fmt_runs
from .formatting import table
from .plots import plot_source_spreads

PLAN_HEADERS = ["metric", "difference δ", "from", "sd", "two-sample t: runs per arm", "paired t: seeds"]
PLAN_RULES = (
    "Runs needed to detect a difference δ of the means at 5% two-sided with 80% power, at the spread these runs "
    "show (`harness plan`): the two-sample t-test (statsmodels `TTestIndPower`), and the paired t-test over shared "
    "seeds (`TTestPower`, on the per-seed differences' sd). δ: 0.1 pp and the equivalence margin for "
    "accuracies, the margin for losses (the registry's `[margins]`, else a tenth of the error rate, or 2% of "
    "A's mean loss)."
)


def deltas(exp, metric: str, mean_a: float) -> list[float]:
    """The differences the report sizes runs for: 0.1 pp and the equivalence margin (accuracies), the margin (losses)."""
    margin = margin_for(exp, metric, {}).around(mean_a)
    found = ([0.001] if is_accuracy(metric) else []) + ([margin] if margin > 0 else [])
    return sorted(set(found))


def plan_rows(exp, metric: str, a: dict[int, float], b: dict[int, float] | None = None) -> list[list]:
    """PLAN_HEADERS rows for `metric` of one experiment (`a`, values by seed) or a pair (`b`), per δ."""
    if len(a) < 2 or (b is not None and len(b) < 2):
        return []
    rows = []
    for delta in deltas(exp, metric, sum(a.values()) / len(a)):
        answer = plan_from_values(a, metric, delta, b)  # every δ here is positive and each arm has two runs
        counts = f"{len(a)} + {len(b)} runs" if b is not None else f"{len(a)} runs"
        rows.append([metric, fmt_diff(metric, delta).lstrip("+"), counts, fmt(metric, answer.sd),
                     fmt_runs(answer.two_sample), fmt_runs(answer.paired) if b is not None else "–"])
    return rows


def variance_section(rows: list[dict], registry: dict, plots: safe_files.Folder) -> list[str]:
    """Each variance design's spread per source (every metric), what it says, the plot, and the runs a difference needs."""
    found = designs(rows)
    if not found:
        return []
    lines = ["## Where the spread comes from", "",
             "Each experiment below ran with ordinary seeds (`all`: every source of randomness varies at once, the "
             "tutorials' single seed), with only one source's seed changing (`--vary`: `init` the initial weights, "
             "`split` the train/validation/test split, `order` the shuffling, `dropout` the masks, `bit` one ulp "
             "added to one weight after init; the others held at the base seed), and as reruns with nothing "
             "changing (`none`). Per metric: the sd with its chi-square 95% interval (exact for normal data; an sd of "
             "exactly 0 has the interval [0, 0]), and its ratio to the all-sources sd over the seeds both have, with "
             "its 95% interval: paired by seed (Pitman and Morgan's), since a source varied alone with seed s shares "
             "that draw with the ordinary run of seed s; the reruns share nothing with them (an F interval). "
             f"{NOT_ADDITIVE} "
             "A source the recipe does not draw from (no split, no shuffling, no dropout) gives 0 by construction. "
             "The sentences, the plot and the runs a difference needs are about the test accuracy (a regression: its "
             "first declared metric, else its loss).", ""]
    panels, plan = [], []
    for design in found:
        groups = design_groups(rows, design)
        exp = registry[design.experiment]
        findings = measured(exp)
        lines += [f"### {design.label}", "", _ran_on(groups), ""]
        table_rows = []
        for metric in metrics_of(exp):
            table_rows += [[metric, *row] for row in spread_rows(groups, metric, lambda v, m=metric: fmt_spread(m, v))]
        lines += [table(table_rows, ["metric", *SPREAD_HEADERS]), ""]
        lines += [f"- {sentence}" for sentence in _findings(groups, design, findings)] + [""]
        lines += [f"Re-create: `{_command(design, groups)}`.", ""]
        panels.append((design.label, findings, spreads(groups, findings)))
        plan += [[design.experiment, *row]
                 for row in plan_rows(exp, findings, metric_values(groups.get(ALL, []), findings))]
    if plot_source_spreads(panels, plots / "variance.png"):
        lines += ["![sd per source of randomness](plots/variance.png)", ""]
    if plan:
        lines += ["### Runs a difference needs", "", PLAN_RULES + " From the `all` runs above (one experiment: "
                  "the spread two arms of it would each have).", "",
                  table(plan, ["experiment", *PLAN_HEADERS]), ""]
    return lines


def _ran_on(groups: dict[str, list[dict]]) -> str:
    """Where the runs ran, from their rows: the CPU or GPU, its vector instruction set, threads, torch."""
    every = [r for rows in groups.values() for r in rows]

    def values(column: str) -> str:
        return ", ".join(sorted({r[column] for r in every if r[column]})) or "–"

    return (f"Ran on {values('device_name')} ({values('cpu_capability')}), {values('threads')} thread(s), "
            f"torch {values('torch_version')}; {len(every)} runs.")


def _command(design, groups: dict[str, list[dict]]) -> str:
    sources = [g for g in groups if g not in (ALL, NONE)]
    runs = max((len(groups[g]) for g in sources), default=len(groups.get(ALL, [])))
    reruns = len(groups.get(NONE, []))
    reruns = f" --reruns {reruns}" if reruns not in (0, 3) else ""  # 3: the default
    setting = "".join(f" --{k.replace('_', '-')} {v}" for k, v in design.setting)
    base = f" --base-seed {design.base_seed}" if design.base_seed else ""
    device = "" if design.device == "cpu" else f" --devices {design.device}"
    return (f"harness variance {design.experiment} --sources {','.join(sources)} --runs {runs}{reruns}"
            f"{setting}{base}{device} --engine {design.engine}")


def _findings(groups: dict[str, list[dict]], design, metric: str) -> list[str]:
    """What the headline metric's spreads say: the reruns, each source against all, one ulp, the split."""
    by_group = {s.group: s for s in spreads(groups, metric)}
    sentences = []
    reruns = groups.get(NONE, [])
    problem = reruns_problem(groups, design)
    if problem:
        sentences.append(f"**Reruns differ**: {problem}.")
    elif len(reruns) >= 2:
        what = "weights and every metric" if design.device == "cpu" else metric
        sentences.append(f"The {len(reruns)} reruns with every seed fixed are identical ({what}).")
    if ALL not in by_group:
        return sentences + [f"No `all` runs at this setting to compare the sources with: `harness run {design.experiment}`."]
    alone = [s for g, s in by_group.items() if g not in (ALL, NONE)]
    kinds: dict[str, list[str]] = {}
    for s in alone:
        ratio = s.ratio[0]
        if s.spread.sd == 0:
            kinds.setdefault("none", []).append(s.group)
        elif s.ratio[1] <= 1 <= s.ratio[2]:
            kinds.setdefault("about", []).append(f"{s.group} ({ratio:.2f})")
        else:
            kinds.setdefault("less" if s.ratio[2] < 1 else "more", []).append(f"{s.group} ({ratio:.2f})")
    parts = [f"{label}: {', '.join(kinds[key])}" for key, label in
             (("about", "about the all-sources spread"), ("less", "less than it"), ("more", "more than it"),
              ("none", "exactly 0 (no run differs)")) if key in kinds]
    sentences.append(f"{metric}, each source alone against all (sd ratio): " + "; ".join(parts) + ".")
    bit = by_group.get("bit")
    if bit is not None:
        ratio, low, high = bit.ratio
        if bit.spread.sd == 0:
            sentences.append(f"One ulp in one weight changes no run's {metric} at all (sd exactly 0).")
        elif low <= 1 <= high:
            sentences.append(f"One ulp in one weight is enough for the full spread (ratio {ratio:.2f}, [{low:.2f}, {high:.2f}]), "
                             "as Summers & Dinneen (ICML 2021) found.")
        else:
            sentences.append(f"One ulp in one weight is not enough here (ratio {ratio:.2f}, [{low:.2f}, {high:.2f}]): "
                             "unlike Summers & Dinneen's ResNet-14 on CIFAR-10, these runs do not amplify it to the full "
                             "spread within their length.")
    split = by_group.get("split")
    if split is not None and split.spread.sd > 0:
        ratio, low, high = split.ratio
        sentences.append(f"The split alone gives {ratio:.2f} of the all-sources sd ([{low:.2f}, {high:.2f}]); "
                         "Bouthillier et al. (MLSys 2021) found data sampling the largest source in general.")
    return sentences
