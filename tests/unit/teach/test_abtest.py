"""llmserve.teach.abtest: split, statistics, power and decision, against scipy and hand-computed values."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from llmserve.teach import abtest
from llmserve.teach.abtest import TrafficSplit

# ----------------------------------------------------------------------------- split


def test_split_proportions_match_the_weights():
    split = TrafficSplit({"A": 0.7, "B": 0.2, "C": 0.1}, salt="exp-1")
    counts = split.counts(f"user-{i}" for i in range(20_000))
    assert sum(counts.values()) == 20_000
    for name, weight in split.weights.items():  # binomial sd at n=20000 is < 0.0033
        assert abs(counts[name] / 20_000 - weight) < 0.015, counts


def test_weights_are_normalised_and_validated():
    assert TrafficSplit({"A": 3, "B": 1}).weights == {"A": 0.75, "B": 0.25}
    with pytest.raises(ValueError):
        TrafficSplit({"A": -1, "B": 2})
    with pytest.raises(ValueError):
        TrafficSplit({"A": 0, "B": 0})
    with pytest.raises(ValueError):
        TrafficSplit({})


def test_zero_weight_variant_gets_no_traffic():
    split = TrafficSplit({"A": 1.0, "B": 0.0})
    assert split.counts(range(2000)) == {"A": 2000, "B": 0}
    split = TrafficSplit({"A": 0.0, "B": 1.0})
    assert split.counts(range(2000)) == {"A": 0, "B": 2000}


def test_salt_reshuffles_users():
    one, other = TrafficSplit({"A": 1, "B": 1}, salt="x"), TrafficSplit({"A": 1, "B": 1}, salt="y")
    same = sum(one.assign(u) == other.assign(u) for u in range(4000))
    assert 1700 < same < 2300  # independent halves agree about half the time


@given(user=st.one_of(st.text(max_size=40), st.integers()), salt=st.text(max_size=10),
       weight=st.floats(min_value=0.01, max_value=100))
def test_assignment_is_deterministic(user, salt, weight):
    split = TrafficSplit({"A": weight, "B": 1.0}, salt=salt)
    again = TrafficSplit({"A": weight, "B": 1.0}, salt=salt)
    assert split.assign(user) == again.assign(user) in ("A", "B")
    assert 0.0 <= TrafficSplit.bucket(user, salt) < 1.0


@given(user=st.text(max_size=20), low=st.floats(0.05, 0.5), high=st.floats(0.5, 0.95))
def test_growing_b_only_moves_users_from_a_to_b(user, low, high):
    """Ramp-up property: raising B's weight never moves a B user back to A."""
    before = TrafficSplit({"B": low, "A": 1 - low}).assign(user)
    after = TrafficSplit({"B": high, "A": 1 - high}).assign(user)
    assert not (before == "B" and after == "A")


# ----------------------------------------------------------------------------- tests


def test_welch_matches_scipy_and_hand_computed_interval():
    a = [20.1, 22.3, 19.8, 21.5, 20.9, 23.0, 21.1]
    b = [22.8, 24.1, 23.5, 25.0, 22.2, 24.6]
    result = abtest.welch_t_test(a, b)
    reference = stats.ttest_ind(b, a, equal_var=False)
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-9)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert result.difference == pytest.approx(np.mean(b) - np.mean(a))
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    df = (va + vb) ** 2 / (va**2 / 6 + vb**2 / 5)
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert result.ci == pytest.approx((result.difference - half, result.difference + half))
    assert result.significant(0.05)


