import datetime as dt
from pathlib import Path

from llmserve.course.status import render
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


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="3">
<testcase classname="02-Labs.vLLM_Track.Lab-2.1-vLLM_Deployment.01-Setup_and_Installation.ipynb" name="01-Setup_and_Installation.ipynb" time="95.2"/>
<testcase classname="02-Labs.Triton_Track.Lab-2.1-Triton_Server_Basics.01-Setup_and_Installation.ipynb" name="01-Setup_and_Installation.ipynb" time="30.1">
<failure message="boom"/></testcase>
<testcase classname="02-Labs.Triton_Track.Lab-2.1-Triton_Server_Basics.02-Model_Repository_Design.ipynb" name="02-Model_Repository_Design.ipynb" time="20"/>
</testsuite></testsuites>"""


def test_status_is_generated_from_junit(tmp_path: Path):
    (tmp_path / "notebooks.xml").write_text(JUNIT)
    known = ["02-Labs/vLLM_Track/Lab-2.1-vLLM_Deployment/01-Setup_and_Installation.ipynb",
             "02-Labs/Triton_Track/Lab-2.1-Triton_Server_Basics/01-Setup_and_Installation.ipynb",
             "02-Labs/Triton_Track/Lab-2.1-Triton_Server_Basics/02-Model_Repository_Design.ipynb"]
    text = render(tmp_path, now=dt.datetime(2026, 11, 23, 12, 0), profile="ci", notebooks_known=known)
    assert "2026-11-23 12:00" in text and "profile `ci`" in text
    assert "| vLLM_Track/Lab-2.1-vLLM_Deployment | 1 | 1 | 95 |" in text
    assert "| Triton_Track/Lab-2.1-Triton_Server_Basics | 1 | 2 | 50 |" in text
    assert "| **all** | **2** | **3** | **145** |" in text
    assert "❌ failed" in text and "| unit | – | not run | – |" in text


def test_labels_with_escaped_quotes_and_malformed_lines():
    import pytest
    samples = parse_prometheus_text('x{a="say \\"hi\\"",b="1"} 2.5\n')
    assert samples[("x", (("a", 'say "hi"'), ("b", "1")))] == 2.5
    with pytest.raises(ValueError, match="not a Prometheus sample"):
        parse_prometheus_text("this is not a metric line at all {")
