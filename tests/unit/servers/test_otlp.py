"""servers.OTLPTraceReceiver: spans exported by the real OpenTelemetry SDK (OTLP over HTTP, protobuf), as vLLM
exports them, arrive with their attributes and times; anything else is refused."""
import time

import pytest
import requests
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from llmserve.servers import OTLPTraceReceiver


def test_spans_from_the_sdk_arrive_with_attributes_and_times():
    with OTLPTraceReceiver() as receiver:
        provider = TracerProvider(resource=Resource.create({"service.name": "course-test"}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=receiver.traces_url)))
        tracer = provider.get_tracer("test")
        before = time.time()
        with tracer.start_as_current_span("llm_request") as span:
            span.set_attribute("gen_ai.latency.time_in_queue", 0.25)
            span.set_attribute("gen_ai.usage.prompt_tokens", 37)
            span.set_attribute("gen_ai.request.id", "chatcmpl-1")
            with tracer.start_as_current_span("inner"):
                pass
        provider.shutdown()
        spans = receiver.wait_for("llm_request", timeout_s=10)
        assert [s.name for s in receiver.received()] == ["inner", "llm_request"]  # a child ends first
    request = spans[0]
    assert request.attributes == {"gen_ai.latency.time_in_queue": 0.25, "gen_ai.usage.prompt_tokens": 37,
                                  "gen_ai.request.id": "chatcmpl-1"}
    assert request.resource["service.name"] == "course-test"
    assert before <= request.start_s <= request.end_s <= time.time() and request.duration_s >= 0
    assert receiver.received("inner")[0].trace_id == request.trace_id


def test_other_requests_are_refused_and_waiting_times_out():
    with OTLPTraceReceiver() as receiver:
        assert requests.post(receiver.traces_url, data=b"\xff\x00garbage", timeout=5).status_code == 400
        assert requests.post(receiver.traces_url, json={"resourceSpans": []}, timeout=5).status_code == 400
        assert receiver.rejected == 2 and receiver.received() == []
        with pytest.raises(TimeoutError, match="otlp-traces-endpoint"):
            receiver.wait_for("llm_request", timeout_s=0.2)