def test_welch_identical_groups_is_not_significant():
    result = abtest.welch_t_test([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert result.statistic == 0 and result.p_value == pytest.approx(1.0)
    assert not result.significant()


def test_mann_whitney_matches_scipy():
    a = [1.1, 2.3, 0.8, 1.9, 2.2, 1.4]
    b = [2.5, 3.1, 2.0, 3.3, 2.9]
    result = abtest.mann_whitney_u(a, b)
    reference = stats.mannwhitneyu(b, a, alternative="two-sided")
    assert result.statistic == reference.statistic
    assert result.p_value == pytest.approx(reference.pvalue)
    # every b but 2.0 is above every a; 2.0 beats four of six: U_b = 4*6 + 4 = 28
    assert result.statistic == 28
    assert result.details["prob_b_greater"] == pytest.approx(28 / 30)


def test_two_proportion_z_test_hand_computed():
    # A: 45/100, B: 60/100 -> pooled 0.525, se = sqrt(.525 * .475 * 2/100) = 0.070622, z = 2.1240
    result = abtest.two_proportion_z_test(45, 100, 60, 100)
    assert result.difference == pytest.approx(0.15)
    assert result.statistic == pytest.approx(0.15 / math.sqrt(0.525 * 0.475 * 0.02), rel=1e-9)
    assert result.statistic == pytest.approx(2.1240, abs=1e-4)
    assert result.p_value == pytest.approx(0.03367, abs=1e-4)
    se = math.sqrt(0.45 * 0.55 / 100 + 0.6 * 0.4 / 100)
    assert result.ci == pytest.approx((0.15 - 1.959964 * se, 0.15 + 1.959964 * se), rel=1e-5)
    # the z-test is the square root of the chi-square test without continuity correction
    chi2 = stats.chi2_contingency([[60, 40], [45, 55]], correction=False)
    assert result.p_value == pytest.approx(chi2.pvalue, rel=1e-9)


def test_fisher_exact_matches_scipy_and_the_tea_tasting_experiment():
    # Fisher's lady tasting tea: 3 of 4 cups right in each group -> two-sided p = 0.4857
    result = abtest.fisher_exact_test(1, 4, 3, 4)
    assert result.p_value == pytest.approx(0.4857, abs=1e-4)
    assert result.difference == pytest.approx(0.5)
    assert abtest.fisher_exact_test(10, 40, 25, 40).p_value == pytest.approx(
        stats.fisher_exact([[25, 15], [10, 30]]).pvalue)


def test_wilson_interval_textbook_value():
    # Wilson 95% interval for 8/10: (0.4902, 0.9433)
    low, high = abtest.wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert abtest.wilson_interval(0, 20)[0] == 0.0 and abtest.wilson_interval(20, 20)[1] == 1.0
    with pytest.raises(ValueError):
        abtest.wilson_interval(11, 10)


@settings(max_examples=60)
@given(n=st.integers(1, 500), data=st.data())
def test_wilson_interval_contains_the_estimate(n, data):
    successes = data.draw(st.integers(0, n))
    low, high = abtest.wilson_interval(successes, n)
    assert 0 <= low <= successes / n <= high <= 1


# ----------------------------------------------------------------------------- power


def test_sample_size_two_proportions_hand_computed():
    # p 0.5 vs 0.6, alpha .05, power .8: (1.95996*sqrt(2*.55*.45) + .84162*sqrt(.25+.24))^2 / .01 = 387.3
    assert abtest.sample_size_two_proportions(0.5, 0.6) == 388
    assert abtest.sample_size_two_proportions(0.6, 0.5) == 388
    assert abtest.sample_size_two_proportions(0.5, 0.7) < abtest.sample_size_two_proportions(0.5, 0.6)
    with pytest.raises(ValueError):
        abtest.sample_size_two_proportions(0.5, 0.5)


def test_power_matches_the_sample_size():
    n = abtest.sample_size_two_proportions(0.8, 0.7, power=0.9)
    assert abtest.power_two_proportions(0.8, 0.7, n) >= 0.9
    assert abtest.power_two_proportions(0.8, 0.7, n - 5) < 0.9
    assert abtest.power_two_proportions(0.5, 0.5, 1000) == pytest.approx(0.05, abs=1e-9)  # no effect: alpha
    powers = [abtest.power_two_proportions(0.5, 0.55, n) for n in (50, 200, 800, 3200)]
    assert powers == sorted(powers) and powers[-1] > 0.95


def test_sample_size_means_hand_computed():
    # delta = one sd: 2 * (1.95996 + 0.84162)^2 = 15.7 -> 16 per group
    assert abtest.sample_size_means(1.0, 1.0) == 16
    assert abtest.sample_size_means(0.5, 1.0) == 63  # 4 * 15.698 = 62.8
    assert abtest.sample_size_means(-0.5, 1.0) == 63


# ----------------------------------------------------------------------------- aggregation and decision


def test_summarize_counts_and_percentiles():
    observations = [("A", 0.1, True), ("A", 0.2, False), ("A", 0.3, True), ("B", 0.05, True), ("B", 0.07, True)]
    summary = abtest.summarize(observations)
    assert list(summary) == ["A", "B"]
    assert summary["A"].n == 3 and summary["A"].successes == 2
    assert summary["A"].accuracy == pytest.approx(2 / 3)
    assert summary["A"].latency_mean == pytest.approx(0.2) and summary["A"].latency_p50 == pytest.approx(0.2)
    assert summary["B"].accuracy == 1.0 and summary["B"].accuracy_ci == abtest.wilson_interval(2, 2)
    assert "A: n=3" in summary["A"].row()


def _test(difference, p, ci=None):
    return abtest.TestResult("t", 0.0, p, difference, ci)


def _quality(difference, ci):
    return abtest.TestResult("paired", 0.0, 0.5, difference, ci, {"confidence": 0.95})


def test_decide_keeps_a_when_b_is_worse_by_more_than_the_margin_even_if_faster():
    decision = abtest.decide(latency=_test(-0.1, 1e-6), quality=_quality(-0.3, (-0.4, -0.2)), margin=0.05)
    assert decision.verdict == "keep A"
    assert decision.reasons[0].startswith("accuracy B-A = -30.0 points")


def test_decide_ships_b_only_when_the_lower_bound_clears_the_margin():
    faster = _test(-0.1, 1e-6)
    assert abtest.decide(latency=faster, quality=_quality(-0.01, (-0.04, 0.02)), margin=0.05).verdict == "ship B"
    # better quality (lower bound > 0) at equal latency also ships
    assert abtest.decide(latency=_test(0.001, 0.7), quality=_quality(0.1, (0.02, 0.2)), margin=0.05).verdict == "ship B"


def test_decide_does_not_ship_b_on_a_drop_that_is_merely_not_significant():
    # The old rule shipped B here: faster, and the 4-point drop is "not significant" (the CI
    # contains 0). But the CI also contains a 12-point loss: non-inferiority is not shown.
    decision = abtest.decide(latency=_test(-0.1, 1e-6), quality=_quality(-0.04, (-0.12, 0.03)), margin=0.05)
    assert decision.verdict == "keep collecting"
    assert "non-inferiority not shown" in str(decision)
    # the same data with a margin fixed wider in advance (15 points) ships
    assert abtest.decide(latency=_test(-0.1, 1e-6), quality=_quality(-0.04, (-0.12, 0.03)),
                         margin=0.15).verdict == "ship B"


def test_decide_keeps_a_when_b_is_significantly_slower_beyond_tolerance():
    good = _quality(0.0, (-0.02, 0.02))
    assert abtest.decide(latency=_test(0.05, 0.001), quality=good, margin=0.05).verdict == "keep A"
    relaxed = abtest.decide(latency=_test(0.05, 0.001), quality=_quality(0.1, (0.02, 0.2)), margin=0.05,
                            max_latency_increase=0.1)
    assert relaxed.verdict == "ship B"


def test_decide_non_inferior_without_a_gain_keeps_collecting():
    decision = abtest.decide(latency=_test(-0.01, 0.3), quality=_quality(0.0, (-0.02, 0.02)), margin=0.05)
    assert decision.verdict == "keep collecting" and "no significant gain" in str(decision)


def test_decide_needs_a_margin_and_an_interval():
    with pytest.raises(ValueError):
        abtest.decide(latency=_test(-0.1, 1e-6), quality=_quality(0.0, (-0.02, 0.02)), margin=0.0)
    with pytest.raises(ValueError):
        abtest.decide(latency=_test(-0.1, 1e-6), quality=_test(0.0, 0.5), margin=0.05)


# ----------------------------------------------------------------------------- paired quality


def test_paired_table_counts_each_item_once_and_needs_the_same_items():
    a = {"s1": True, "s2": True, "s3": False, "s4": False, "s5": True}
    b = {"s1": True, "s2": False, "s3": True, "s4": False, "s5": True}
    table = abtest.paired_table(a, b)
    assert (table.both_right, table.only_a_right, table.only_b_right, table.both_wrong) == (2, 1, 1, 1)
    assert table.n == 5 and table.discordant == 2 and table.difference == 0.0
    assert table.accuracy_a == table.accuracy_b == pytest.approx(0.6)
    with pytest.raises(ValueError):
        abtest.paired_table(a, {"s1": True})


def test_mcnemar_exact_known_values():
    # 10 items only A got right, 2 only B: p = 2 P(X <= 2), X ~ Bin(12, 1/2) = 2 * 79 / 4096
    table = abtest.PairedTable(both_right=40, only_a_right=10, only_b_right=2, both_wrong=8)
    result = abtest.mcnemar_test(table)
    assert result.p_value == pytest.approx(158 / 4096, rel=1e-12)
    assert result.p_value == pytest.approx(stats.binomtest(2, 12, 0.5).pvalue, rel=1e-12)
    assert result.difference == pytest.approx(-8 / 60)
    # symmetric, capped at 1, and 1 with no discordant items
    flipped = abtest.PairedTable(40, 2, 10, 8)
    assert abtest.mcnemar_test(flipped).p_value == pytest.approx(result.p_value)
    assert abtest.mcnemar_test(abtest.PairedTable(5, 3, 3, 5)).p_value == 1.0
    assert abtest.mcnemar_test(abtest.PairedTable(5, 0, 0, 5)).p_value == 1.0


def test_mcnemar_chi_square_with_continuity_correction_known_values():
    # (|10 - 2| - 1)^2 / 12 = 49 / 12
    result = abtest.mcnemar_test(abtest.PairedTable(40, 10, 2, 8), exact=False)
    assert result.statistic == pytest.approx(49 / 12)
    assert result.p_value == pytest.approx(0.043308, abs=1e-6)
    # Agresti (2002), Categorical Data Analysis, Table 10.1 (presidential approval, two surveys of
    # the same 1,600 people): 794, 150, 86, 570 -> corrected statistic 63^2 / 236 = 16.82
    agresti = abtest.PairedTable(both_right=794, only_a_right=150, only_b_right=86, both_wrong=570)
    result = abtest.mcnemar_test(agresti, exact=False)
    assert result.statistic == pytest.approx(3969 / 236)
    assert result.p_value == pytest.approx(stats.chi2.sf(3969 / 236, 1))
    assert result.difference == pytest.approx(-0.04)


def test_paired_interval_matches_wald_at_large_n():
    # Agresti's example again: the Wald interval of the paired difference, fine at n = 1600, is
    # -0.04 +- 1.96 sqrt(236 - 64^2 / 1600) / 1600 = (-0.0587, -0.0213) (Agresti: -0.06 to -0.02)
    agresti = abtest.PairedTable(794, 150, 86, 570)
    low, high = abtest.paired_difference_ci(agresti)
    half = 1.959964 * math.sqrt(236 - 64**2 / 1600) / 1600
    assert low == pytest.approx(-0.04 - half, abs=1e-3) and high == pytest.approx(-0.04 + half, abs=1e-3)


def test_paired_interval_edge_cases_stay_in_range():
    assert abtest.paired_difference_ci(abtest.PairedTable(10, 0, 0, 0))[0] < 0 < abtest.paired_difference_ci(
        abtest.PairedTable(10, 0, 0, 0))[1]
    low, high = abtest.paired_difference_ci(abtest.PairedTable(0, 0, 20, 0))  # B right on all, A on none
    assert -1 <= low <= high <= 1 and low > 0.5


def test_paired_interval_covers_the_true_difference_about_95_percent():
    # 60 items, strongly correlated variants (they agree on 90%): the paired interval must cover
    # the truth ~95% of the time. Treating the two accuracies as independent samples ignores the
    # correlation and gives intervals far too wide (coverage near 100%), so this can fail.
    rng = np.random.default_rng(0)
    cells = np.array([0.80, 0.06, 0.04, 0.10])  # both right, only A, only B, both wrong
    truth = cells[2] - cells[1]
    covered, unpaired_covered, width, unpaired_width = 0, 0, 0.0, 0.0
    reps = 2000
    for counts in rng.multinomial(60, cells, size=reps):
        table = abtest.PairedTable(*map(int, counts))
        low, high = abtest.paired_difference_ci(table)
        covered += low <= truth <= high
        width += high - low
        z = abtest.two_proportion_z_test(table.both_right + table.only_a_right, 60,
                                         table.both_right + table.only_b_right, 60)
        unpaired_covered += z.ci[0] <= truth <= z.ci[1]
        unpaired_width += z.ci[1] - z.ci[0]
    assert 0.93 <= covered / reps <= 0.985
    assert unpaired_covered / reps > 0.99 and unpaired_width > 1.3 * width


def test_repeating_items_inflates_unpaired_tests_but_not_the_paired_one():
    # A deterministic classifier and 60 items cycled 10 times: the unpaired z-test sees 600
    # "independent" requests per arm and finds a 'significant' 5-point drop; the items say otherwise.
    a = {i: i < 51 for i in range(60)}               # 51 / 60 right
    b = {i: i < 48 for i in range(60)}               # 48 / 60 right, a subset of A's
    cycled = abtest.two_proportion_z_test(51 * 10, 600, 48 * 10, 600)
    paired = abtest.mcnemar_test(abtest.paired_table(a, b))
    assert cycled.p_value < 0.05 < paired.p_value
    assert paired.p_value == pytest.approx(0.25)       # 3 discordant items, all against B: 2 / 8


def test_sample_size_mcnemar_hand_computed():
    # psi = 0.2, d = 0.1: (1.95996 sqrt(.2) + .84162 sqrt(.19))^2 / .01 = 154.6 -> 155 pairs
    assert abtest.sample_size_mcnemar(0.2, 0.1) == 155
    assert abtest.sample_size_mcnemar(0.2, -0.1) == 155
    assert abtest.sample_size_mcnemar(0.1, 0.1) < abtest.sample_size_mcnemar(0.3, 0.1)
    with pytest.raises(ValueError):
        abtest.sample_size_mcnemar(0.05, 0.1)
    with pytest.raises(ValueError):
        abtest.sample_size_mcnemar(0.2, 0.0)
