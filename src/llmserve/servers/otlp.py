"""An OpenTelemetry trace receiver (OTLP over HTTP, protobuf) that keeps every span it is sent.

What an OpenTelemetry Collector or Jaeger would receive, kept in memory for a notebook. vLLM exports a span
per finished request (`llm_request`, with its queue, prefill and decode times) when started with
`--otlp-traces-endpoint`; with OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/protobuf it posts them here:

    with OTLPTraceReceiver() as traces, VLLMServer(
            extra_args=["--otlp-traces-endpoint", traces.traces_url],
            env={"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
                 "OTEL_BSP_SCHEDULE_DELAY": "500"}) as server:   # export every 0.5 s, not every 5 s
        ...
        spans = traces.wait_for("llm_request", count=16)

It runs in a thread of this process (no child process), on a free port, until `stop()` or the end of `with`.
The protobuf types come from `opentelemetry-proto`, which vLLM's OpenTelemetry exporters depend on.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from llmserve.servers.receiver import PostReceiver


@dataclass(frozen=True)
class Span:
    """One received span: name, times (Unix seconds), attributes and its resource's attributes."""

    name: str
    start_s: float
    end_s: float
    attributes: dict[str, Any]
    resource: dict[str, Any]
    trace_id: str
    span_id: str

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def _any_value(value) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def decode_spans(body: bytes) -> list[Span]:
    """The spans of one OTLP/HTTP protobuf export request (ExportTraceServiceRequest)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {kv.key: _any_value(kv.value) for kv in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(Span(span.name, span.start_time_unix_nano / 1e9, span.end_time_unix_nano / 1e9,
                                  {kv.key: _any_value(kv.value) for kv in span.attributes}, resource,
                                  span.trace_id.hex(), span.span_id.hex()))
    return spans


@dataclass
class OTLPTraceReceiver(PostReceiver):
    """OTLP/HTTP trace endpoint (`POST /v1/traces`, protobuf); keeps every span in `spans`."""

    port: int | None = None
    spans: list[Span] = field(default_factory=list)

    thread_name = "otlp-receiver"

    def __post_init__(self):
        self._init_receiver()
        self.rejected = 0  # requests that were not a protobuf trace export

    @property
    def traces_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/traces"

    def handle_post(self, path, headers, body):
        try:
            if path != "/v1/traces" or "json" in headers.get("Content-Type", ""):
                raise ValueError("not an OTLP/HTTP protobuf trace export")
            spans = decode_spans(body)
        except Exception:  # a malformed export is refused, as a collector would
            with self._lock:
                self.rejected += 1
            return 400, {}
        with self._lock:
            self.spans.extend(spans)
        # an empty ExportTraceServiceResponse
        return 200, {"Content-Type": "application/x-protobuf", "Content-Length": "0"}

    def received(self, name: str | None = None) -> list[Span]:
        """The spans so far (optionally only those called `name`), in the order they arrived."""
        with self._lock:
            return [s for s in self.spans if name is None or s.name == name]

    def wait_for(self, name: str, count: int = 1, timeout_s: float = 30.0) -> list[Span]:
        """Wait until at least `count` spans called `name` have arrived; return them (TimeoutError otherwise)."""
        deadline = time.monotonic() + timeout_s
        while len(found := self.received(name)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(found)} of {count} '{name}' spans within {timeout_s:g} s "
                                   f"(is the server started with --otlp-traces-endpoint {self.traces_url}?)")
            time.sleep(0.1)  # polling interval while the exporter's batch is on its way
        return found
