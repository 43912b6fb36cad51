"""Statistics over seeds, every test from scipy or statsmodels.

Each function answers one question, stated in its docstring:
- `summarize`: where is the seeds' mean (mean, spread, Student-t confidence interval of the mean)?
- `single_draw`: is a published figure, one unseeded run, a plausible draw from the seeds' distribution?
- `paired`: do two arms that share seeds differ (per-seed differences)?
- `unpaired`: do two independent samples differ?
- `equivalence_p`: do two arms' means lie within a margin of each other (TOST)?
- `seeds_to_decide`: how many seeds would settle a comparison that is undecided?
- `sd_interval`, `sd_ratio_interval`: how large is a spread, and how large against another (`harness variance`)?
- `runs_needed`: how many runs would detect a difference of a given size (`harness plan`)?
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats
from statsmodels.stats.nonparametric import rank_compare_2indep
from statsmodels.stats.power import TTestIndPower, TTestPower
from statsmodels.stats.weightstats import ttost_ind, ttost_paired

CONSISTENT, ABOVE, BELOW = "consistent", "above", "below"
LEVEL = 0.95  # every interval and test: 95%, two-sided
POWER = 0.8  # the power the seeds-needed figure is computed for
EMPIRICAL_MIN_SEEDS = 20  # from here on the 2.5-97.5% quantiles of the seeds are worth quoting


def finite(values) -> np.ndarray:
    """The values as floats, NaN and infinities (a diverged run's loss) left out."""
    x = np.asarray(list(values), dtype=float)
    return x[np.isfinite(x)]


def _t_quantile(df: int) -> float:
    return float(scipy_stats.t.ppf((1 + LEVEL) / 2, df=df))


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


def summarize(values) -> Summary:
    """Where is the seeds' mean? Mean, standard deviation and the Student-t 95% confidence interval of the mean."""
    x = finite(values)
    n = len(x)
    if n == 0:
        return Summary(0, *(math.nan,) * 6)
    mean = float(x.mean())
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan, mean, mean)
    if x.min() == x.max():  # every seed the same: exactly that value, no spread (the float mean may be off by an ulp)
        value = float(x[0])
        return Summary(n, value, 0.0, value, value, value, value)
    std = float(x.std(ddof=1))
    half = _t_quantile(n - 1) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half, float(x.min()), float(x.max()))


@dataclass(frozen=True)
class SingleDraw:
    """A published value set against the seeds' distribution of the same metric at the same epoch."""

    seeds: Summary
    published: float
    percentile: float  # the published value's rank among the seeds, 0-100 (ties count half)
    pi_low: float  # 95% prediction interval for one new run: mean ± t·s·sqrt(1 + 1/n)
    pi_high: float
    q_low: float  # the seeds' empirical 2.5% and 97.5% quantiles (NaN below EMPIRICAL_MIN_SEEDS seeds)
    q_high: float
    verdict: str  # consistent, above, below; "" with fewer than two seeds
    seeds_needed: float  # seeds for a one-sample t-test to tell the seeds' mean from the published value


def single_draw(values, published: float) -> SingleDraw:
    """Is the published figure, one unseeded run, a plausible draw from the distribution over seeds?

    Verdict: *consistent* when it lies inside the 95% prediction interval for a single new run (Student
    t, `mean ± t(n-1)·s·sqrt(1 + 1/n)`), its ends included; *above* or *below* otherwise. Unlike the
    confidence interval of the mean, this interval does not shrink to a point as seeds are added: it
    describes where one run falls, which is what the tutorial printed. With one seed there is no spread
    and no verdict; with zero spread the interval is the single value the seeds share.
    """
    x = finite(values)
    s = summarize(x)
    percentile = float(scipy_stats.percentileofscore(x, published, kind="mean")) if len(x) else math.nan
    if s.n < 2:
        return SingleDraw(s, published, percentile, math.nan, math.nan, math.nan, math.nan, "", math.nan)
    half = _t_quantile(s.n - 1) * s.std * math.sqrt(1 + 1 / s.n)
    low, high = s.mean - half, s.mean + half
    q_low, q_high = (np.quantile(x, [(1 - LEVEL) / 2, (1 + LEVEL) / 2]) if s.n >= EMPIRICAL_MIN_SEEDS else (math.nan,) * 2)
    verdict = CONSISTENT if low <= published <= high else ABOVE if published > high else BELOW
    return SingleDraw(s, published, percentile, low, high, float(q_low), float(q_high), verdict,
                      seeds_to_tell_apart(s.mean - published, s.std))


