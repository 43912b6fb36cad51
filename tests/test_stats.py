"""The statistics over seeds, checked against scipy's and statsmodels' own routes to the same numbers,
and at their edges: one seed, all seeds equal, a diverged seed, a published value on the boundary."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.power import TTestPower

from harness.stats import (ABOVE, BELOW, CONSISTENT, equivalence_p, paired, seeds_to_decide, seeds_to_tell_apart, single_draw,
                           summarize, unpaired)

SEEDS = [0.951, 0.962, 0.958, 0.971, 0.949, 0.966, 0.955]  # a fixed sample of accuracies


def test_prediction_interval_is_scipys_t_interval_for_one_new_value():
    x = np.array(SEEDS)
    n, mean, sd = len(x), x.mean(), x.std(ddof=1)
    low, high = scipy_stats.t.interval(0.95, df=n - 1, loc=mean, scale=sd * math.sqrt(1 + 1 / n))
    draw = single_draw(x, 0.96)
    assert (draw.pi_low, draw.pi_high) == pytest.approx((low, high), rel=1e-12)
    # The confidence interval of the mean is the narrower one, by sqrt(n + 1).
    ci = scipy_stats.t.interval(0.95, df=n - 1, loc=mean, scale=scipy_stats.sem(x))
    assert (draw.seeds.ci_low, draw.seeds.ci_high) == pytest.approx(ci, rel=1e-12)
    assert (draw.pi_high - draw.pi_low) / (ci[1] - ci[0]) == pytest.approx(math.sqrt(n + 1))
    assert draw.verdict == CONSISTENT
    assert single_draw(x, 0.99).verdict == ABOVE and single_draw(x, 0.92).verdict == BELOW


def test_a_typical_single_run_outside_the_mean_interval_is_consistent():
    # The question the verdict answers is about one run, not the mean: with many seeds the mean's
    # interval excludes most single runs, the prediction interval does not.
    x = np.random.default_rng(0).normal(0.97, 0.01, 200)
    typical = 0.98  # one standard deviation above the mean
    draw = single_draw(x, typical)
    assert not draw.seeds.ci_low <= typical <= draw.seeds.ci_high
    assert draw.verdict == CONSISTENT and 75 < draw.percentile < 95


def test_percentile_counts_ties_half():
    assert single_draw([1.0, 2.0, 3.0, 4.0], 3.0).percentile == 62.5  # 2 below, 1 tied, of 4
    assert single_draw([1.0, 2.0, 3.0, 4.0], 5.0).percentile == 100.0
    assert single_draw([1.0, 2.0, 3.0, 4.0], 0.0).percentile == 0.0


def test_empirical_quantiles_from_twenty_seeds():
    x = np.linspace(0.9, 1.0, 20)
    draw = single_draw(x, 0.95)
    assert (draw.q_low, draw.q_high) == tuple(np.quantile(x, [0.025, 0.975]))
    assert math.isnan(single_draw(x[:19], 0.95).q_low)  # too few seeds for tails


def test_value_on_the_boundary_is_consistent():
    x = np.array(SEEDS)
    high = single_draw(x, 0.0).pi_high
    assert single_draw(x, high).verdict == CONSISTENT  # the interval's ends belong to it
    assert single_draw(x, np.nextafter(high, 2.0)).verdict == ABOVE
    low = single_draw(x, 0.0).pi_low
    assert single_draw(x, low).verdict == CONSISTENT
    assert single_draw(x, np.nextafter(low, -2.0)).verdict == BELOW


def test_one_seed_gives_no_interval_and_no_verdict():
    draw = single_draw([0.97], 0.98)
    assert draw.seeds.n == 1 and draw.seeds.mean == 0.97
    assert math.isnan(draw.pi_low) and math.isnan(draw.seeds_needed) and draw.verdict == ""
    assert draw.percentile == 100.0
    nothing = single_draw([], 0.98)
    assert nothing.seeds.n == 0 and nothing.verdict == "" and math.isnan(nothing.percentile)


def test_all_seeds_equal():
    # Zero spread: the interval is the one value every seed gave; a t-test has nothing to work with.
    draw = single_draw([0.95] * 6, 0.95)
    assert draw.seeds.std == 0 and (draw.pi_low, draw.pi_high) == (0.95, 0.95)
    assert draw.verdict == CONSISTENT and draw.percentile == 50.0 and math.isnan(draw.seeds_needed)
    assert single_draw([0.95] * 6, 0.96).verdict == ABOVE


def test_a_diverged_seed_is_left_out():
    finished = [0.93, 0.94, 0.95]
    with_diverged = single_draw([0.93, math.inf, 0.94, math.nan, 0.95], 0.96)
    assert with_diverged == single_draw(finished, 0.96)
    assert summarize([0.93, math.nan, 0.94, -math.inf, 0.95]) == summarize(finished)


def test_seeds_needed_is_statsmodels_power_calculation():
    x = np.array(SEEDS)
    published = 0.965
    d = abs(x.mean() - published) / x.std(ddof=1)
    expected = TTestPower().solve_power(effect_size=d, alpha=0.05, power=0.8, alternative="two-sided")
    assert single_draw(x, published).seeds_needed == pytest.approx(expected)
    # The textbook case: half a standard deviation needs 34 seeds (one-sample, two-sided, 5%, power 0.8).
    assert math.ceil(seeds_to_tell_apart(0.5, 1.0)) == 34
    assert seeds_to_tell_apart(0.0, 1.0) == math.inf  # nothing to tell apart
    assert 2 <= seeds_to_tell_apart(100.0, 1.0) <= 3  # a huge difference: the fewest a t-test can use


PLAIN = [0.981, 0.984, 0.979, 0.986, 0.983, 0.980]
DROPOUT = [0.985, 0.986, 0.984, 0.990, 0.986, 0.982]


def test_paired_matches_scipy():
    a, b = np.array(PLAIN), np.array(DROPOUT)
    diff = b - a
    result = paired(a, b)
    assert result.n == 6 and result.mean == pytest.approx(diff.mean())
    # The interval and p-value by another route: a one-sample t on the differences.
    one_sample = scipy_stats.ttest_1samp(diff, 0.0)
    assert result.t_p == pytest.approx(one_sample.pvalue)
    assert (result.ci_low, result.ci_high) == pytest.approx(
        scipy_stats.t.interval(0.95, df=5, loc=diff.mean(), scale=scipy_stats.sem(diff)))
    assert result.wilcoxon_p == pytest.approx(scipy_stats.wilcoxon(diff).pvalue)
    assert result.effect == pytest.approx(diff.mean() / diff.std(ddof=1))
    # Five differences of one sign: the exact signed-rank p-value is 2/2^5, the least five pairs can give.
    five = paired([0.0] * 5, [0.1, 0.2, 0.3, 0.4, 0.5])
    assert five.wilcoxon_p == pytest.approx(0.0625) and five.wilcoxon_floor == pytest.approx(0.0625)


def test_paired_edges():
    one = paired([0.9], [0.95])
    assert one.n == 1 and one.mean == pytest.approx(0.05) and math.isnan(one.ci_low) and math.isnan(one.t_p)
    same = paired([0.9, 0.91, 0.92], [0.9, 0.91, 0.92])  # identical arms
    assert same.mean == 0 and (same.ci_low, same.ci_high) == (0, 0) and math.isnan(same.t_p) and math.isnan(same.wilcoxon_p)
    shifted = paired([0.9, 0.91, 0.92], [0.95, 0.96, 0.97])  # the same shift in every seed: no spread
    assert math.isnan(shifted.t_p) and shifted.ci_low == shifted.ci_high == pytest.approx(0.05)
    diverged = paired([0.9, 0.91, math.nan, 0.93], [0.92, 0.94, 0.95, math.inf])  # pairs with a failed arm drop out
    assert diverged.n == 2


def test_unpaired_matches_scipy():
    a, b = np.array(PLAIN), np.array(DROPOUT[:5])
    result = unpaired(a, b)
    assert result.welch_p == pytest.approx(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert result.mann_whitney_p == pytest.approx(scipy_stats.mannwhitneyu(a, b).pvalue)
    assert result.difference == pytest.approx(b.mean() - a.mean())
    assert math.isnan(unpaired([0.9], [0.8, 0.85]).welch_p)  # one value a side is no sample
    interval = scipy_stats.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    assert (result.ci_low, result.ci_high) == pytest.approx((interval.low, interval.high))
    assert result.ci_low < result.difference < result.ci_high


def test_equivalence_p_is_the_larger_of_two_one_sided_tests():
    """TOST by scipy's one-sided t-tests against each bound, a second route to statsmodels' number."""
    a, b, margin = np.array(PLAIN), np.array(DROPOUT), 0.01
    d = b - a
    by_scipy = max(scipy_stats.ttest_1samp(d, -margin, alternative="greater").pvalue,
                   scipy_stats.ttest_1samp(d, margin, alternative="less").pvalue)
    assert equivalence_p(a, b, margin, paired=True) == pytest.approx(by_scipy)
    by_scipy = max(scipy_stats.ttest_ind(b + margin, a, equal_var=False, alternative="greater").pvalue,
                   scipy_stats.ttest_ind(b - margin, a, equal_var=False, alternative="less").pvalue)
    assert equivalence_p(a, b, margin, paired=False) == pytest.approx(by_scipy)
    assert equivalence_p(a, a + 1e-6, 0.01, paired=True) < 0.05 < equivalence_p(a, a + 0.05, 0.01, paired=True)
    assert equivalence_p(a, b, 0.0, paired=True) == 1.0  # no margin: nothing is equivalent


def test_seeds_to_decide_gives_the_power_asked_for_and_no_more():
    # within the margin: a one-sided test at effect (margin - |diff|) / sd; beyond it: two-sided at |diff| / sd
    for diff, margin, alternative, effect in ((0.002, 0.01, "larger", 0.008 / 0.01), (0.02, 0.01, "two-sided", 0.02 / 0.01)):
        n = seeds_to_decide(diff, 0.01, margin, paired=True)
        power = [TTestPower().power(effect_size=effect, nobs=k, alpha=0.05, alternative=alternative) for k in (n - 1, n)]
        assert power[0] < 0.8 <= power[1] or (n == 2 and power[1] >= 0.8)
    assert seeds_to_decide(0.0, 0.01, 0.0, paired=False) is None  # no margin and no difference: nothing decides
    # two independent samples each carry their own spread: more seeds than pairs at the same effect
    assert seeds_to_decide(0.004, 0.01, 0.01, paired=False) > seeds_to_decide(0.004, 0.01, 0.01, paired=True)
