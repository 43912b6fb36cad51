"""The statistics over seeds, checked against scipy's and statsmodels' own routes to the same numbers,
and at their edges: one seed, all seeds equal, a diverged seed, a published value on the boundary."""

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.power import TTestIndPower, TTestPower

from harness.stats import (ABOVE, BELOW, CONSISTENT, MAX_RUNS, Rank, detectable_shift, equivalence_p, fewest_runs, fewest_seeds_to_reject,
                           order_statistic_interval, paired, paired_sd_ratio_interval, rank, seeds_to_decide, summarize, unpaired,
                           whole_curve)

SEEDS = [0.951, 0.962, 0.958, 0.971, 0.949, 0.966, 0.955]  # a fixed sample of accuracies


def test_the_rank_p_value_counts_the_seeds_at_least_as_far_out():
    x = [1.0, 2.0, 3.0, 4.0]
    assert rank(x, 3.0) == Rank(4, 2, 1, 1, 1.0)  # 2 below, 1 tied, 1 above: the upper tail holds 2, 2·3/5 > 1
    assert rank(x, 3.5).p == 2 * (1 + 1) / 5
    assert rank(x, 5.0).p == 2 / 5 and rank(x, 0.0).p == 2 / 5  # beyond every seed: the least p 4 seeds can give
    assert rank(x, 2.5).p == 1.0
    # The percentile scipy gives counts the same seeds.
    r = rank(SEEDS, 0.958)
    assert 100 * (r.below + r.tied) / r.n == pytest.approx(scipy_stats.percentileofscore(SEEDS, 0.958, kind="weak"))
    assert 100 * r.below / r.n == pytest.approx(scipy_stats.percentileofscore(SEEDS, 0.958, kind="strict"))


@pytest.mark.parametrize("draw,ever_rejects", [(lambda rng, size: rng.normal(size=size), True),
                                               (lambda rng, size: rng.integers(0, 3, size=size).astype(float), False)],
                         ids=["continuous", "three values"])  # heavily tied: a third of the seeds equal the figure
def test_the_rank_test_rejects_a_true_draw_at_most_five_percent_of_the_time(draw, ever_rejects):
    # Exchangeable: the figure is one more draw of the seeds' distribution. 40 seeds: the least p is 2/41.
    rng = np.random.default_rng(1)
    trials = 4000
    rejected = sum(rank(draw(rng, 40), draw(rng, 1)[0]).p <= 0.05 for _ in range(trials))
    assert rejected / trials <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / trials)
    assert (rejected > 0) == ever_rejects  # ties count against rejecting: conservative, never liberal


def test_below_39_seeds_the_rank_test_cannot_reject():
    assert rank(np.arange(38.0), 1e9).p > 0.05 and rank(np.arange(39.0), 1e9).p == 0.05
    assert rank(np.linspace(0.9, 0.91, 38), 0.99).side == CONSISTENT
    assert rank(np.linspace(0.9, 0.91, 39), 0.99).side == ABOVE
    assert rank(np.linspace(0.9, 0.91, 39), 0.80).side == BELOW
    assert detectable_shift(38) == math.inf and detectable_shift(39) < 4


def test_a_bimodal_seed_set_is_judged_by_rank_not_by_a_normal_interval():
    # 47 seeds near 97% and 3 stalled at chance (iris predicting one class): a t interval would stretch past
    # 100% and hold a 99.5% run that lies above every seed; the rank says above.
    rng = np.random.default_rng(0)
    seeds = np.concatenate([np.clip(rng.normal(0.97, 0.005, 47), 0, 0.985), [0.33, 0.33, 0.34]])
    x, s = seeds, seeds.std(ddof=1)
    t_high = x.mean() + scipy_stats.t.ppf(0.975, len(x) - 1) * s * math.sqrt(1 + 1 / len(x))
    assert t_high > 1.0  # what the t interval would have said: consistent
    assert rank(seeds, 0.995).side == ABOVE and rank(seeds, 0.995).p == 2 / 51
    assert rank(seeds, 0.33).side == CONSISTENT  # a stalled figure is as common as the stalls make it


