"""One verdict per printed run: could one run of its recipe have printed it?

Each tutorial printed one unseeded run. Its recipe declares, before any run, the one test that judges it
(`[published] primary`): the whole curve where the tutorial printed one, else the figure it states as its
result. Its other printed figures are described, not judged. The test ranks the printed run among the
seeds (`stats.rank`, or `stats.whole_curve` for a curve), with the seeds read at the precision the figures
were printed to (`[published] decimals`); every seed that reached the printed epochs counts, a run stopped
at the last printed epoch as well as a full one (the two are bit for bit the same on those epochs).

Each printed run is its own question, asked once at 5%: no correction across runs, so that each can be
rejected on its own seeds. The verdict:
- *inconsistent*: the test rejects;
- *consistent*: it does not, with the least departure it could have caught 4 times in 5 at these seeds,
  computed the way it decides (`stats.detectable_departure`);
- *undecided*: fewer seeds than the test needs to reject at all (39), with the seeds it needs to catch a
  run 3 sd out 4 times in 5 (`stats.seeds_needed`: 79).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..catalogue import metric_range
from ..rows import row_overrides
from ..stats import LEVEL, POWER, RANK_MIN_VALUES, Rank, detectable_departure, rank, rounded, seeds_needed, summarize, whole_curve
from .loading import Results, at_epoch

INCONSISTENT, CONSISTENT, UNDECIDED = "inconsistent", "consistent", "undecided"
SHIFT = 3.0  # in seed standard deviations: the departure a decided verdict could catch, with POWER


@dataclass
class RunVerdict:
    """A printed run's primary test against one device x engine's seeds."""

    exp_id: str
    device: str
    engine: str
    test: str  # "curve" or "figure"
    metric: str
    epochs: tuple  # the printed epochs the test reads
    published: float  # the figure (NaN for a curve)
    n: int  # seeds that reached the printed epochs and ended ok
    failed: int  # those that did not end ok
    rank: Rank  # the printed figure's rank (a curve: its score's) among the seeds'
    score: float  # a curve's mean z over its epochs (NaN for a figure)
    sd: float  # the seeds' spread, in the statistic's units (a figure: the metric's; a curve: the scores')
    below: float  # the least departure below / above that the test catches 4 times in 5 at these seeds,
    above: float  # in the statistic's units; inf where none can be caught
    above_all: int = 0  # a curve: epochs where the printed value lies above (below) every seed
    below_all: int = 0

    @property
    def cell(self) -> str:
        return f"{self.exp_id} [{self.device}, {self.engine}]"

    @property
    def verdict(self) -> str:
        if self.n < 2:
            return ""
        if self.n < RANK_MIN_VALUES:
            return UNDECIDED
        return INCONSISTENT if self.rank.p <= 1 - LEVEL else CONSISTENT

    @property
    def needs(self) -> int | None:
        """The seeds this test needs to catch a run SHIFT sd out with POWER, planned for normal seeds."""
        return seeds_needed(SHIFT, POWER)


def primary_test(exp) -> str:
    """What judges a printed run: its recipe's declared test, else the curve where one was printed."""
    declared = exp.published.get("primary")
    return declared or ("curve" if exp.published.get("curve_epochs") else "figure")


def printed_epochs(exp) -> tuple:
    if primary_test(exp) == "curve":
        return tuple(exp.published["curve_epochs"])
    return (exp.published["epoch"],)


def seeds_reaching(runs: pd.DataFrame, exp, last_epoch: int) -> pd.DataFrame:
    """The runs of `exp` that trained its recipe at least to `last_epoch`: faithful runs, and runs whose
    only change to the recipe is to stop earlier, no earlier than that (one row per seed: a faithful one
    first)."""
    mine = runs[runs["experiment"] == exp.id]
    stopped_late = mine["overrides"].map(lambda text: _stopped_at(text) >= last_epoch).astype(bool)
    keep = mine["faithful"].astype(bool) | stopped_late
    chosen = mine[keep].sort_values("faithful", ascending=False, kind="stable")
    return chosen.drop_duplicates(["device", "engine", "seed"])