def seeds_to_tell_apart(difference: float, std: float) -> float:
    """How many seeds a two-sided one-sample t-test (5% level, power 0.8) needs to detect that the seeds'
    mean differs from a fixed value by `difference`, at standard deviation `std` (statsmodels' TTestPower).

    Infinite where there is no difference to detect; NaN where the spread is zero (no t-test applies).
    """
    if not std > 0:
        return math.nan
    if difference == 0:
        return math.inf
    test = dict(effect_size=abs(difference) / std, alpha=1 - LEVEL, alternative="two-sided")
    analysis = TTestPower()
    if analysis.power(nobs=2, **test) >= POWER:  # a difference so large that the fewest seeds a t-test takes do
        return 2.0
    return _quiet(lambda: analysis.solve_power(power=POWER, **test))


@dataclass(frozen=True)
class Paired:
    """B − A over the seeds both arms have: the differences' mean, its interval, tests and effect size."""

    n: int
    mean: float
    ci_low: float
    ci_high: float
    t_p: float  # paired t-test (scipy.stats.ttest_rel), two-sided
    wilcoxon_p: float  # Wilcoxon signed-rank test (scipy.stats.wilcoxon), two-sided
    effect: float  # Cohen's d_z: mean difference over the differences' standard deviation
    wilcoxon_floor: float  # the smallest p-value the signed-rank test can give with n pairs


def paired(a, b) -> Paired:
    """Do two arms that share seeds differ? `a[i]` and `b[i]` are the same seed's values.

    Pairing removes what a seed does to both arms (split, shuffling order, initial weights). NaN where a
    test is undefined: fewer than two pairs, or differences that are all equal (zero spread).
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    diff = b - a
    n = len(diff)
    nan = math.nan
    if n == 0:
        return Paired(0, nan, nan, nan, nan, nan, nan, nan)
    mean = float(diff.mean())
    if n < 2:
        return Paired(n, mean, nan, nan, nan, nan, nan, nan)
    floor = _quiet(lambda: scipy_stats.wilcoxon(np.arange(1.0, n + 1)).pvalue)  # every difference one sign
    wilcoxon_p = signed_rank_p(b, a)
    sd = float(diff.std(ddof=1))
    if sd == 0:
        return Paired(n, mean, mean, mean, nan, wilcoxon_p, nan, floor)
    result = scipy_stats.ttest_rel(b, a)
    interval = result.confidence_interval(LEVEL)
    return Paired(n, mean, float(interval.low), float(interval.high), float(result.pvalue), wilcoxon_p, mean / sd, floor)


@dataclass(frozen=True)
class Unpaired:
    """B − A for two independent samples: difference of means, Welch's t-test and interval, Mann-Whitney U."""

    a: Summary
    b: Summary
    difference: float
    welch_p: float
    mann_whitney_p: float
    ci_low: float = math.nan  # Welch's 95% interval of the difference of means
    ci_high: float = math.nan


def unpaired(a, b) -> Unpaired:
    """Do two independent samples differ? Welch's t-test (unequal variances) on the means, with its
    interval of the difference, and the Mann-Whitney U test on the distributions, both two-sided (NaN
    below two values a side)."""
    a, b = finite(a), finite(b)
    sa, sb = summarize(a), summarize(b)
    if len(a) < 2 or len(b) < 2:
        return Unpaired(sa, sb, sb.mean - sa.mean, math.nan, math.nan)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # scipy's "nearly identical data": zero spread gives NaN, as it should
        welch = scipy_stats.ttest_ind(b, a, equal_var=False)
        interval = welch.confidence_interval(LEVEL)
    mann_whitney = float(scipy_stats.mannwhitneyu(b, a, alternative="two-sided").pvalue)
    return Unpaired(sa, sb, sb.mean - sa.mean, float(welch.pvalue), mann_whitney, float(interval.low), float(interval.high))


