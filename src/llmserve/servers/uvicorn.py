"""An ASGI app under uvicorn, and the Lab 2.3 gateway, as context managers.

    with UvicornServer("myapp:create_app", app_dir="service", factory=True) as server:
        requests.get(server.url("/health"))

    with GatewayServer({"backend": "upstream", "upstream_url": vllm.base_url}, workers=2) as gateway:
        client = gateway.openai_client()

The server is `python -m uvicorn APP ...` in its own process group: with `workers > 1` uvicorn's
supervisor runs that many worker processes on one socket and replaces a worker that dies.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil
import requests

from llmserve.course.config import REPO_ROOT
from llmserve.servers.base import ManagedServer, pick_port

GATEWAY_DIR = REPO_ROOT / "02-Labs" / "vLLM_Track" / "Lab-2.3-FastAPI_Service" / "service"
GATEWAY_APP = "gateway.app:create_app"
GATEWAY_TITLE = "llm-gateway"  # the gateway's process title; the leak check looks for it


class UvicornServer(ManagedServer):
    """`python -m uvicorn APP` on 127.0.0.1, healthy when `wait_path` answers 200."""

    name = "uvicorn"

    def __init__(self, app: str, *, app_dir: str | Path | None = None, factory: bool = False,
                 port: int | None = None, workers: int = 1, wait_path: str = "/health",
                 graceful_timeout_s: float | None = None, extra_args: Sequence[str] = (),
                 env: Mapping[str, str] | None = None, start_timeout: float = 120.0, **kwargs):
        self.app, self.workers = app, workers
        self.port = pick_port(port)
        command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", self.port,
                   "--no-access-log", "--workers", workers]
        if app_dir is not None:
            command += ["--app-dir", Path(app_dir)]
        if factory:
            command.append("--factory")
        if graceful_timeout_s is not None:
            command += ["--timeout-graceful-shutdown", f"{graceful_timeout_s:g}"]
        command += list(extra_args)
        super().__init__(command, health_url=f"http://127.0.0.1:{self.port}{wait_path}", ports=[self.port],
                         env=dict(env or {}), start_timeout=start_timeout, **kwargs)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def worker_pids(self) -> list[int]:
        """Process ids of uvicorn's worker processes (empty with workers=1: the main process serves)."""
        if not self.running or self.workers <= 1:
            return []
        try:
            children = psutil.Process(self.process.pid).children()
        except psutil.Error:
            return []
        workers = []
        for child in children:
            try:
                cmdline = " ".join(child.cmdline())
            except psutil.Error:
                continue
            if "spawn_main" in cmdline or GATEWAY_TITLE in cmdline:  # not multiprocessing's resource tracker
                workers.append(child.pid)
        return sorted(workers)


class GatewayServer(UvicornServer):
    """The Lab 2.3 gateway (`gateway.app:create_app`), configured with its settings.

    `settings` maps setting names to values (e.g. {"backend": "engine", "max_in_flight": 8}); each becomes
    a GATEWAY_<NAME> environment variable, which the app factory reads in every worker. The server is
    started when `/ready` answers 200 (tokenizer loaded, backend and queue usable), unless
    `wait_path="/health"` is given.
    """

    name = "llm-gateway"

    def __init__(self, settings: Mapping[str, object] | None = None, *, port: int | None = None,
                 workers: int = 1, wait_path: str = "/ready", multiprocess_metrics: bool | None = None,
                 env: Mapping[str, str] | None = None, **kwargs):
        self.settings = dict(settings or {})
        self.settings.setdefault("process_title", GATEWAY_TITLE)
        gateway_env = {f"GATEWAY_{key.upper()}": _env_value(value) for key, value in self.settings.items()}
        self.metrics_dir: Path | None = None
        if multiprocess_metrics if multiprocess_metrics is not None else workers > 1:
            # every worker writes its metric values here; /metrics adds them up
            self.metrics_dir = Path(tempfile.mkdtemp(prefix="gateway-metrics-"))
            gateway_env["PROMETHEUS_MULTIPROC_DIR"] = str(self.metrics_dir)
        super().__init__(GATEWAY_APP, app_dir=GATEWAY_DIR, factory=True, port=port, workers=workers,
                         wait_path=wait_path, env={**gateway_env, **dict(env or {})}, **kwargs)

    @property
    def model_name(self) -> str:
        return str(self.settings.get("model_name", "course-model"))

    def openai_client(self, **kwargs):
        from openai import OpenAI
        return OpenAI(base_url=f"{self.base_url}/v1", api_key="not-needed-locally", **kwargs)

    def metrics_text(self) -> str:
        return requests.get(f"{self.base_url}/metrics", timeout=10).text

    def launch(self) -> GatewayServer:
        if self.metrics_dir is not None:  # fresh counters for every start
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
            self.metrics_dir.mkdir(parents=True)
        return super().launch()

    def stop(self, grace: float = 15.0) -> None:
        super().stop(grace)
        if self.metrics_dir is not None:
            shutil.rmtree(self.metrics_dir, ignore_errors=True)


def _env_value(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)
