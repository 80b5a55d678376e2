"""The gateway's Prometheus metrics (prometheus_client), one set per app.

- `gateway_requests_total{route,method,code}` and `gateway_request_duration_seconds{route}`: every
  request, by route template (never the raw path: unbounded label values break Prometheus);
- `gateway_in_flight_requests{route}`: requests being served now;
- `gateway_time_to_first_token_seconds`, `gateway_e2e_request_latency_seconds`: generation requests,
  with the same buckets as vLLM's `vllm:time_to_first_token_seconds` / `vllm:e2e_request_latency_seconds`
  so the two histograms can be compared bucket by bucket;
- `gateway_prompt_tokens_total`, `gateway_generation_tokens_total`;
- `gateway_shed_total{reason}`: requests refused by admission control;
- `gateway_event_loop_lag_seconds`: how late the event loop wakes up (a blocked loop shows here).

With several worker processes (uvicorn --workers N), set PROMETHEUS_MULTIPROC_DIR: each worker then
writes its values to files there and /metrics adds them up over all workers.
"""
from __future__ import annotations

import contextlib
import glob
import os
import re

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prom_multiprocess

# vLLM 0.32's buckets (vllm.v1.metrics.buckets), copied so that importing the gateway does not import vLLM.
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
                20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
               480.0, 960.0, 1920.0, 7680.0)
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    60.0, 120.0)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def multiprocess_dir() -> str | None:
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return path if path and os.path.isdir(path) else None


def forget_dead_workers(path: str) -> list[int]:
    """Remove the live-gauge files of worker processes that no longer exist (a worker killed with
    SIGKILL cannot clean up after itself; its in-flight gauge would otherwise count forever)."""
    dead = []
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        match = re.search(r"_(\d+)\.db$", name)
        if not match:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            prom_multiprocess.mark_process_dead(pid, path)
            dead.append(pid)
        except PermissionError:
            pass
    return sorted(set(dead))


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("gateway_requests", "Requests answered, by route template, method and "
                                "status code.", ["route", "method", "code"], registry=r)
        self.duration = Histogram("gateway_request_duration_seconds", "Time from request to the end of the "
                                  "response (streams: until the last byte).", ["route"], registry=r,
                                  buckets=DURATION_BUCKETS)
        self.in_flight = Gauge("gateway_in_flight_requests", "Requests being served now.", ["route"],
                               registry=r, multiprocess_mode="livesum")
        self.ttft = Histogram("gateway_time_to_first_token_seconds", "Generation requests: time from the "
                              "request to the first generated token, as the gateway sees it.", registry=r,
                              buckets=TTFT_BUCKETS)
        self.e2e = Histogram("gateway_e2e_request_latency_seconds", "Generation requests: time from the "
                             "request to its last token.", registry=r, buckets=E2E_BUCKETS)
        self.prompt_tokens = Counter("gateway_prompt_tokens", "Prompt tokens of generation requests.", registry=r)
        self.generation_tokens = Counter("gateway_generation_tokens", "Tokens generated for clients.", registry=r)
        self.shed = Counter("gateway_shed", "Requests refused by admission control.", ["reason"], registry=r)
        self.disconnects = Counter("gateway_client_disconnects", "Generation requests whose client went away "
                                   "before the end; their work was cancelled.", registry=r)
        self.loop_lag = Histogram("gateway_event_loop_lag_seconds", "How much later than asked the event loop "
                                  "woke a sleeping task.", registry=r, buckets=LAG_BUCKETS)
        self.work_chunks = Counter("gateway_work_chunks", "Demo work chunks computed (Lab 2.3 · 02).", registry=r)
        self.jobs_submitted = Counter("gateway_jobs_submitted", "Background jobs enqueued.", registry=r)

    def render(self, include_global: bool) -> bytes:
        """The text exposition: this app's metrics (added up over workers in multiprocess mode), plus the
        process-wide registry (vLLM's `vllm:` metrics and process/GC metrics) when asked."""
        path = multiprocess_dir()
        if path:
            with contextlib.suppress(OSError):
                forget_dead_workers(path)
            merged = CollectorRegistry()
            prom_multiprocess.MultiProcessCollector(merged, path=path)
            text = generate_latest(merged)
        else:
            text = generate_latest(self.registry)
        if include_global:
            from prometheus_client import REGISTRY
            text += generate_latest(REGISTRY)
        return text
