"""Where the spread over seeds comes from (`harness variance`), and how many runs a question needs (`harness plan`).

`harness variance` runs, per experiment: N ordinary seeds (every source varying at once, the tutorials'
single seed), then for each source N runs in which only that source's seed changes, the others held at
a base seed (`--vary`), and a few reruns in which nothing changes. The answer per metric is each
source's standard deviation with its chi-square interval and its ratio to the all-sources one with an
F interval. Single-source variances do not add up to the all-sources one (training amplifies any
perturbation to the full spread, as Summers & Dinneen, ICML 2021, found): each says what that source
alone does. The reruns check the premise: on the CPU their spread must be exactly 0.

All of it reads the results directory through `harness.rows`, as every command does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from . import rows as counted_rows
from .errors import HarnessError
from .seeds import SOURCES
from .stats import RunsNeeded, Spread, paired_sd_ratio_interval, runs_needed, sd_interval, sd_ratio_interval

ALL, NONE = "all", "none"


def measured(exp) -> str:
    """The figure that says how a recipe's model generalises, which the findings and plans are about: its test
    accuracy (a classifier), or a regression's first declared metric, else its loss."""
    return exp.metrics[0].replace("train_", "test_", 1)


def metrics_of(exp) -> tuple[str, ...]:
    """What a variance design tabulates: `measured`, on the validation split too, the test figures of the metrics
    the recipe declares (a regression's, its own), and the test loss."""
    test = measured(exp)
    return tuple(dict.fromkeys((test.replace("test_", "valid_", 1), test, *exp.declared_test_metrics, "test_loss")))


@dataclass(frozen=True)
class Design:
    """One experiment's variance design as its rows record it: where it ran, its quick-run setting (the
    overrides every group shares) and the base seed the fixed sources take."""

    experiment: str
    device: str
    engine: str
    setting: tuple  # sorted (key, value) pairs of the shared overrides, () for the full recipe
    base_seed: int

    @property
    def label(self) -> str:
        setting = ", ".join(f"{k}={v}" for k, v in self.setting)
        return f"{self.experiment} [{self.device}, {self.engine}" + (f", {setting}" if setting else "") + f", base seed {self.base_seed}]"


def _split_overrides(row: dict) -> tuple[str, int | None, tuple]:
    """(the group a row belongs to, its base seed, the overrides besides the varied source)."""
    overrides = dict(counted_rows.row_overrides(row) or {})
    vary, base_seed = overrides.pop("vary", None), overrides.pop("base_seed", None)
    return vary or ALL, base_seed, tuple(sorted(overrides.items()))


def is_varied(row: dict) -> bool:
    """Whether a row varies one source of randomness (or none) rather than the tutorials' single seed."""
    return _split_overrides(row)[0] != ALL


def designs(runs: list[dict]) -> list[Design]:
    """Every variance design that rows with a varied source belong to."""
    found = set()
    for row in runs:
        group, base_seed, setting = _split_overrides(row)
        if group != ALL:
            found.add(Design(row["experiment"], row["device"], row["engine"], setting, base_seed))
    return sorted(found, key=lambda d: (d.experiment, d.device, d.engine, d.setting, d.base_seed))


def design_groups(runs: list[dict], design: Design) -> dict[str, list[dict]]:
    """The ok rows of each group of `design`: `all` (the ordinary seeds at its setting), each source, `none`."""
    groups: dict[str, list[dict]] = {}
    for row in runs:
        if (row["experiment"], row["device"], row["engine"], row["status"]) != (design.experiment, design.device, design.engine, "ok"):
            continue
        group, base_seed, setting = _split_overrides(row)
        if setting == design.setting and (group == ALL or base_seed == design.base_seed):
            groups.setdefault(group, []).append(row)
    return {g: groups[g] for g in (ALL, *SOURCES, "kernels", NONE) if g in groups}


@dataclass(frozen=True)
class SourceSpread:
    group: str
    spread: Spread
    ratio: tuple[float, float, float]  # to the all-sources sd, with its 95% interval


def spreads(groups: dict[str, list[dict]], metric: str) -> list[SourceSpread]:
    """Each group's spread of `metric`, against the all-sources spread. A source varied alone with seed s
    shares that source's draw with the ordinary run of seed s, so the two pair up by seed and their sds are
    compared as paired (`stats.paired_sd_ratio_interval`); the other groups' runs share nothing with them."""
    values = {g: {int(r["seed"]): float(r[metric]) for r in rows if r[metric] != ""} for g, rows in groups.items()}
    found = {g: sd_interval(v.values()) for g, v in values.items()}
    reference = found.get(ALL)

    def ratio(g: str) -> tuple[float, float, float]:
        if reference is None or g == ALL:
            return (math.nan,) * 3
        if g in SOURCES:
            seeds = sorted(values[g].keys() & values[ALL].keys())
            return paired_sd_ratio_interval([values[g][s] for s in seeds], [values[ALL][s] for s in seeds])
        return sd_ratio_interval(found[g], reference)

    return [SourceSpread(g, s, ratio(g)) for g, s in found.items() if s.n]


