"""Statistics over seeds, every test from scipy or statsmodels.

Each function answers one question, stated in its docstring:
- `summarize`: where is the seeds' mean (mean, spread, Student-t confidence interval of the mean)?
- `rank`, `whole_curve`: is a printed figure, or a whole printed curve (one unseeded run), a plausible draw
  from the seeds' distribution? `rounded`: at the precision it was printed.
- `detectable_departure`: how far out must one run lie for that test to see it, at the seeds present?
- `detectable_shift`, `seeds_needed`: the same for normally spread seeds, and the seeds a test needs (planning).
- `paired`: do two arms that share seeds differ (per-seed differences)?
- `unpaired`: do two independent samples differ? `welch_interval`: by how much do their means differ?
- `equivalence_p`: do two arms' means lie within a margin of each other (TOST)?
- `seeds_to_decide`: how many seeds would settle a comparison that is undecided?
- `sd_interval`, `paired_sd_ratio_interval`: how large is a spread, and how large against another whose runs
  pair up with its own (`harness variance`)?
- `runs_needed`: how many runs would detect a difference of a given size (`harness plan`)?
- `holm`: the p-values of one family of tests, adjusted for their number.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import integrate, optimize
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower, TTestPower
from statsmodels.stats.weightstats import ttost_ind, ttost_paired

CONSISTENT, ABOVE, BELOW = "consistent", "above", "below"
LEVEL = 0.95  # every interval and test: 95%, two-sided
POWER = 0.8  # the power every detectable shift and run count is computed for
MAX_RUNS = 2**40  # beyond this many runs per arm a count is no answer


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
class Rank:
    """Where one value falls among n others: how many lie below, on and above it, and the two-sided
    conformal p-value of its rank."""

    n: int
    below: int
    tied: int
    above: int
    p: float  # min(1, 2 (1 + #others at least as extreme on its side) / (n + 1)); NaN with no others

    @property
    def side(self) -> str:
        """above or below when the rank test rejects at 5%, else consistent."""
        if not self.p <= 1 - LEVEL:
            return CONSISTENT
        return ABOVE if self.above < self.below else BELOW


def rank(values, value: float) -> Rank:
    """Is `value` one more draw from the distribution `values` were drawn from? Its rank among them.

    If the n + 1 values are exchangeable (as runs of one recipe under different seeds are), the number of
    the n that lie at or above the new one is uniform over its possible ranks, so P((1 + #at or above) /
    (n + 1) <= a) <= a for every a, with ties, on discrete and skewed data alike (the conformal p-value;
    Vovk et al. 2005). Two-sided: twice the smaller tail. The least p-value n values can give is
    2 / (n + 1): at 5% this test cannot reject below 39 of them.
    """
    x = finite(values)
    n = len(x)
    below, above = int((x < value).sum()), int((x > value).sum())
    tied = n - below - above
    p = min(1.0, 2 * (1 + min(below, above) + tied) / (n + 1)) if n else math.nan
    return Rank(n, below, tied, above, p)


RANK_MIN_VALUES = 39  # the fewest values against which `rank` can reject at 5%: 2 / (39 + 1) = 0.05


def rounded(values, decimals: int | None) -> np.ndarray:
    """Values as a tutorial printed them, to `decimals` places (None: as recorded), so that a figure printed
    to 0.1 pp is ranked among seeds read to 0.1 pp too: a seed that prints the same ties with it."""
    x = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=float)
    return x if decimals is None else np.round(x, decimals)


def detectable_departure(values, power: float = POWER, bounds: tuple[float, float] = (-math.inf, math.inf),
                         decimals: int | None = None) -> tuple[float, float]:
    """How far below and above these seeds must one run lie for `rank` to say so with `power`?

    Computed the way the test decides, from the seeds present and nothing assumed of their shape: a run
    is one more draw, each seed's own value moved by d (kept within `bounds`, a printed accuracy cannot
    pass 100%, and rounded as the print was), ranked against all n seeds; the power at d is the share of
    such runs the test rejects, and the answer the least d where it reaches `power`, on each side. inf
    where none does: below 39 seeds, or where the metric's range ends first (seeds at 100% accuracy).
    """
    x = np.sort(rounded(finite(values), decimals))
    n = len(x)
    if n < RANK_MIN_VALUES:
        return math.inf, math.inf
    span = float(x[-1] - x[0]) + max(float(np.std(x)), 1e-12)  # moved this far, every run lies beyond every seed

    def rejected_share(d: float) -> float:
        moved = rounded(np.clip(x + d, *bounds), decimals)
        at_or_beyond = n - np.searchsorted(x, moved, side="left") if d > 0 else np.searchsorted(x, moved, side="right")
        return float(np.mean(2 * (1 + at_or_beyond) / (n + 1) <= 1 - LEVEL))

    found = []
    for sign in (-1, 1):
        if rejected_share(sign * span) < power:
            found.append(math.inf)
            continue
        low, high = 0.0, span
        for _ in range(60):  # the share is a step function of d: bisect to well below any step
            middle = (low + high) / 2
            low, high = (low, middle) if rejected_share(sign * middle) >= power else (middle, high)
        found.append(high)
    return found[0], found[1]


def full_seed_counts(most: int) -> range:
    """The seed counts up to `most` whose n + 1 is a multiple of 40 (39, 79, 119, ...): the rank test's
    power is a sawtooth in n, and these use it fully."""
    return range(RANK_MIN_VALUES, most + 1, RANK_MIN_VALUES + 1)


def seeds_needed(shift: float = 3.0, power: float = POWER) -> int | None:
    """The fewest seeds at which `rank` catches one run `shift` standard deviations from normally spread
    seeds with `power` (`detectable_shift`), taken among counts whose n + 1 is a multiple of 40 (39, 79,
    119, ...): the rank test's power is a sawtooth in n, and those counts use it fully. None where no
    count does: one run is a blunt probe, and no number of seeds brings its reach below about 2.8 sd at
    80% power."""
    z = scipy_stats.norm.ppf((1 + LEVEL) / 2)
    if scipy_stats.norm.cdf(shift - z) + scipy_stats.norm.cdf(-shift - z) < power:  # what unlimited seeds would give
        return None
    for n in full_seed_counts(100_000):
        if detectable_shift(n, power) <= shift:
            return n
    return None


def order_statistic_interval(values) -> tuple[float, float, float]:
    """The seeds' range that holds one new run with probability at least 95%, or as near as n allows:
    [x_(j), x_(n+1-j)] with j = max(1, floor(0.025 (n + 1))), which covers a new exchangeable draw with
    probability (n + 1 - 2j) / (n + 1). Both ends are values a run gave (numpy's `inverted_cdf` quantiles)."""
    x = np.sort(finite(values))
    n = len(x)
    if n < 2:
        return math.nan, math.nan, math.nan
    j = max(1, math.floor((1 - LEVEL) / 2 * (n + 1)))
    low, high = np.quantile(x, [j / n, (n + 1 - j) / n], method="inverted_cdf")
    return float(low), float(high), (n + 1 - 2 * j) / (n + 1)


@functools.lru_cache(maxsize=None)
def detectable_shift(n: int, power: float = POWER) -> float:
    """How far from the seeds' mean must one run lie, in the seeds' standard deviations, for `rank` against
    n normally spread seeds to say so with `power` (5%, two-sided)? With k = the most seeds that may lie at
    or beyond the run for p <= 5%, its power is E_z[Binomial(n, P(seed beyond z + shift)).cdf(k)] over the
    run's own draw z, integrated numerically. Infinite below 39 seeds, where the test cannot reject; about
    2.8 with unlimited seeds. For planning (`seeds_needed`): a verdict reports `detectable_departure`, from
    the seeds' own shape."""
    if n < RANK_MIN_VALUES:
        return math.inf
    k = math.floor((1 - LEVEL) / 2 * (n + 1) - 1 + 1e-9)

    def power_at(shift):
        def reject(z):
            beyond_high, beyond_low = scipy_stats.norm.sf(z + shift), scipy_stats.norm.cdf(z + shift)
            return scipy_stats.norm.pdf(z) * (scipy_stats.binom.cdf(k, n, beyond_high) + scipy_stats.binom.cdf(k, n, beyond_low))
        return integrate.quad(reject, -math.inf, math.inf)[0]

    if not power_at(20.0) >= power:  # a shift of 20 sd stands for "none in practice"
        return math.inf
    return float(optimize.brentq(lambda shift: power_at(shift) - power, 0.0, 20.0, xtol=1e-6))


@dataclass(frozen=True)
class CurveDraw:
    """A published curve (one run's metric at several epochs) against the seeds' curves, judged whole."""

    n: int  # seeds with every epoch
    epochs: int
    score: float  # the published curve's mean z over the epochs, against the seeds
    rank: Rank  # its score's rank among the seeds' scores
    seed_scores: tuple  # each seed's score, scored the same way
    above_all: int  # epochs at which the published value lies above every seed
    below_all: int

    @property
    def verdict(self) -> str:
        """consistent, above or below by the rank of the score; "" with fewer than two seeds or no score."""
        return self.rank.side if self.rank.n >= 2 else ""


def whole_curve(seed_curves, published) -> CurveDraw:
    """Could one run of the recipe have printed this whole curve? One statistic for all its epochs,
    since a run's epochs are correlated: testing each on its own would count one run many times.

    Each of the n + 1 curves (the seeds' and the published one) gets a score: its mean, over the epochs,
    of its value's z against the other n curves at that epoch. The score treats every curve alike, so
    under the hypothesis that the published run is one more draw the n + 1 scores are exchangeable and
    the published score's `rank` among the seeds' is an exact p-value. A run above the seeds at every
    epoch scores high however the epochs co-vary. Epochs where every curve has the same value say nothing
    and are left out. `seed_curves` is n x epochs; a seed missing an epoch is left out.
    """
    curves = np.asarray(seed_curves, dtype=float).reshape(-1, len(published))
    curves = curves[np.isfinite(curves).all(axis=1)]
    published = np.asarray(published, dtype=float)
    n = len(curves)
    bag = np.vstack([curves, published])
    informative = np.ptp(bag, axis=0) > 0
    bag = bag[:, informative]
    above_all = int((published[None, :] > curves).all(axis=0).sum()) if n else 0
    below_all = int((published[None, :] < curves).all(axis=0).sum()) if n else 0
    if n < 2 or not informative.any():
        return CurveDraw(n, len(published), math.nan, rank([], 0.0), (), above_all, below_all)
    scores = np.empty(n + 1)
    for j in range(n + 1):
        others = np.delete(bag, j, axis=0)
        sd = others.std(axis=0, ddof=1)
        sd = np.where(sd > 0, sd, bag.std(axis=0, ddof=1))  # others all equal here: the whole bag's spread
        scores[j] = float(np.mean((bag[j] - others.mean(axis=0)) / sd))
    return CurveDraw(n, len(published), float(scores[-1]), rank(scores[:-1], scores[-1]), tuple(float(x) for x in scores[:-1]),
                     above_all, below_all)


@dataclass(frozen=True)
class Paired:
    """B − A over the seeds both arms have: the differences' mean, its interval and test."""

    n: int
    mean: float
    ci_low: float  # the Student t 95% interval of the mean difference
    ci_high: float
    wins: int = 0  # pairs with B > A, B = A, B < A
    ties: int = 0
    losses: int = 0
    permutation_p: float = math.nan  # the paired permutation test of the mean difference (sign flips), two-sided
    permutation_floor: bool = False  # that p is the least 9,999 random sign flips can give: the exact one is smaller


PERMUTATIONS = 9999  # random sign flips where there are too many patterns to take them all
EXACT_PATTERNS = 2 ** 16  # every sign pattern is taken up to this many


def paired(a, b) -> Paired:
    """Do two arms that share seeds differ? `a[i]` and `b[i]` are the same seed's values.

    Pairing removes what a seed does to both arms (split, shuffling order, initial weights). The question
    is answered by the permutation test of the mean difference, which flips each pair's sign (scipy's
    `permutation_test`): it holds where pairs tie (a discrete metric on a small test set) and the
    differences are far from normal. Every sign pattern up to 16 pairs, so the p-value is exact; beyond,
    9,999 random ones from a fixed generator, and a p at their floor is said to be at it. The Student t
    interval says how large the difference is. NaN where a test is undefined: fewer than two pairs, or
    every pair tied.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    diff = b - a
    n = len(diff)
    nan = math.nan
    if n == 0:
        return Paired(0, nan, nan, nan)
    mean = float(diff.mean())
    counts = dict(wins=int((diff > 0).sum()), ties=int((diff == 0).sum()), losses=int((diff < 0).sum()))
    if n < 2:
        return Paired(n, mean, nan, nan, **counts)
    p, floor = _permutation_p(diff)
    tests = dict(counts, permutation_p=p, permutation_floor=floor)
    if float(diff.std(ddof=1)) == 0:  # every pair differs by the same amount: that is the interval
        return Paired(n, mean, mean, mean, **tests)
    interval = scipy_stats.ttest_rel(b, a).confidence_interval(LEVEL)
    return Paired(n, mean, float(interval.low), float(interval.high), **tests)


def _permutation_p(diff: np.ndarray) -> tuple[float, bool]:
    """The paired permutation test's two-sided p for a mean difference of 0, and whether it is the floor of
    the random sign flips; NaN where every pair ties."""
    if not diff.any():
        return math.nan, False
    exact = 2 ** len(diff) <= EXACT_PATTERNS
    result = scipy_stats.permutation_test((diff,), np.mean, permutation_type="samples",
                                          n_resamples=np.inf if exact else PERMUTATIONS,
                                          alternative="two-sided", random_state=np.random.default_rng(0))
    p = float(result.pvalue)
    return p, not exact and p <= 2 / (PERMUTATIONS + 1) + 1e-12


@dataclass(frozen=True)
class Unpaired:
    """B − A for two independent samples: the difference of means with Welch's interval, and Mann-Whitney U."""

    a: Summary
    b: Summary
    difference: float
    mann_whitney_p: float
    ci_low: float = math.nan  # Welch's 95% interval of the difference of means
    ci_high: float = math.nan


def welch_interval(a, b) -> tuple[float, float]:
    """How large is B − A, for independent samples? Welch's 95% interval of the difference of means
    (unequal variances); NaN below two values a side or where neither has any spread."""
    a, b = finite(a), finite(b)
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # scipy's "nearly identical data": zero spread gives NaN, as it should
        interval = scipy_stats.ttest_ind(b, a, equal_var=False).confidence_interval(LEVEL)
    return float(interval.low), float(interval.high)


def unpaired(a, b) -> Unpaired:
    """Do two independent samples differ? The Mann-Whitney U test, two-sided (NaN below two values a
    side), with Welch's interval for how large the difference of means is. Mann-Whitney's p is exact,
    ties and all: every split of the pooled values where there are at most 100,000 (scipy's permutation
    method), else 9,999 random ones; never the normal approximation, which ties would otherwise force."""
    a, b = finite(a), finite(b)
    sa, sb = summarize(a), summarize(b)
    if len(a) < 2 or len(b) < 2:
        return Unpaired(sa, sb, sb.mean - sa.mean, math.nan)
    splits = math.comb(len(a) + len(b), len(a))
    method = scipy_stats.PermutationMethod(n_resamples=np.inf if splits <= 100_000 else PERMUTATIONS,
                                           random_state=np.random.default_rng(0))
    mann_whitney = _quiet(lambda: scipy_stats.mannwhitneyu(b, a, alternative="two-sided", method=method).pvalue)
    return Unpaired(sa, sb, sb.mean - sa.mean, mann_whitney, *welch_interval(a, b))


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


def fewest_seeds_to_reject(paired: bool) -> int:
    """The fewest seeds per side at which the difference test can reject at all: every pair of one sign gives
    the paired permutation test its least p, 2 / 2^n (6 pairs); every run of one side above the other's
    gives Mann-Whitney's, 2 / C(2n, n) (4 a side)."""
    n = 2
    while 2 / (2**n if paired else math.comb(2 * n, n)) > 1 - LEVEL:
        n += 1
    return n


def seeds_to_decide(difference: float, std: float, margin: float, paired: bool) -> int | None:
    """Seeds per side that would decide a comparison, at the observed difference and spread, with 80% power.

    Within the margin the question is equivalence: TOST rejects when both one-sided tests do, and the
    bound nearer the difference decides, so it takes about the seeds of a one-sided t-test at effect
    (margin − |difference|) / std. Beyond it the question is a difference: the t-test's count at
    |difference| / std (the paired permutation and Mann-Whitney tests are about as powerful once they
    can reject at all), and never fewer than those tests need to reach 5% (`fewest_seeds_to_reject`).
    None where no number of seeds would (no margin, or no difference).
    """
    if abs(difference) < margin:
        return fewest_runs(TTestPower() if paired else TTestIndPower(), (margin - abs(difference)) / std, POWER, "larger")
    if difference == 0:
        return None
    count = fewest_runs(TTestPower() if paired else TTestIndPower(), abs(difference) / std, POWER, "two-sided")
    return None if count is None else max(count, fewest_seeds_to_reject(paired))


def fewest_runs(analysis, effect: float, power: float, alternative: str = "two-sided") -> int | None:
    """The fewest runs (per arm, or pairs; a t test takes 2 at least) at which the t test of statsmodels'
    `analysis` (TTestPower or TTestIndPower) has `power` at `effect` (in sd); None where no number up to
    MAX_RUNS does.

    Power grows with the runs, so doubling then bisection finds them from statsmodels' power alone: its
    solve_power does not converge for effects beyond about 5. That far out its two-sided power can be NaN;
    the upper tail alone at half the level (a lower bound of either alternative's power) stands in for it.
    """
    def enough(n: int) -> bool:
        p = _quiet(lambda: analysis.power(effect, n, 1 - LEVEL, alternative=alternative))
        if not math.isfinite(p):
            p = _quiet(lambda: analysis.power(effect, n, (1 - LEVEL) / 2, alternative="larger"))
        return p >= power

    too_few, runs = 1, 2
    while not enough(runs):
        if runs >= MAX_RUNS:
            return None
        too_few, runs = runs, 2 * runs
    while runs - too_few > 1:
        middle = (too_few + runs) // 2
        too_few, runs = (too_few, middle) if enough(middle) else (middle, runs)
    return runs


def holm(p_values) -> list[float]:
    """Holm's adjustment of one family's p-values (statsmodels' `multipletests`); a NaN (no test) stays NaN
    and does not count towards the family's size."""
    p = [float(x) for x in p_values]
    tested = [i for i, x in enumerate(p) if not math.isnan(x)]
    adjusted = list(p)
    if tested:
        for i, x in zip(tested, multipletests([p[i] for i in tested], alpha=1 - LEVEL, method="holm")[1]):
            adjusted[i] = float(x)
    return adjusted


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


def paired_sd_ratio_interval(a, b) -> tuple[float, float, float]:
    """How large is spread a against spread b where the runs pair up (the same seed drove the source both
    vary, so the pairs are correlated)? sd_a / sd_b and its 95% interval by Pitman and Morgan's test: the
    variances are in ratio k² exactly where a − k·b and a + k·b are uncorrelated, and the interval is every
    k whose correlation's t statistic (n − 2 degrees of freedom, scipy's t) does not reject, the roots of a
    quadratic in k². Exact for normal pairs; an F interval, which takes the two as independent, is twice
    as wide and more where the pairs correlate as closely as the variance designs' do (0.7 to 0.96). NaN below three pairs or where b has no spread."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = len(a)
    if n < 3 or not np.ptp(b) > 0:
        return (math.nan,) * 3
    var_a, var_b, cov = float(np.var(a, ddof=1)), float(np.var(b, ddof=1)), float(np.cov(a, b)[0, 1])
    ratio = math.sqrt(var_a / var_b)
    t = float(scipy_stats.t.ppf((1 + LEVEL) / 2, n - 2))
    c2 = t * t / (n - 2 + t * t)  # the squared correlation at the critical t
    # r(k)^2 = c2 with r(k) = (var_a - k² var_b) / sqrt((var_a + k² var_b)² - 4 k² cov²): a quadratic in K = k².
    qa, qb, qc = var_b**2 * (1 - c2), -2 * var_a * var_b * (1 + c2) + 4 * c2 * cov**2, var_a**2 * (1 - c2)
    disc = qb * qb - 4 * qa * qc
    roots = sorted((-qb + sign * math.sqrt(max(disc, 0.0))) / (2 * qa) for sign in (-1, 1))
    low = math.sqrt(max(0.0, roots[0]))  # 0.0 first: max(-0.0, 0.0) is -0.0, printed as "-0.00"
    return ratio, low, math.sqrt(roots[1])


@dataclass(frozen=True)
class RunsNeeded:
    """Runs per arm that detect a difference `delta` with the given power, by test (None: no number does;
    NaN: not computable from these runs)."""

    delta: float
    sd: float  # the spread the t tests assume (pooled over the arms)
    two_sample: float
    paired: float  # from the spread of the per-seed differences; NaN without shared seeds
    sd_difference: float


def pooled_sd(*samples) -> float:
    """The spread two-sample t tests assume: the standard deviations pooled over the samples, each weighted by
    its degrees of freedom; NaN without any."""
    arms = [finite(x) for x in samples]
    dof = sum(len(x) - 1 for x in arms if len(x) > 1)
    return math.sqrt(sum((len(x) - 1) * x.var(ddof=1) for x in arms if len(x) > 1) / dof) if dof > 0 else math.nan


def runs_needed(a, delta: float, b=None, paired_differences=None, power: float = POWER) -> RunsNeeded:
    """How many runs per arm would detect a difference `delta` (in the metric's units) at 5% two-sided,
    with `power`, at the spread these runs show?

    - two-sample t (statsmodels' TTestIndPower) at effect delta / sd, the sd pooled over `a` and `b`;
    - paired t (TTestPower) at effect delta / sd of `paired_differences` (B − A over shared seeds).
    A difference of means is the question, and the t test's count holds for it on discrete and skewed
    metrics once there are tens of runs (the mean of the runs is near normal); the count is checked by
    simulation in the tests.
    """
    arms = [finite(a)] + ([finite(b)] if b is not None else [])
    sd = pooled_sd(*arms)
    diffs = finite(paired_differences) if paired_differences is not None else np.array([])
    sd_difference = float(diffs.std(ddof=1)) if len(diffs) > 1 else math.nan
    return RunsNeeded(delta, sd, _t_runs(TTestIndPower(), delta, sd, power), _t_runs(TTestPower(), delta, sd_difference, power),
                      sd_difference)


def _t_runs(analysis, delta: float, sd: float, power: float) -> float:
    """Runs (per arm, or pairs) a t test of `analysis` needs at effect delta / sd; 2 at least; NaN without a spread."""
    if not sd > 0 or not delta > 0:
        return math.nan
    n = fewest_runs(analysis, delta / sd, power)
    return math.nan if n is None else float(n)