def test_an_all_ties_seed_set():
    # Every seed the same value (a tiny test set): the figure equal to it is the most typical value there is;
    # one step away it lies beyond every seed, and the rank says so once there are enough seeds.
    same = [0.9736842105263158] * 50
    assert rank(same, same[0]) == Rank(50, 0, 50, 0, 1.0)
    assert rank(same, 1.0).side == ABOVE and rank(same[:5], 1.0).side == CONSISTENT


def test_the_range_holding_one_run_is_order_statistics_with_their_coverage():
    x = np.random.default_rng(2).normal(size=50)
    low, high, coverage = order_statistic_interval(x)
    ordered = np.sort(x)
    assert (low, high) == (ordered[0], ordered[-1]) and coverage == 49 / 51  # j = floor(0.025 * 51) = 1
    low, high, coverage = order_statistic_interval(np.arange(200.0))
    assert (low, high) == (4.0, 195.0) and coverage == 191 / 201  # j = 5: x_(5), x_(196)
    # Coverage, checked: a new draw falls inside as often as stated (n = 79, j = 2: 76/80 = 95%).
    rng = np.random.default_rng(3)
    inside = []
    for _ in range(3000):
        low, high, coverage = order_statistic_interval(rng.normal(size=79))
        inside.append(low <= rng.normal() <= high)
    assert abs(np.mean(inside) - coverage) < 3 * math.sqrt(coverage * (1 - coverage) / 3000)
    # Both ends are values a run gave, on a discrete metric too.
    steps = np.random.default_rng(4).integers(30, 39, 50) / 38
    assert set(order_statistic_interval(steps)[:2]) <= set(steps)


@pytest.mark.slow
def test_the_detectable_shift_is_where_the_rank_test_reaches_80_percent_power():
    # Simulated: the run shifted by the answer is called out 4 times in 5.
    n, rng = 50, np.random.default_rng(5)
    shift = detectable_shift(n)
    trials = 3000
    caught = sum(rank(rng.normal(size=n), rng.normal() + shift).p <= 0.05 for _ in range(trials))
    assert abs(caught / trials - 0.8) < 3 * math.sqrt(0.16 / trials)
    # With unlimited seeds it needs about 2.8 sd: |z + shift| > 1.96 with probability 0.8.
    assert detectable_shift(5000) == pytest.approx(1.96 + 0.8416, abs=0.03)


def test_one_seed_gives_no_verdict_and_a_diverged_seed_is_left_out():
    assert rank([0.97], 0.98).side == CONSISTENT and math.isnan(rank([], 0.98).p)
    finished = [0.93, 0.94, 0.95]
    assert rank([0.93, math.inf, 0.94, math.nan, 0.95], 0.96) == rank(finished, 0.96)
    assert summarize([0.93, math.nan, 0.94, -math.inf, 0.95]) == summarize(finished)


def test_a_curve_shifted_by_one_sd_at_every_epoch_is_flagged_with_enough_seeds():
    # 60 seeds, 20 epochs whose noise is independent: a curve 1 sd above the seeds' mean at every epoch is a
    # typical value at each epoch on its own (about the 84th percentile), so no single epoch rejects, but
    # no seed's curve lies that far up throughout: judged whole, it is above.
    rng = np.random.default_rng(0)
    epochs = np.linspace(0.5, 0.9, 20)
    seeds = epochs + 0.01 * rng.normal(size=(60, 20))
    published = epochs + 0.01
    assert all(rank(seeds[:, e], published[e]).p > 0.05 for e in range(20))
    curve = whole_curve(seeds, published)
    assert curve.verdict == ABOVE and curve.rank.p == 2 / 61 and curve.score > max(curve.seed_scores)
    # With 10 seeds the same curve cannot be flagged: 2/11 is the least p.
    few = whole_curve(seeds[:10], published)
    assert few.verdict == CONSISTENT and few.rank.p == pytest.approx(2 / 11)
    # Where the epochs move together (one draw per run), a 1 sd shift is an ordinary run: consistent.
    together = epochs + 0.01 * rng.normal(size=(60, 1))
    assert whole_curve(together, published).verdict == CONSISTENT