def reading(source: SourceSpread) -> str:
    """What a source's spread says against the all-sources one, in words."""
    if source.group == ALL:
        return "every source at once"
    if source.spread.n >= 2 and source.spread.sd == 0:
        return "none: every run gave the same value"
    ratio, low, high = source.ratio
    if math.isnan(ratio):
        return ""
    if low <= 1 <= high:
        return "about the all-sources spread"
    return "less than the all-sources spread" if high < 1 else "more than the all-sources spread"


def reruns_problem(groups: dict[str, list[dict]], design: Design) -> str | None:
    """On the CPU, reruns with every seed fixed must agree exactly (weights and every metric): why not, if they do not."""
    reruns = groups.get(NONE, [])
    if design.device != "cpu" or len(reruns) < 2:
        return None
    for other in reruns[1:]:
        parting = counted_rows.first_parting(reruns[0], other)
        if parting:
            return (f"{design.label}: {len(reruns)} reruns with every seed fixed differ ({parting['column']} {parting['a']} vs "
                    f"{parting['b']}): the CPU run is not deterministic (see docs/variance.md)")
    return None


def run_variance(experiments, sources, runs: int, reruns: int, base_seed: int, options, log=print, **matrix) -> int:
    """The runs of every group, through `runner.run_matrix` (resumable, any engine and executor); 0 when
    all ended ok, 1 otherwise."""
    from .runner import run_matrix

    status = 0
    for vary, count in ((None, runs), *((s, runs) for s in sources), (NONE, reruns)):
        log(f"variance: {'every source (the ordinary seeds)' if vary is None else 'nothing varied (reruns)' if vary == NONE else vary + ' alone'}, "
            f"{count} run(s) each")
        group_options = options if vary is None else replace(options, vary=vary, base_seed=base_seed)
        status = max(status, run_matrix(experiments, list(range(count)), options=group_options, log=log, **matrix))
    return status


def variance_tables(results_dir, registry: dict, experiments, options, base_seed: int, devices, engine: str) -> tuple[list, list[str]]:
    """(design, groups) for each experiment x device asked for, and the rerun problems found."""
    counted = counted_rows.count(results_dir, registry)
    setting = tuple(sorted(options.overrides.items()))
    found, problems = [], []
    for exp in experiments:
        for device in devices:
            design = Design(exp.id, device, engine, setting, base_seed)
            groups = design_groups(counted.runs, design)
            if groups:
                found.append((design, groups))
                problem = reruns_problem(groups, design)
                if problem:
                    problems.append(problem)
    return found, problems


def spread_rows(groups: dict[str, list[dict]], metric: str, show) -> list[list]:
    """Table rows (source, runs, mean, sd, its interval, ratio to all, its interval, reading); `show` formats a value."""
    rows = []
    for s in spreads(groups, metric):
        spread, (ratio, low, high) = s.spread, s.ratio
        interval = f"[{show(spread.low)}, {show(spread.high)}]" if not math.isnan(spread.low) else "–"
        ratio_text = f"{ratio:.2f}" if not math.isnan(ratio) else "–"
        ratio_interval = f"[{low:.2f}, {high:.2f}]" if not math.isnan(low) else "–"
        rows.append([s.group, spread.n, show(spread.mean), show(spread.sd) if not math.isnan(spread.sd) else "–", interval,
                     ratio_text, ratio_interval, reading(s)])
    return rows


SPREAD_HEADERS = ["varied", "runs", "mean", "sd", "sd 95% CI", "sd / all", "ratio 95% CI", "reading"]
NOT_ADDITIVE = ("Each source's spread is that of runs in which only it changes; they do not add up to the all-sources "
                "variance (training amplifies any perturbation towards the full spread), so read each against `all`, not as a share.")


def metric_values(rows: list[dict], metric: str) -> dict[int, float]:
    return {int(r["seed"]): float(r[metric]) for r in rows if r[metric] != ""}


def plan_answer(a_rows: list[dict], metric: str, delta: float, b_rows: list[dict] | None = None, power: float = 0.8) -> RunsNeeded:
    """`stats.runs_needed` on the runs of one experiment (or two, paired over the seeds they share)."""
    return plan_from_values(metric_values(a_rows, metric), metric, delta,
                            metric_values(b_rows, metric) if b_rows is not None else None, power)


def plan_from_values(a: dict[int, float], metric: str, delta: float, b: dict[int, float] | None = None,
                     power: float = 0.8) -> RunsNeeded:
    """`plan_answer` on values by seed."""
    if delta <= 0:
        raise HarnessError(f"--delta must be positive, got {delta}: the smallest difference worth detecting, in {metric}'s units")
    if len(a) < 2 or (b is not None and len(b) < 2):
        raise HarnessError(f"plan: fewer than two finished runs with {metric} to take a spread from; run more seeds first")
    shared = sorted(set(a) & set(b)) if b is not None else []
    differences = [b[s] - a[s] for s in shared] if b is not None else None
    return runs_needed(list(a.values()), delta, list(b.values()) if b is not None else None, differences, power)


def ordinary_rows(runs: list[dict], exp_id: str, device: str, engine: str, setting: dict) -> list[dict]:
    """An experiment's ok rows under the tutorials' single seed, at a quick-run setting ({}: the full recipe):
    the `all` group of its design."""
    return design_groups(runs, Design(exp_id, device, engine, tuple(sorted(setting.items())), 0)).get(ALL, [])