def equivalence_p(a, b, margin: float, paired: bool) -> float:
    """Do the means of A and B lie within ±margin of each other? The two one-sided tests (TOST) of
    statsmodels, on the pairs' differences (`ttost_paired`) or on two independent samples with unequal
    variances (`ttost_ind`). Below 0.05: equivalent. 1 where the margin is zero (nothing is equivalent).
    """
    if not margin > 0:
        return 1.0
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if paired:
        return _quiet(lambda: ttost_paired(b, a, -margin, margin)[0])
    return _quiet(lambda: ttost_ind(b, a, -margin, margin, usevar="unequal")[0])


def seeds_to_decide(difference: float, std: float, margin: float, paired: bool) -> int | None:
    """Seeds per side that would decide a comparison, at the observed difference and spread, with 80% power.

    Within the margin the question is equivalence: TOST rejects when both one-sided tests do, and the
    bound nearer the difference decides, so it takes about the seeds of a one-sided t-test at effect
    (margin − |difference|) / std. Beyond it the question is a difference: a two-sided t-test at
    |difference| / std. None where no number of seeds would (no margin, or no difference).
    """
    if abs(difference) < margin:
        effect, alternative = (margin - abs(difference)) / std, "larger"
    elif difference != 0:
        effect, alternative = abs(difference) / std, "two-sided"
    else:
        return None
    power = TTestPower() if paired else TTestIndPower()
    try:
        n = power.solve_power(effect_size=effect, alpha=1 - LEVEL, power=POWER, alternative=alternative)
    except (ValueError, RuntimeError):
        return None
    n = float(np.asarray(n).item())
    return max(2, math.ceil(n)) if np.isfinite(n) else None


def signed_rank_p(b, a) -> float:
    """Wilcoxon's signed-rank p of the pairs' differences b − a, two-sided; NaN where every pair is tied
    (no ranks to test)."""
    b, a = np.asarray(b, dtype=float), np.asarray(a, dtype=float)
    return _quiet(lambda: scipy_stats.wilcoxon(b, a).pvalue) if (b != a).any() else math.nan


def _quiet(compute) -> float:
    """A scipy p-value with its warnings about degenerate samples (identical values) silenced; NaN stays NaN."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return float(compute())


@dataclass(frozen=True)
class Spread:
    """A standard deviation over n runs with its 95% interval (NaN where n < 2)."""

    n: int
    mean: float
    sd: float
    low: float
    high: float


def sd_interval(values) -> Spread:
    """How large is the spread? The sample standard deviation and its chi-square 95% interval,
    sqrt((n-1) s^2 / chi2 quantiles), exact for normal data. A spread of exactly 0 has the interval [0, 0]."""
    x = finite(values)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    if n < 2:
        return Spread(n, mean, math.nan, math.nan, math.nan)
    sd, df = (float(x.std(ddof=1)) if np.ptp(x) > 0 else 0.0), n - 1  # equal values: exactly 0, not rounding's 1e-17
    upper, lower = scipy_stats.chi2.ppf([(1 + LEVEL) / 2, (1 - LEVEL) / 2], df)
    return Spread(n, mean, sd, sd * math.sqrt(df / upper), sd * math.sqrt(df / lower))


def sd_ratio_interval(a: Spread, b: Spread) -> tuple[float, float, float]:
    """How large is spread a against spread b (independent runs)? sd_a / sd_b and its 95% interval from
    the F distribution of (s_a^2 / s_b^2) / (sigma_a^2 / sigma_b^2) on (n_a - 1, n_b - 1) degrees of
    freedom. NaN where either has fewer than two runs or b's spread is 0."""
    if a.n < 2 or b.n < 2 or not b.sd > 0:
        return (math.nan,) * 3
    ratio = a.sd / b.sd
    f_high, f_low = scipy_stats.f.ppf([(1 + LEVEL) / 2, (1 - LEVEL) / 2], a.n - 1, b.n - 1)
    return ratio, ratio / math.sqrt(f_high), ratio / math.sqrt(f_low)