def test_the_whole_curve_rank_rejects_a_true_draw_at_most_five_percent_of_the_time():
    # The score treats the n + 1 curves alike, so a curve of the same process is exchangeable with the seeds'.
    rng = np.random.default_rng(6)
    trials = 600
    rejected = 0
    for _ in range(trials):
        curves = np.cumsum(rng.normal(size=(40, 6)), axis=1)  # correlated epochs
        rejected += whole_curve(curves[:-1], curves[-1]).rank.p <= 0.05
    assert rejected / trials <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / trials)


def test_whole_curve_edges():
    flat = whole_curve(np.full((5, 3), 0.9), [0.9, 0.9, 0.9])  # nothing varies: no score
    assert math.isnan(flat.score) and flat.verdict == ""
    assert whole_curve([[0.1, 0.2]], [0.1, 0.2]).verdict == ""  # one seed
    partial = whole_curve([[0.1, 0.2], [0.2, math.nan], [0.15, 0.25], [0.12, 0.22]], [0.3, 0.4])
    assert partial.n == 3 and partial.above_all == 2  # the seed missing an epoch is left out


PLAIN = [0.981, 0.984, 0.979, 0.986, 0.983, 0.980]
DROPOUT = [0.985, 0.986, 0.984, 0.990, 0.986, 0.982]


def test_paired_matches_scipy():
    a, b = np.array(PLAIN), np.array(DROPOUT)
    diff = b - a
    result = paired(a, b)
    assert result.n == 6 and result.mean == pytest.approx(diff.mean())
    # The interval by another route: a one-sample t on the differences.
    assert (result.ci_low, result.ci_high) == pytest.approx(
        scipy_stats.t.interval(0.95, df=5, loc=diff.mean(), scale=scipy_stats.sem(diff)))
    # Six pairs: every one of the 2^6 sign patterns, the exact permutation p.
    exact = scipy_stats.permutation_test((diff,), np.mean, permutation_type="samples", n_resamples=np.inf).pvalue
    assert result.permutation_p == pytest.approx(exact) and not result.permutation_floor


def test_pairs_that_mostly_tie_are_counted_and_tested_by_permutation():
    # iris's test accuracy moves in steps of one of 38 samples: most pairs of two recipes tie exactly.
    step = 1 / 38
    a = np.full(50, 36 * step)
    b = a.copy()
    b[:4] += step  # B one sample better in 4 seeds, worse in 2, tied in 44
    b[4:6] -= step
    r = paired(a, b)
    assert (r.wins, r.ties, r.losses) == (4, 44, 2)
    # The permutation test flips each pair's sign; with 50 pairs scipy draws 9,999 of the 2^50 patterns.
    expected = scipy_stats.permutation_test((b - a,), np.mean, permutation_type="samples", n_resamples=9999,
                                            random_state=np.random.default_rng(0)).pvalue
    assert r.permutation_p == pytest.approx(expected) and r.permutation_p > 0.05 and not r.permutation_floor
    # Exact up to 16 pairs: five one-signed differences give 2/2^5, sixteen 2/2^16.
    assert paired([0.0] * 5, [0.1, 0.2, 0.3, 0.4, 0.5]).permutation_p == pytest.approx(2 / 32)
    sixteen = paired([0.0] * 16, np.arange(1, 17) / 100)
    assert sixteen.permutation_p == pytest.approx(2 / 2**16) and not sixteen.permutation_floor
    # Beyond, 9,999 random flips: forty one-signed pairs reach the least they can give (exact: 2/2^40), and say so.
    forty = paired([0.0] * 40, np.arange(1, 41) / 100)
    assert forty.permutation_p == pytest.approx(2 / 10000) and forty.permutation_floor
    assert math.isnan(paired([0.5] * 4, [0.5] * 4).permutation_p)  # every pair tied: nothing to test


