"""vLLM Lab 2.3 · the gateway as real processes: uvicorn (one and two workers), Redis, an arq worker.

Marked `server`: each test starts real processes through `llmserve.servers` and checks that they are
gone afterwards. The engine-backed gateway is in test_lab23_engine.py.
"""
import json
import os
import signal
import threading
import time

import httpx
import pytest

from llmserve.servers import (
    GatewayServer,
    PortInUseError,
    RedisServer,
    ServerStartError,
    port_is_free,
)

pytestmark = pytest.mark.server


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)  # polling interval, not a stand-in for work
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_gateway_serves_probes_refuses_a_busy_port_and_stops_the_work_of_a_client_that_disconnects():
    with GatewayServer({"demo_routes": True}) as gateway:
        assert httpx.get(gateway.url("/health")).json()["status"] == "ok"
        ready = httpx.get(gateway.url("/ready")).json()
        assert (ready["ready"], ready["checks"], ready["pid"]) == (True, {"tokenizer": True, "process_pool": True},
                                                               gateway.process.pid)  # demo routes add a pool
        assert httpx.post(gateway.url("/v1/tokenize"), json={"text": "hello"}).json()["count"] >= 1
        with pytest.raises(PortInUseError, match="already in use"):
            GatewayServer(port=gateway.port).start()

        with httpx.stream("POST", gateway.url("/demo/stream"), json={"n": 400_000, "chunks": 40}, timeout=60) as r:
            lines = r.iter_lines()
            got = [next(lines) for _ in range(4)]  # two events and their blank separators
        assert got[0].startswith("data: ")
        stats = wait_for(lambda: (s := httpx.get(gateway.url("/demo/stats")).json())["stream_cancellations"] and s,
                         10, "the cancellation")
        time.sleep(1.0)  # let any chunk that was running finish; no new one may start
        later = httpx.get(gateway.url("/demo/stats")).json()
        assert later["work_chunks_started"] == stats["work_chunks_started"] < 40
        assert later["work_chunks_done"] <= later["work_chunks_started"]
        main_pid = gateway.process.pid
    assert port_is_free(gateway.port) and not gateway.running
    with pytest.raises(ProcessLookupError):
        os.kill(main_pid, 0)


def test_ready_is_503_while_the_upstream_is_down_and_bad_input_is_refused_first():
    from llmserve.servers import free_port
    dead = f"http://127.0.0.1:{free_port()}"
    with GatewayServer({"backend": "upstream", "upstream_url": dead, "max_tokens_limit": 64},
                       wait_path="/health") as gateway:
        ready = httpx.get(gateway.url("/ready"))
        assert ready.status_code == 503 and ready.json()["checks"]["upstream"] is False
        url = gateway.url("/v1/chat/completions")
        body = {"model": "course-model", "messages": [{"role": "user", "content": "hi"}]}
        too_many = httpx.post(url, json={**body, "max_tokens": 65})
        assert too_many.status_code == 422 and too_many.json()["error"]["param"] == "max_tokens"
        unavailable = httpx.post(url, json=body)
        assert unavailable.status_code == 503 and unavailable.headers["retry-after"] == "1"


def test_two_workers_share_the_port_add_up_metrics_and_a_killed_worker_is_replaced():
    with GatewayServer(workers=2) as gateway:
        workers = wait_for(lambda: len(gateway.worker_pids()) == 2 and gateway.worker_pids(), 60, "two workers")
        client = httpx.Client(base_url=gateway.base_url)
        answered = {client.get("/health").json()["pid"] for _ in range(60)}
        assert answered <= set(workers)
        for _ in range(20):
            client.post("/v1/tokenize", json={"text": "counted"})
        text = client.get("/metrics").text
        assert 'gateway_requests_total{code="200",method="POST",route="/v1/tokenize"} 20.0' in text
        victim = workers[0]
        os.kill(victim, signal.SIGKILL)
        began = time.perf_counter()
        replacement = wait_for(lambda: [p for p in gateway.worker_pids() if p not in workers], 90, "a new worker")
        # a keep-alive connection stays with its worker: ask on fresh connections until the new one answers
        wait_for(lambda: replacement[0] in {httpx.get(gateway.url("/health")).json()["pid"] for _ in range(10)}, 90,
                 "the new worker answering")
        assert time.perf_counter() - began < 90
        # the killed worker's counts stay (counters never go back); its in-flight gauge is forgotten
        text = client.get("/metrics").text
        assert 'gateway_requests_total{code="200",method="POST",route="/v1/tokenize"} 20.0' in text
        client.close()
    assert port_is_free(gateway.port)


def test_graceful_shutdown_finishes_streams_in_flight():
    with GatewayServer({"demo_routes": True}, graceful_timeout_s=30) as gateway:
        results = []

        def stream():
            with httpx.stream("POST", gateway.url("/demo/stream"), json={"n": 120_000, "chunks": 8},
                              timeout=60) as response:
                results.append([json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")])

        threads = [threading.Thread(target=stream) for _ in range(3)]
        for thread in threads:
            thread.start()
        wait_for(lambda: httpx.get(gateway.url("/demo/stats")).json()["work_chunks_started"] >= 3, 30,
                 "the streams to start")
        gateway.process.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(60)
        # uvicorn re-raises the SIGTERM after its graceful shutdown, so the exit status says why it stopped
        assert gateway.process.wait(30) in (0, -signal.SIGTERM)
        assert len(results) == 3 and all(events[-1].get("done") for events in results)


# A job that survives a worker crash (Redis, the gateway's /jobs, an arq worker SIGKILLed and replaced) is what
# notebook 02 runs and asserts (job_try 2, another worker pid) under `make test`; it is not repeated here.


def test_redis_missing_gives_the_setup_command(monkeypatch):
    import llmserve.servers.redis as redis_module
    monkeypatch.setattr(redis_module.shutil, "which", lambda name: None)
    monkeypatch.setattr(redis_module.os.path, "exists", lambda path: False)
    with pytest.raises(ServerStartError, match="Redis is not installed: run `make setup-system`"):
        RedisServer()
