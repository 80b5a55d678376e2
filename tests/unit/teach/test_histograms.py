"""teach.histograms: Prometheus's histogram_quantile, step by step, checked against Prometheus's own engine
(promtool evaluates the same buckets) and on its edge cases."""
import math

import pytest
import yaml

from llmserve.ops.alerting import run_rule_tests
from llmserve.teach.histograms import bucket_quantile, cumulative_counts

INF = math.inf
BUCKETS = [(0.1, 3), (0.25, 12), (0.5, 19), (INF, 20)]


def test_the_rank_the_bucket_and_the_interpolation():
    estimate = bucket_quantile(0.9, BUCKETS)
    assert (estimate.rank, estimate.lower, estimate.upper, estimate.below, estimate.inside) == (18, 0.25, 0.5, 12, 7)
    assert estimate.value == pytest.approx(0.25 + 0.25 * 6 / 7)
    assert estimate.fraction_into_bucket == pytest.approx(6 / 7)
    assert estimate.rule == "interpolated"
    assert "(250, 500] ms" in estimate.explain(unit="ms", scale=1000)


def test_the_first_bucket_interpolates_from_zero():
    assert bucket_quantile(0.1, BUCKETS).value == pytest.approx(0.1 * 2 / 3)


def test_a_rank_in_the_inf_bucket_returns_the_largest_finite_bound():
    estimate = bucket_quantile(0.99, BUCKETS)
    assert estimate.value == 0.5 and estimate.upper == INF and "+Inf" in estimate.rule


def test_prometheus_edge_cases():
    assert math.isnan(bucket_quantile(0.5, [(0.1, 1), (0.5, 2)]).value)          # no +Inf bucket
    assert math.isnan(bucket_quantile(0.5, [(0.1, 0), (INF, 0)]).value)          # no observations
    assert bucket_quantile(-0.1, BUCKETS).value == -INF
    assert bucket_quantile(1.1, BUCKETS).value == INF
    assert bucket_quantile(0.5, [(-1.0, 5), (0.0, 5), (INF, 10)]).value == -1.0  # a first bound <= 0 is returned


def test_decreasing_counts_are_raised_and_equal_bounds_merged():
    # a scrape race can make a higher bucket read lower; Prometheus raises it to the running maximum
    assert bucket_quantile(0.9, [(0.1, 3), (0.25, 12), (0.5, 11), (1.0, 19), (INF, 20)]).lower == 0.5
    assert bucket_quantile(0.5, [(0.1, 2), (0.1, 2), (INF, 8)]).inside == 4


def test_cumulative_counts_are_what_a_histogram_would_hold():
    assert cumulative_counts([0.05, 0.1, 0.3, 7.0], [0.1, 0.5, 1.0]) == [(0.1, 2), (0.5, 3), (1.0, 3), (INF, 4)]


@pytest.mark.parametrize("q", [0.1, 0.5, 0.9, 0.95, 0.99])
def test_the_same_value_as_prometheus(tmp_path, q):
    """promtool runs Prometheus's query engine on the same bucket counts: the values must agree."""
    (tmp_path / "empty.yml").write_text("groups: []\n")
    test = {"rule_files": ["empty.yml"], "tests": [{
        "interval": "1m",
        "input_series": [{"series": f'h_bucket{{le="{"+Inf" if le == INF else le}"}}', "values": str(count)}
                         for le, count in BUCKETS],
        "promql_expr_test": [{"expr": f"histogram_quantile({q}, h_bucket)", "eval_time": "0m",
                              "exp_samples": [{"labels": "{}", "value": bucket_quantile(q, BUCKETS).value}]}]}]}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test))
    assert "SUCCESS" in run_rule_tests(tmp_path / "test.yml")