def test_paired_edges():
    one = paired([0.9], [0.95])
    assert one.n == 1 and one.mean == pytest.approx(0.05) and math.isnan(one.ci_low) and math.isnan(one.permutation_p)
    same = paired([0.9, 0.91, 0.92], [0.9, 0.91, 0.92])  # identical arms
    assert same.mean == 0 and (same.ci_low, same.ci_high) == (0, 0) and math.isnan(same.permutation_p)
    shifted = paired([0.9, 0.91, 0.92], [0.95, 0.96, 0.97])  # the same shift in every seed: no spread
    assert shifted.ci_low == shifted.ci_high == pytest.approx(0.05) and shifted.permutation_p == pytest.approx(0.25)
    diverged = paired([0.9, 0.91, math.nan, 0.93], [0.92, 0.94, 0.95, math.inf])  # pairs with a failed arm drop out
    assert diverged.n == 2


def test_unpaired_matches_scipy():
    a, b = np.array(PLAIN), np.array(DROPOUT[:5])
    result = unpaired(a, b)
    # Mann-Whitney's p exact, ties and all: every one of the 462 splits of the eleven values.
    every_split = scipy_stats.PermutationMethod(n_resamples=np.inf)
    assert result.mann_whitney_p == pytest.approx(scipy_stats.mannwhitneyu(b, a, method=every_split).pvalue)
    # With ties, scipy's default falls back on the normal approximation; the exact p is every split's.
    mnist, fashion = [0.991, 0.989, 0.990, 0.990, 0.992], [0.905, 0.903, 0.906, 0.905, 0.904]
    assert unpaired(mnist, fashion).mann_whitney_p == pytest.approx(2 / 252)
    assert scipy_stats.mannwhitneyu(fashion, mnist).pvalue != pytest.approx(2 / 252)
    assert result.difference == pytest.approx(b.mean() - a.mean())
    assert math.isnan(unpaired([0.9], [0.8, 0.85]).mann_whitney_p)  # one value a side is no sample
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
        assert power[0] < 0.8 <= power[1] or (n == max(2, fewest_seeds_to_reject(True) * (alternative == "two-sided"))
                                              and power[1] >= 0.8)
    assert seeds_to_decide(0.0, 0.01, 0.0, paired=False) is None  # no margin and no difference: nothing decides
    # two independent samples each carry their own spread: more seeds than pairs at the same effect
    assert seeds_to_decide(0.004, 0.01, 0.01, paired=False) > seeds_to_decide(0.004, 0.01, 0.01, paired=True)
    # a difference exactly at the margin is no longer within it: a two-sided test, at effect margin / sd
    assert seeds_to_decide(0.01, 0.01, 0.01, paired=True) == fewest_runs(TTestPower(), 1.0, 0.8, "two-sided") == 10
    assert seeds_to_decide(1.0, 1.0, 0.0, paired=False) == fewest_runs(TTestIndPower(), 1.0, 0.8) == 17
    # A difference the t test would see in 2 seeds: the permutation test needs 6 pairs to reject at all
    # (least p 2/2^6), Mann-Whitney 4 a side (2/70).
    assert (fewest_seeds_to_reject(True), fewest_seeds_to_reject(False)) == (6, 4)
    assert seeds_to_decide(0.05, 0.01, 0.0, paired=True) == 6 and seeds_to_decide(0.05, 0.01, 0.0, paired=False) == 4