def _stopped_at(overrides: str) -> float:
    """The epochs of a run whose only override is its epochs; 0 for any other."""
    named = row_overrides({"overrides": overrides}) or {}
    return float(named["epochs"]) if set(named) == {"epochs"} else 0.0


def run_verdicts(results: Results, registry: dict) -> list[RunVerdict]:
    """Every printed run's verdict, per device x engine where it has seeds."""
    verdicts = []
    for exp in registry.values():
        if not exp.published:
            continue
        epochs = printed_epochs(exp)
        chosen = seeds_reaching(results.runs, exp, max(epochs))
        for (device, engine), group in chosen.groupby(["device", "engine"], sort=True):
            verdicts.append(run_verdict(exp, device, engine, group, results.epochs))
    return verdicts


def run_verdict(exp, device: str, engine: str, group: pd.DataFrame, epoch_rows: pd.DataFrame) -> RunVerdict:
    ok = group[group["status"] == "ok"]
    decimals = exp.published.get("decimals")
    test = primary_test(exp)
    common = dict(exp_id=exp.id, device=device, engine=engine, test=test, epochs=printed_epochs(exp),
                  failed=len(group) - len(ok))
    if test == "curve":
        metric = exp.published["curve_metric"]
        by_epoch = pd.DataFrame({e: at_epoch(ok, epoch_rows, metric, e) for e in common["epochs"]}).dropna()
        seeds = rounded(by_epoch.to_numpy(dtype=float), decimals).reshape(len(by_epoch), len(common["epochs"]))
        draw = whole_curve(seeds, exp.published["curve_values"])
        scores = np.asarray(draw.seed_scores)
        sd = float(scores.std(ddof=1)) if len(scores) > 1 else math.nan
        below, above = detectable_departure(scores)
        return RunVerdict(**common, metric=metric, published=math.nan, n=draw.n, rank=draw.rank, score=draw.score, sd=sd,
                          below=below, above=above, above_all=draw.above_all, below_all=draw.below_all)
    metric, value = exp.published["metric"], exp.published["value"]
    seeds = rounded(at_epoch(ok, epoch_rows, metric, common["epochs"][0]).to_numpy(dtype=float), decimals)
    below, above = detectable_departure(seeds, bounds=metric_range(metric), decimals=decimals)
    return RunVerdict(**common, metric=metric, published=value, n=len(seeds), rank=rank(seeds, value), score=math.nan,
                      sd=summarize(seeds).std, below=below, above=above)


@dataclass
class Described:
    """A printed figure that its run's primary test does not judge, set beside the seeds: a description."""

    exp_id: str
    device: str
    engine: str
    metric: str
    epoch: int
    published: float
    seeds: np.ndarray  # at the printed precision

    @property
    def shares(self) -> tuple[int, int, int]:
        """Seeds below, equal to and above the printed figure."""
        x = self.seeds
        return int((x < self.published).sum()), int((x == self.published).sum()), int((x > self.published).sum())


def described_figures(results: Results, registry: dict) -> list[Described]:
    """The printed figures the primary tests do not judge (a curve's test judges every figure on it)."""
    found = []
    for exp in registry.values():
        if not exp.published:
            continue
        test, judged = primary_test(exp), printed_epochs(exp)
        figures = [f for i, f in enumerate(exp.published_figures)
                   if not (test == "figure" and i == 0)  # the headline figure: the one the test judges
                   and not (test == "curve" and f["metric"] == exp.published["curve_metric"] and f["epoch"] in judged)]
        if not figures:
            continue
        chosen = seeds_reaching(results.runs, exp, max(f["epoch"] for f in figures))
        for (device, engine), group in chosen.groupby(["device", "engine"], sort=True):
            ok = group[group["status"] == "ok"]
            for f in figures:
                seeds = rounded(at_epoch(ok, results.epochs, f["metric"], f["epoch"]).to_numpy(dtype=float),
                                exp.published.get("decimals"))
                found.append(Described(exp.id, device, engine, f["metric"], f["epoch"], f["value"], seeds))
    return found
