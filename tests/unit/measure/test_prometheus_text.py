"""The Prometheus text-exposition parser (llmserve.measure.prometheus_text)."""
import pytest

from llmserve.measure.prometheus_text import metric_total, parse_prometheus_text

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