@pytest.mark.parametrize("analysis", [TTestPower(), TTestIndPower()], ids=["paired", "two-sample"])
def test_the_fewest_runs_are_statsmodels_solve_power_where_it_converges_and_two_beyond(analysis):
    for alternative in ("two-sided", "larger"):
        for effect in (0.3, 0.8, 1.5, 3.0):
            solved = float(np.asarray(analysis.solve_power(effect_size=effect, alpha=0.05, power=0.8, alternative=alternative)).item())
            n = fewest_runs(analysis, effect, 0.8, alternative)
            assert n == max(2, math.ceil(solved)) and type(n) is int  # a count, printed as one
    # Far out statsmodels' solver returns NaN (and its two-sided power too): the fewest a t test takes do.
    assert [fewest_runs(analysis, effect, 0.8) for effect in (20.0, 100.0, 1e6)] == [2, 2, 2]
    assert fewest_runs(TTestPower(), 6.0, 0.8) == 3  # solve_power and the two-sided power at 2 pairs: NaN; its upper tail 0.49; at 3 pairs 0.995
    assert fewest_runs(analysis, 1e-9, 0.8) is None and fewest_runs(analysis, 0.0, 0.8) is None  # beyond MAX_RUNS
    assert seeds_to_decide(1e-9, 1.0, 0.0, paired=True) is None


def test_the_fewest_runs_where_statsmodels_power_is_nan_and_at_the_largest_count():
    analysis = TTestPower()
    # Two pairs at effect 12: the two-sided power is NaN; the upper tail at 2.5% is 0.817, enough.
    assert math.isnan(analysis.power(12.0, 2, 0.05)) and analysis.power(12.0, 2, 0.025, alternative="larger") > 0.8
    assert fewest_runs(analysis, 12.0, 0.8) == 2
    # MAX_RUNS (2**40) pairs have 75% power at effect 2.5e-6, twice as many 96%: no answer; at 2.8e-6, 84%.
    assert analysis.power(2.5e-6, MAX_RUNS, 0.05) < 0.8 < analysis.power(2.5e-6, 2 * MAX_RUNS, 0.05)
    assert fewest_runs(analysis, 2.5e-6, 0.8) is None
    assert analysis.power(2.8e-6, MAX_RUNS, 0.05) >= 0.8
    n = fewest_runs(analysis, 2.8e-6, 0.8)
    assert analysis.power(2.8e-6, n - 1, 0.05) < 0.8 <= analysis.power(2.8e-6, n, 0.05) and n <= MAX_RUNS


# The edges, every field at once: NaN where a statistic needs more runs, counts where it does not.
# np.testing.assert_equal takes NaN as equal to NaN and None as different from it.
NAN = math.nan


def fields(found):
    return dataclasses.astuple(found)


def test_too_few_seeds_give_nan_where_a_statistic_needs_more():
    np.testing.assert_equal(fields(summarize([0.75])), (1, 0.75, NAN, NAN, NAN, 0.75, 0.75))
    np.testing.assert_equal(fields(summarize([0.25, NAN, 0.25, 0.25])), (3, 0.25, 0.0, 0.25, 0.25, 0.25, 0.25))
    assert order_statistic_interval([0.25, 0.5]) == (0.25, 0.5, 1 / 3)
    # j = max(1, floor(0.025 (n + 1))): 78 seeds still give j = 1 (79 / 40 < 2), 79 give j = 2.
    assert order_statistic_interval(np.arange(78.0)) == (0.0, 77.0, 77 / 79)
    assert order_statistic_interval(np.arange(79.0)) == (1.0, 77.0, 76 / 80)


def test_paired_and_unpaired_edges_in_every_field():
    empty = (0,) + (NAN,) * 3 + (0, 0, 0, NAN, False)
    np.testing.assert_equal(fields(paired([], [])), empty)
    np.testing.assert_equal(fields(paired([NAN], [0.5])), empty)  # a failed arm: no pair
    np.testing.assert_equal(fields(paired([0.5], [0.75])), (1, 0.25) + (NAN,) * 2 + (1, 0, 0, NAN, False))
    a = np.array([0.5, 0.25, 0.75])
    shifted = paired(a, a + 0.125)  # the same shift in every seed, exactly: no spread
    np.testing.assert_equal(fields(shifted), (3, 0.125, 0.125, 0.125, 3, 0, 0, 0.25, False))
    # The permutation test on the pairs' differences, not on B alone: mixed signs.
    b, a = np.array([0.5, 0.25, 0.875, 0.375, 0.625, 0.75]), np.array([0.375, 0.5, 0.5, 0.25, 0.75, 0.25])
    on_b = scipy_stats.permutation_test((b,), np.mean, permutation_type="samples", n_resamples=np.inf).pvalue
    assert paired(a, b).permutation_p != pytest.approx(on_b)
    for few, more in (([0.75], [0.5, 0.625]), ([0.5, 0.625], [0.75])):
        np.testing.assert_equal(fields(unpaired(few, more)),
                                (fields(summarize(few)), fields(summarize(more)), np.mean(more) - np.mean(few), NAN, NAN, NAN))
    two = unpaired([0.5, 0.625], [0.75, 1.0])  # two a side are a sample
    assert np.isfinite([two.mann_whitney_p, two.ci_low, two.ci_high]).all()


