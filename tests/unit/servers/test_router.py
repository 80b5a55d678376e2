"""VLLMRouterServer's command line and metrics reading, the detection bound, and start_together's order."""
import sys

import pytest

from llmserve.servers import ServerStartError, start_together
from llmserve.servers import router as router_module
from llmserve.servers.router import RouterMetrics, detection_bound_s, router_binary, router_command

METRICS_PAGE = """\
# HELP vllm_router_processed_requests_total Requests processed per worker
vllm_router_processed_requests_total{worker="http://127.0.0.1:8001"} 3
vllm_router_processed_requests_total{worker="http://127.0.0.1:8002"} 12
vllm_router_requests_total{route="/v1/completions"} 12
vllm_router_retries_total{route="/v1/completions"} 2
vllm_router_retries_total{route="/v1/chat/completions"} 1
vllm_router_worker_health{worker="http://127.0.0.1:8001"} 0
vllm_router_worker_health{worker="http://127.0.0.1:8002"} 1
vllm_router_cb_outcomes_total{worker="http://127.0.0.1:8001",outcome="failure"} 3
vllm_router_cb_outcomes_total{worker="http://127.0.0.1:8001",outcome="success"} 4
"""


def test_command_sets_policy_health_checks_and_workers():
    command = router_command("vllm-router", ["http://a:1", "http://b:2"], port=30000, prometheus_port=29000,
                             policy="cache_aware", health_check_interval_s=2, max_retries=2)
    assert command[command.index("--policy") + 1] == "cache_aware"
    assert command[command.index("--worker-urls") + 1:command.index("--worker-urls") + 3] == ["http://a:1", "http://b:2"]
    assert command[command.index("--health-check-interval-secs") + 1] == "2"
    assert command[command.index("--retry-max-retries") + 1] == "2"
    assert command[command.index("--worker-startup-check-interval") + 1] == "1"  # not the default 30 s
    assert all(isinstance(part, str) for part in command)


@pytest.mark.parametrize("policy, workers, message", [("least_conn", ["http://a:1"], "policy"), ("round_robin", [], "worker")])
def test_command_refuses_unknown_policy_and_no_workers(policy, workers, message):
    with pytest.raises(ValueError, match=message):
        router_command("vllm-router", workers, port=1, prometheus_port=2, policy=policy)


def test_metrics_per_worker_and_totals():
    metrics = RouterMetrics.from_text(METRICS_PAGE)
    assert metrics.processed == {"http://127.0.0.1:8001": 3, "http://127.0.0.1:8002": 12}
    assert metrics.healthy == {"http://127.0.0.1:8001": False, "http://127.0.0.1:8002": True}
    assert metrics.retries == 3  # summed over routes
    assert metrics.requests == 12
    assert metrics.per_worker("vllm_router_cb_outcomes_total") == {"http://127.0.0.1:8001": 7}


def test_detection_bound():
    assert detection_bound_s(interval_s=1, failure_threshold=2, timeout_s=1) == 4
    assert detection_bound_s(interval_s=5, failure_threshold=3, timeout_s=2) == 21
    with pytest.raises(ValueError):
        detection_bound_s(interval_s=0, failure_threshold=2, timeout_s=1)


def test_missing_binary_says_run_make_setup(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setattr(router_module.shutil, "which", lambda name: None)
    with pytest.raises(ServerStartError, match="make setup"):
        router_binary()


class FakeServer:
    def __init__(self, name, log, fail=False):
        self.name, self.log, self.fail = name, log, fail

    def launch(self):
        self.log.append(f"launch {self.name}")

    def wait_ready(self):
        self.log.append(f"wait {self.name}")
        if self.fail:
            raise ServerStartError(self.name)

    def stop(self):
        self.log.append(f"stop {self.name}")


def test_start_together_launches_all_before_waiting():
    log = []
    start_together([FakeServer("a", log), FakeServer("b", log)])
    assert log == ["launch a", "launch b", "wait a", "wait b"]


def test_start_together_stops_every_server_when_one_fails():
    log = []
    with pytest.raises(ServerStartError):
        start_together([FakeServer("a", log, fail=True), FakeServer("b", log)])
    assert {"stop a", "stop b"} <= set(log)
