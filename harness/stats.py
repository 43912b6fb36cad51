"""Statistics over seeds: mean, spread, a Student-t confidence interval, and the verdict against a
published value."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

REPRODUCED, BETTER, WORSE, NO_PUBLISHED = "reproduced", "better", "worse", "no published value"


@dataclass(frozen=True)
class Summary:
    """A metric over n runs. With one run the spread and interval are undefined (NaN)."""

    n: int
    mean: float
    std: float  # sample standard deviation (ddof=1)
    ci_low: float
    ci_high: float
    min: float
    max: float


def summarize(values, confidence: float = 0.95) -> Summary:
    """Mean, standard deviation and the Student-t confidence interval of the mean of `values`."""
    x = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    n = len(x)
    if n == 0:
        return Summary(0, *(math.nan,) * 6)
    mean = float(x.mean())
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan, mean, mean)
    std = float(x.std(ddof=1))
    half = float(scipy_stats.t.ppf((1 + confidence) / 2, df=n - 1)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half, float(x.min()), float(x.max()))


def higher_is_better(metric: str) -> bool:
    return metric.endswith("_acc")


def verdict(summary: Summary, published: float | None, tolerance: float, metric: str) -> str:
    """reproduced: the published value lies in the confidence interval, or within the registry's tolerance
    of the mean; otherwise better or worse (accuracy higher is better, loss lower). No runs: no verdict."""
    if published is None:
        return NO_PUBLISHED
    if summary.n == 0:
        return ""
    in_ci = summary.n > 1 and summary.ci_low <= published <= summary.ci_high
    if in_ci or abs(summary.mean - published) <= tolerance + 1e-12:  # 1e-12: float rounding of the difference
        return REPRODUCED
    above = summary.mean > published
    return BETTER if above == higher_is_better(metric) else WORSE


def welch_p_value(a, b) -> float:
    """Two-sided p-value of Welch's t-test that two samples share a mean (NaN below two values each)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return math.nan
    return float(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)
