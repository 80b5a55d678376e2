"""vLLM's own router (`vllm-router`, a Rust binary from PyPI) in front of several OpenAI-compatible replicas.

    with VLLMRouterServer([a.base_url, b.base_url], policy="cache_aware") as router:
        requests.post(router.url("/v1/completions"), json={...})
        router.workers()          # {worker URL: healthy?} as the router sees them now
        router.metrics()          # its Prometheus counters, parsed (per-worker decisions, retries, health)

What the router does (observed with vllm-router 0.1.17; see vLLM Lab 2.4 · 01):
- at start it waits until every worker's `/health` answers 200, polling every `--worker-startup-check-interval`
  seconds (default 30: set low here), then listens;
- it picks a worker per request with `--policy` (round_robin, random, power_of_two, cache_aware,
  consistent_hash, ...), and answers a malformed body itself with 422 without bothering a worker;
- a connection error or a request that runs past `--request-timeout-secs` is retried on another worker
  (`vllm_router_retries_total`), with exponential backoff between attempts;
- a background health check (`--health-check-interval-secs`, default 60) marks a worker unhealthy after
  `--health-failure-threshold` failures in a row and healthy again after `--health-success-threshold` successes;
  an unhealthy worker gets no new requests;
- its own probes: `/liveness` is 200 while the process runs; `/readiness` is 200 while at least one worker is
  healthy, else 503; `/health` is 503 as soon as any worker is unhealthy (a page for a human, not a load balancer);
  `/workers` lists each worker with `is_healthy`; with no healthy worker a request gets 503 at once;
- its Prometheus metrics are on a separate port (`--prometheus-port`).
"""
from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import requests

from llmserve.servers.base import ManagedServer, ServerStartError, pick_port

POLICIES = ("round_robin", "random", "power_of_two", "cache_aware", "consistent_hash")


def router_binary() -> str:
    """The `vllm-router` executable of this environment (next to the interpreter), else the one on PATH."""
    beside = Path(sys.executable).parent / "vllm-router"
    found = str(beside) if beside.exists() else shutil.which("vllm-router")
    if not found:
        raise ServerStartError("vllm-router is not installed in this environment: run `make setup` "
                               "(it installs the pinned vllm-router wheel from 00-Course_Setup/requirements-cpu.txt).")
    return found


def router_command(binary: str, worker_urls: Sequence[str], *, port: int, prometheus_port: int,
                   policy: str = "round_robin", health_check_interval_s: int = 1, health_failure_threshold: int = 2,
                   health_success_threshold: int = 1, health_check_timeout_s: int = 1,
                   request_timeout_s: int = 30, max_retries: int | None = None,
                   extra_args: Sequence[str] = ()) -> list[str]:
    """The router's command line. Health checks default to every second (the router's own default is a minute,
    far too slow to see a failover in a lesson); the startup check polls every second too."""
    if policy not in POLICIES:
        raise ValueError(f"policy {policy!r}: choose one of {', '.join(POLICIES)}")
    if not worker_urls:
        raise ValueError("give at least one worker URL")
    command = [binary, "--host", "127.0.0.1", "--port", port, "--worker-urls", *worker_urls,
               "--policy", policy, "--prometheus-host", "127.0.0.1", "--prometheus-port", prometheus_port,
               "--worker-startup-check-interval", 1,
               "--health-check-interval-secs", health_check_interval_s,
               "--health-failure-threshold", health_failure_threshold,
               "--health-success-threshold", health_success_threshold,
               "--health-check-timeout-secs", health_check_timeout_s,
               "--request-timeout-secs", request_timeout_s]
    if max_retries is not None:
        command += ["--retry-max-retries", max_retries]
    return [str(part) for part in [*command, *extra_args]]