@dataclass(frozen=True)
class RunsNeeded:
    """Runs per arm that detect a difference `delta` with the given power, by test (None: no number does;
    NaN: not computable from these runs)."""

    delta: float
    sd: float  # the spread the t tests assume (pooled over the arms)
    two_sample: float
    paired: float  # from the spread of the per-seed differences; NaN without shared seeds
    sd_difference: float
    p_greater: float  # P(A + delta > A') + P(=)/2 among the runs: the effect Noether's formula is for
    noether: float
    step: float  # the smallest gap between A's distinct values; Noether's answer is NaN for a delta below it


def runs_needed(a, delta: float, b=None, paired_differences=None, power: float = POWER) -> RunsNeeded:
    """How many runs per arm would detect a difference `delta` (in the metric's units) at 5% two-sided,
    with `power`, at the spread these runs show?

    - two-sample t (statsmodels' TTestIndPower) at effect delta / sd, the sd pooled over `a` and `b`;
    - paired t (TTestPower) at effect delta / sd of `paired_differences` (B − A over shared seeds);
    - Noether's formula for the Mann-Whitney test of P(A > B), the effect Bouthillier et al. recommend:
      n per arm = (z_{1-alpha/2} + z_{power})^2 / (6 (p - 1/2)^2), where p = P(A + delta > A') is
      estimated from `a`'s runs against themselves shifted by delta (statsmodels' rank_compare_2indep,
      ties counted half), which holds for discrete and skewed metrics alike.
    """
    arms = [finite(a)] + ([finite(b)] if b is not None else [])
    dof = sum(len(x) - 1 for x in arms)
    sd = math.sqrt(sum((len(x) - 1) * x.var(ddof=1) for x in arms if len(x) > 1) / dof) if dof > 0 else math.nan
    diffs = finite(paired_differences) if paired_differences is not None else np.array([])
    sd_difference = float(diffs.std(ddof=1)) if len(diffs) > 1 else math.nan
    p_greater = noether = math.nan
    steps = np.diff(np.unique(arms[0]))
    step = float(steps.min()) if len(steps) else math.nan
    # Below the smallest step between the runs' values (one test sample, on a small test set), shifting
    # every run by delta changes no order but turns each tie into a win: P(A > B) would be overstated.
    if len(arms[0]) > 1 and delta > 0 and not delta < step:
        p_greater = _quiet(lambda: rank_compare_2indep(arms[0] + delta, arms[0]).prob1)
        if p_greater != 0.5:
            z = scipy_stats.norm.ppf(1 - (1 - LEVEL) / 2) + scipy_stats.norm.ppf(power)
            noether = float(max(2, math.ceil(z**2 / (6 * (p_greater - 0.5) ** 2))))
    return RunsNeeded(delta, sd, _t_runs(TTestIndPower(), delta, sd, power), _t_runs(TTestPower(), delta, sd_difference, power),
                      sd_difference, p_greater, noether, step)


def _t_runs(analysis, delta: float, sd: float, power: float) -> float:
    """Runs (per arm, or pairs) a t test of `analysis` needs at effect delta / sd; 2 at least; NaN without a spread."""
    if not sd > 0 or not delta > 0:
        return math.nan
    effect = delta / sd
    # So large an effect that the fewest runs a t test takes do. Power grows with the effect, and the
    # noncentral t gives NaN far out: an effect of 20 stands for any larger one.
    if analysis.power(min(effect, 20.0), 2, 1 - LEVEL) >= power:
        return 2.0
    n = _quiet(lambda: analysis.solve_power(effect_size=effect, alpha=1 - LEVEL, power=power, alternative="two-sided"))
    return float(max(2, math.ceil(n))) if math.isfinite(n) else math.nan
