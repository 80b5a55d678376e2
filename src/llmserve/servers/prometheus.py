"""A real Prometheus (Debian's package) with a given configuration, as a context manager."""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import requests

from llmserve.servers.base import ManagedServer, ServerStartError, pick_port


def prometheus_binary() -> str:
    for candidate in ("prometheus", "/usr/bin/prometheus"):
        found = candidate if os.path.isabs(candidate) and os.path.exists(candidate) else None
        found = found or shutil.which(candidate)
        if found:
            return found
    raise ServerStartError("Prometheus is not installed: run `make setup-system` (installs Debian's prometheus).")


class PrometheusServer(ManagedServer):
    """A real Prometheus with a given configuration (YAML text or file) and a temp TSDB."""

    name = "prometheus"

    def __init__(self, config_yaml: str | Path, *, port: int | None = None,
                 rule_files: Sequence[str | Path] = (), start_timeout: float = 60.0, **kwargs):
        binary = prometheus_binary()
        self.workdir = Path(tempfile.mkdtemp(prefix="prometheus-"))
        path = Path(config_yaml) if isinstance(config_yaml, Path) else None
        text = path.read_text() if path else str(config_yaml)
        self.config_file = self.workdir / "prometheus.yml"
        self.config_file.write_text(text)
        for rule in rule_files:
            (self.workdir / Path(rule).name).write_text(Path(rule).read_text())
        self.port = pick_port(port)
        command = [binary, f"--config.file={self.config_file}",
                   f"--storage.tsdb.path={self.workdir / 'data'}",
                   f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle"]
        super().__init__(command, health_url=f"http://127.0.0.1:{self.port}/-/ready", ports=[self.port],
                         cwd=self.workdir, start_timeout=start_timeout, **kwargs)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        """Run an instant PromQL query (at Unix time `at`, default now); return the result vector.

        Once a target is gone its series are marked stale and a query at "now" no longer sees them;
        `at` asks about a moment when they were still scraped."""
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        reply = requests.get(f"{self.base_url}/api/v1/query", params=params, timeout=10).json()
        if reply.get("status") != "success":
            raise RuntimeError(f"PromQL query failed: {reply.get('error', reply)}")
        return reply["data"]["result"]

    def value(self, expr: str, at: float | None = None) -> float | None:
        """The first sample of an instant query as a number, or None when the query returns no series."""
        result = self.query(expr, at=at)
        return float(result[0]["value"][1]) if result else None

    def wait_for_value(self, expr: str, expected: float, timeout_s: float = 15.0) -> float:
        """Poll until `expr` has the expected value (Prometheus has scraped it); TimeoutError otherwise."""
        deadline = time.monotonic() + timeout_s
        while (value := self.value(expr)) != expected:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expr} = {value} after {timeout_s:g} s, expected {expected}")
            time.sleep(0.2)  # polling interval: the course's scrape configs scrape every second
        return value

    def query_range(self, expr: str, start: float, end: float, step: float = 1.0) -> list[dict]:
        reply = requests.get(f"{self.base_url}/api/v1/query_range",
                             params={"query": expr, "start": start, "end": end, "step": step}, timeout=10).json()
        if reply.get("status") != "success":
            raise RuntimeError(f"PromQL query failed: {reply.get('error', reply)}")
        return reply["data"]["result"]
