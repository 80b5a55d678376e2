"""Triton's request-trace files (`--trace-config mode=triton`): one record per request and
the time spent between its stages."""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Trace:
    """One traced request: its model and the nanosecond timestamps of its stages."""
    id: int
    model_name: str | None = None
    model_version: int | None = None
    parent_id: int | None = None
    timestamps: dict[str, int] = field(default_factory=dict)

    def duration_us(self, start: str, end: str) -> float:
        return (self.timestamps[end] - self.timestamps[start]) / 1000


def read_trace_file(path: str | Path | Sequence[str | Path]) -> list[Trace]:
    """Merge the entries of Triton trace file(s) (`mode=triton`) into one Trace per id.

    The server writes one JSON array per file; entries for one request are scattered
    (`{"id": 1, "model_name": ...}`, `{"id": 1, "timestamps": [{"name": ..., "ns": ...}]}`).
    """
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    traces: dict[int, Trace] = {}
    for one in paths:
        for entry in json.loads(Path(one).read_text()):
            trace = traces.setdefault(entry["id"], Trace(id=entry["id"]))
            for key in ("model_name", "model_version", "parent_id"):
                if key in entry:
                    setattr(trace, key, entry[key])
            for stamp in entry.get("timestamps", []):
                trace.timestamps[stamp["name"]] = int(stamp["ns"])
    return [traces[k] for k in sorted(traces)]


# The stages of one request, in order, as (label, from timestamp, to timestamp).
TRACE_STAGES = (
    ("receive request", "HTTP_RECV_START", "HTTP_RECV_END"),
    ("frontend -> scheduler", "HTTP_RECV_END", "REQUEST_START"),
    ("queue", "QUEUE_START", "COMPUTE_START"),
    ("compute input", "COMPUTE_START", "COMPUTE_INPUT_END"),
    ("compute infer", "COMPUTE_INPUT_END", "COMPUTE_OUTPUT_START"),
    ("compute output", "COMPUTE_OUTPUT_START", "COMPUTE_END"),
    ("send response", "HTTP_SEND_START", "HTTP_SEND_END"),
)


def trace_stages(trace: Trace) -> dict[str, float]:
    """Microseconds per stage of one request (the stages whose two timestamps it has; gRPC
    traces have GRPC_* instead of HTTP_* stamps and are mapped the same way)."""
    stamps = {name.replace("GRPC_", "HTTP_"): ns for name, ns in trace.timestamps.items()}
    return {label: (stamps[end] - stamps[start]) / 1000
            for label, start, end in TRACE_STAGES if start in stamps and end in stamps}