def test_whole_curve_edges_and_the_epochs_that_say_nothing():
    np.testing.assert_equal(fields(whole_curve(np.empty((0, 2)), [0.5, 0.625])), (0, 2, NAN, fields(rank([], 0.0)), (), 0, 0))
    np.testing.assert_equal(fields(whole_curve([[0.25, 0.5]], [0.5, 0.625])), (1, 2, NAN, fields(rank([], 0.0)), (), 2, 0))
    two = whole_curve([[0.25, 0.5], [0.375, 0.25]], [0.5, 0.625])
    assert two.n == 2 and two.epochs == 2 and np.isfinite(two.score) and two.rank.n == 2
    # Epoch 2 is 0.5 for every curve, the published one too: it is left out of the score and counts as neither
    # above nor below. At epoch 3 the seeds agree and only the published curve differs: the whole bag's spread.
    seeds = np.array([[0.25, 0.5, 0.5], [0.5, 0.5, 0.5], [0.375, 0.5, 0.5]])
    published = np.array([0.625, 0.5, 0.75])
    found = whole_curve(seeds, published)
    assert (found.above_all, found.below_all, found.epochs) == (2, 0, 3)
    bag = np.vstack([seeds, published])[:, [0, 2]]
    scores = []
    for j in range(4):
        others = np.delete(bag, j, axis=0)
        sd = others.std(axis=0, ddof=1)
        sd[sd == 0] = bag.std(axis=0, ddof=1)[sd == 0]
        scores.append(np.mean((bag[j] - others.mean(axis=0)) / sd))
    assert found.score == pytest.approx(scores[-1]) and found.seed_scores == pytest.approx(scores[:-1])


def test_the_paired_sd_ratio_interval_covers_at_its_rate_and_is_narrower_than_f():
    """Runs that pair up by seed (correlated 0.9 here, as the variance designs' sources and ordinary seeds are):
    Pitman and Morgan's interval holds the true ratio about 95% of the time; the F interval, which takes the
    two as independent, is more than twice as wide."""
    from harness.stats import sd_interval, sd_ratio_interval

    rng, reps, n, true = np.random.default_rng(7), 2000, 20, 1.2
    covered, paired_width, f_width = [], [], []
    for _ in range(reps):
        z = rng.normal(size=(n, 2))
        b = z[:, 0]
        a = true * (0.9 * b + math.sqrt(1 - 0.81) * z[:, 1])
        _, low, high = paired_sd_ratio_interval(a, b)
        covered.append(low <= true * 1.0 <= high)
        paired_width.append(high - low)
        _, f_low, f_high = sd_ratio_interval(sd_interval(a), sd_interval(b))
        f_width.append(f_high - f_low)
    assert abs(np.mean(covered) - 0.95) < 3 * math.sqrt(0.95 * 0.05 / reps)
    assert np.mean(f_width) > 2 * np.mean(paired_width)
    assert all(math.isnan(v) for v in paired_sd_ratio_interval([1.0, 2.0], [1.0, 3.0]))  # two pairs: no interval
    assert all(math.isnan(v) for v in paired_sd_ratio_interval([1.0, 2.0, 3.0], [2.0] * 3))  # b has no spread
