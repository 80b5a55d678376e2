"""The Prometheus text-exposition parser (llmserve.measure.prometheus_text)."""
import pytest

from llmserve.measure.prometheus_text import exposed_metric_names, metric_total, parse_prometheus_text

PAGE = """# HELP nv_inference_request_success Number of successful inference requests
# TYPE nv_inference_request_success counter
nv_inference_request_success{model="a",version="1"} 7
nv_inference_request_success{model="b",version="1"} 3
# HELP vllm:num_requests_running Running requests
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="m"} 2
"""


def test_parse_and_total():
    samples = parse_prometheus_text(PAGE)
    assert samples[("nv_inference_request_success", (("model", "a"), ("version", "1")))] == 7
    assert metric_total(samples, "nv_inference_request_success") == 10
    assert metric_total(samples, "nv_inference_request_success", model="b") == 3
    assert metric_total(samples, "vllm:num_requests_running") == 2


def test_labels_with_escaped_quotes_and_malformed_lines():
    samples = parse_prometheus_text('x{a="say \\"hi\\"",b="1"} 2.5\n')
    assert samples[("x", (("a", 'say "hi"'), ("b", "1")))] == 2.5
    with pytest.raises(ValueError, match="not a Prometheus sample"):
        parse_prometheus_text("this is not a metric line at all {")


def test_exposed_names_include_declared_series_without_samples():
    page = PAGE + """# HELP gateway_shed_total Requests refused by admission control.
# TYPE gateway_shed_total counter
# HELP ttft_seconds Time to first token.
# TYPE ttft_seconds histogram
ttft_seconds_bucket{le="1.0"} 3
ttft_seconds_bucket{le="+Inf"} 4
ttft_seconds_count 4
ttft_seconds_sum 2.5
# TYPE rpc_seconds summary
"""
    names = exposed_metric_names(page)
    assert {"nv_inference_request_success", "vllm:num_requests_running", "gateway_shed_total"} <= names
    assert {"ttft_seconds_bucket", "ttft_seconds_count", "ttft_seconds_sum"} <= names
    assert {"rpc_seconds", "rpc_seconds_count", "rpc_seconds_sum"} <= names
    assert "gateway_shed" not in names and "ttft_seconds" not in names