class VLLMRouterServer(ManagedServer):
    """`vllm-router` in front of `worker_urls` (see the module docstring for what it does)."""

    name = "vllm-router"

    def __init__(self, worker_urls: Sequence[str], *, policy: str = "round_robin", port: int | None = None,
                 prometheus_port: int | None = None, health_check_interval_s: int = 1,
                 health_failure_threshold: int = 2, health_success_threshold: int = 1,
                 health_check_timeout_s: int = 1, request_timeout_s: int = 30, max_retries: int | None = None,
                 extra_args: Sequence[str] = (), start_timeout: float = 60.0, **kwargs):
        self.worker_urls = [url.rstrip("/") for url in worker_urls]
        self.policy = policy
        self.health_check_interval_s, self.health_check_timeout_s = health_check_interval_s, health_check_timeout_s
        self.health_failure_threshold, self.request_timeout_s = health_failure_threshold, request_timeout_s
        self.port = pick_port(port)
        self.prometheus_port = pick_port(prometheus_port)
        command = router_command(router_binary(), self.worker_urls, port=self.port,
                                 prometheus_port=self.prometheus_port, policy=policy,
                                 health_check_interval_s=health_check_interval_s,
                                 health_failure_threshold=health_failure_threshold,
                                 health_success_threshold=health_success_threshold,
                                 health_check_timeout_s=health_check_timeout_s,
                                 request_timeout_s=request_timeout_s, max_retries=max_retries, extra_args=extra_args)
        super().__init__(command, health_url=f"http://127.0.0.1:{self.port}/readiness",
                         ports=[self.port, self.prometheus_port], start_timeout=start_timeout,
                         env={"NO_COLOR": "1", "RUST_LOG_STYLE": "never"}, **kwargs)

    poll_interval_s = 0.1  # the router itself starts in milliseconds, once its workers answer

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        return f"{self.base_url}{path}"

    def openai_client(self, **kwargs):
        from openai import OpenAI
        return OpenAI(base_url=f"{self.base_url}/v1", api_key="not-needed-locally", **kwargs)

    def workers(self) -> dict[str, bool]:
        """{worker URL: healthy?} from the router's `/workers`."""
        listing = requests.get(self.url("/workers"), timeout=5).json()
        return {worker["url"]: bool(worker["is_healthy"]) for worker in listing["workers"]}

    def metrics_text(self) -> str:
        return requests.get(f"http://127.0.0.1:{self.prometheus_port}/metrics", timeout=5).text

    def detection_bound_s(self) -> float:
        """The longest its health checker can take to mark a hung worker unhealthy (see `detection_bound_s`)."""
        return detection_bound_s(interval_s=self.health_check_interval_s,
                                 failure_threshold=self.health_failure_threshold, timeout_s=self.health_check_timeout_s)

    def metrics(self) -> RouterMetrics:
        return RouterMetrics.from_text(self.metrics_text())


class RouterMetrics:
    """The router's counters that tell where requests went: per worker and in total."""

    def __init__(self, samples: dict):
        self.samples = samples  # parse_prometheus_text's {(name, label pairs): value}

    @classmethod
    def from_text(cls, text: str) -> RouterMetrics:
        from llmserve.measure.prometheus_text import parse_prometheus_text
        return cls(parse_prometheus_text(text))

    def per_worker(self, name: str) -> dict[str, float]:
        """{worker URL: value} of a per-worker metric (labelled `worker`), summed over its other labels."""
        found: dict[str, float] = {}
        for (sample, pairs), value in self.samples.items():
            worker = dict(pairs).get("worker")
            if sample == name and worker is not None:
                found[worker] = found.get(worker, 0.0) + value
        return found

    def total(self, name: str) -> float:
        return sum(value for (sample, _), value in self.samples.items() if sample == name)

    @property
    def processed(self) -> dict[str, float]:
        """Requests the router sent to each worker (a retried request counts once per attempt)."""
        return self.per_worker("vllm_router_processed_requests_total")

    @property
    def healthy(self) -> dict[str, bool]:
        return {url: value >= 1 for url, value in self.per_worker("vllm_router_worker_health").items()}

    @property
    def retries(self) -> float:
        return self.total("vllm_router_retries_total")

    @property
    def requests(self) -> float:
        return self.total("vllm_router_requests_total")


def detection_bound_s(*, interval_s: float, failure_threshold: int, timeout_s: float) -> float:
    """The longest a health checker can take to mark a broken worker unhealthy: `failure_threshold` checks in a row
    must fail, one every `interval_s`, and a hung worker makes each wait `timeout_s` before it counts as failed
    (a dead one refuses at once, so it is caught sooner). Traffic already sent meanwhile is not covered: that is
    what the router's retries are for."""
    if interval_s <= 0 or timeout_s <= 0 or failure_threshold < 1:
        raise ValueError("interval_s and timeout_s must be positive, failure_threshold at least 1")
    return failure_threshold * (interval_s + timeout_s)
