"""The Lab 2.3 server classes of `llmserve.servers` (uvicorn, gateway, Redis, arq) as commands and environments,
without starting anything; the real processes are tested in test_lab23_servers.py (marked `server`)."""
import os
import sys

import pytest

from llmserve.servers import GATEWAY_DIR, ArqWorker, GatewayServer, RedisServer, UvicornServer
from llmserve.servers.base import SERVER_PROCESS_PATTERNS
from llmserve.servers.redis import redis_binary


def test_uvicorn_command_line():
    server = UvicornServer("pkg.app:create_app", app_dir="/srv/app", factory=True, port=8123, workers=2,
                           graceful_timeout_s=30, wait_path="/ready")
    assert server.command[:3] == [sys.executable, "-m", "uvicorn"]
    joined = " ".join(server.command)
    for part in ("pkg.app:create_app", "--port 8123", "--workers 2", "--app-dir /srv/app", "--factory",
                 "--timeout-graceful-shutdown 30", "--host 127.0.0.1"):
        assert part in joined
    assert server.health_url == "http://127.0.0.1:8123/ready" and server.url("/x") == "http://127.0.0.1:8123/x"


def test_gateway_settings_become_environment_variables():
    gateway = GatewayServer({"backend": "upstream", "upstream_url": "http://127.0.0.1:9", "demo_routes": True,
                             "max_in_flight": 8}, port=8124)
    assert gateway.env["GATEWAY_BACKEND"] == "upstream" and gateway.env["GATEWAY_DEMO_ROUTES"] == "1"
    assert gateway.env["GATEWAY_MAX_IN_FLIGHT"] == "8" and gateway.env["GATEWAY_PROCESS_TITLE"] == "llm-gateway"
    assert "gateway.app:create_app" in gateway.command and str(GATEWAY_DIR) in gateway.command
    assert "PROMETHEUS_MULTIPROC_DIR" not in gateway.env  # one worker: no multiprocess metrics
    assert gateway.health_url.endswith("/ready")


def test_gateway_with_workers_gets_a_multiprocess_metrics_folder():
    gateway = GatewayServer(workers=2, port=8125)
    try:
        assert gateway.metrics_dir.is_dir() and gateway.env["PROMETHEUS_MULTIPROC_DIR"] == str(gateway.metrics_dir)
    finally:
        gateway.stop()
    assert not gateway.metrics_dir.exists()


def test_the_gateway_reads_every_variable_the_server_sets():
    """Every GATEWAY_* variable GatewayServer sets is a known setting (the factory refuses unknown ones)."""
    from gateway.settings import Settings  # importable: tests/labs/vllm/conftest.py adds service/ to sys.path
    gateway = GatewayServer({"backend": "engine", "engine_mount_vllm_api": True, "redis_url": "redis://x:1"}, port=8126)
    variables = {k: v for k, v in gateway.env.items() if k.startswith("GATEWAY_")}
    settings = Settings.from_env(variables)
    assert settings.backend == "engine" and settings.engine_mount_vllm_api and settings.process_title == "llm-gateway"


@pytest.mark.skipif(not os.path.exists("/usr/bin/redis-server"), reason="needs Debian's redis-server")
def test_redis_command_without_and_with_persistence():
    plain = RedisServer(port=6390)
    try:
        joined = " ".join(plain.command)
        assert plain.command[0] == redis_binary() and "--port 6390" in joined and "--appendonly no" in joined
        assert "--bind 127.0.0.1" in joined and f"--dir {plain.workdir}" in joined and plain.url == "redis://127.0.0.1:6390"
    finally:
        plain.stop()
    durable = RedisServer(port=6391, persistence=True)
    try:
        assert "--appendonly yes" in " ".join(durable.command)
    finally:
        durable.stop()


def test_arq_worker_finds_the_service_package():
    worker = ArqWorker("gateway.jobs.WorkerSettings", redis_url="redis://127.0.0.1:6399", app_dir=GATEWAY_DIR)
    assert worker.command == [sys.executable, "-m", "arq", "gateway.jobs.WorkerSettings"]
    assert worker.env["GATEWAY_REDIS_URL"] == "redis://127.0.0.1:6399"
    assert worker.env["PYTHONPATH"].split(os.pathsep)[0] == str(GATEWAY_DIR) and worker.cwd == str(GATEWAY_DIR)


def test_the_leak_check_knows_the_new_servers():
    commands = {"uvicorn": "python -m uvicorn gateway.app:create_app --factory", "worker": "llm-gateway (pid 12)",
                "redis": "/usr/bin/redis-server 127.0.0.1:6390", "arq": "python -m arq gateway.jobs.WorkerSettings"}
    for name, cmdline in commands.items():
        assert any(pattern in cmdline for pattern in SERVER_PROCESS_PATTERNS), name
