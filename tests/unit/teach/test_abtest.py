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


def _test(difference, p):
    return abtest.TestResult("t", 0.0, p, difference)


def test_decide_keeps_a_when_b_is_significantly_less_accurate_even_if_faster():
    decision = abtest.decide(latency=_test(-0.1, 1e-6), quality=_test(-0.3, 1e-4))
    assert decision.verdict == "keep A"
    assert decision.reasons[0].startswith("accuracy B-A = -30.0 percentage points")


def test_decide_ships_b_when_faster_and_not_worse():
    assert abtest.decide(latency=_test(-0.1, 1e-6), quality=_test(-0.02, 0.6)).verdict == "ship B"
    assert abtest.decide(latency=_test(0.001, 0.7), quality=_test(0.1, 0.01)).verdict == "ship B"


def test_decide_keeps_a_when_b_is_significantly_slower_beyond_tolerance():
    assert abtest.decide(latency=_test(0.05, 0.001), quality=_test(0.0, 1.0)).verdict == "keep A"
    relaxed = abtest.decide(latency=_test(0.05, 0.001), quality=_test(0.1, 0.01), max_latency_increase=0.1)
    assert relaxed.verdict == "ship B"


def test_decide_without_significance_keeps_collecting():
    decision = abtest.decide(latency=_test(-0.01, 0.3), quality=_test(0.05, 0.4))
    assert decision.verdict == "keep collecting"
    assert "no significant difference" in str(decision)
    tolerant = abtest.decide(latency=_test(0.0, 0.9), quality=_test(-0.01, 0.01), max_accuracy_drop=0.02)
    assert tolerant.verdict == "keep collecting"  # a tolerated, significant 1-point drop is not a reason to stop
