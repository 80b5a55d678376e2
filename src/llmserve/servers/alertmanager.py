"""A real Alertmanager (Debian's prometheus-alertmanager) and a webhook receiver that records what it delivers.

    with AlertWebhookReceiver() as receiver, AlertmanagerServer(config_text) as alertmanager:
        ...  # Prometheus sends alerts to alertmanager.base_url; it notifies receiver.url("/page")
        receiver.notifications  # every payload, with the time it arrived

Used by both tracks' Lab 2.5 (Triton 2.5 · 03, vLLM 2.5 · 04).
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from llmserve.servers.base import ManagedServer, ServerStartError, pick_port
from llmserve.servers.receiver import PostReceiver


def alertmanager_binary() -> str:
    for candidate in ("prometheus-alertmanager", "alertmanager"):
        found = shutil.which(candidate)
        if found:
            return found
    raise ServerStartError("Alertmanager is not installed: run `make setup-system` "
                           "(installs Debian's prometheus-alertmanager, with amtool).")


def amtool_binary() -> str:
    found = shutil.which("amtool")
    if not found:
        raise ServerStartError("amtool is not installed: run `make setup-system` (it comes with prometheus-alertmanager).")
    return found


class AlertmanagerServer(ManagedServer):
    """A real Alertmanager with a given configuration (YAML text or file), on a free port, with its own
    temporary storage and no cluster (a single instance gossips with nobody; the cluster port is off)."""

    name = "alertmanager"

    def __init__(self, config_yaml: str | Path, *, port: int | None = None, start_timeout: float = 30.0, **kwargs):
        binary = alertmanager_binary()
        self.workdir = Path(tempfile.mkdtemp(prefix="alertmanager-"))
        text = Path(config_yaml).read_text() if isinstance(config_yaml, Path) else str(config_yaml)
        self.config_file = self.workdir / "alertmanager.yml"
        self.config_file.write_text(text)
        self.port = pick_port(port)
        command = [binary, f"--config.file={self.config_file}", f"--storage.path={self.workdir / 'data'}",
                   f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="]
        super().__init__(command, health_url=f"http://127.0.0.1:{self.port}/-/ready", ports=[self.port],
                         cwd=self.workdir, start_timeout=start_timeout, **kwargs)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alerts(self, **filters: str) -> list[dict]:
        """The alerts Alertmanager holds now (API v2), each with its `status` (active, suppressed: inhibited
        or silenced). `filters` are label matchers, e.g. alerts(alertname="TritonQueueTimeHigh")."""
        params = [("filter", f'{key}="{value}"') for key, value in filters.items()]
        reply = requests.get(f"{self.base_url}/api/v2/alerts", params=params, timeout=10)
        reply.raise_for_status()
        return reply.json()

    def stop(self, grace: float = 15.0) -> None:
        super().stop(grace)
        shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class Notification:
    """One webhook delivery: the path it was sent to (which receiver), when it arrived, and the payload."""
    path: str
    received_at: float  # time.time() when it arrived
    payload: dict

    @property
    def status(self) -> str:  # "firing" or "resolved" (the group's status)
        return self.payload.get("status", "")

    @property
    def alertnames(self) -> list[str]:
        return [alert["labels"].get("alertname", "") for alert in self.payload.get("alerts", [])]


@dataclass
class AlertWebhookReceiver(PostReceiver):
    """An HTTP endpoint Alertmanager's webhook_config posts to; it keeps every notification it receives.

    It runs in a thread of this process (no child process), on a free port, until `stop()` or the end of `with`.
    What it stores is what a chat or paging integration would have been sent."""

    port: int | None = None
    notifications: list[Notification] = field(default_factory=list)

    thread_name = "alert-webhook"

    def __post_init__(self):
        self._init_receiver()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def handle_post(self, path, headers, body):
        try:
            payload = json.loads(body)
        except ValueError:
            return 400, {}
        with self._lock:
            self.notifications.append(Notification(path, time.time(), payload))
        return 200, {}

    def received(self, path: str | None = None, status: str | None = None) -> list[Notification]:
        """The notifications so far, optionally only those to `path` and/or with group `status`."""
        with self._lock:
            return [n for n in self.notifications
                    if (path is None or n.path == path) and (status is None or n.status == status)]

    def wait_for(self, path: str | None = None, status: str | None = None, timeout_s: float = 60.0) -> Notification:
        """The first notification to `path` with `status`; waits for it (TimeoutError after `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        while not (found := self.received(path, status)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {status or ''} notification to {path or 'any path'} within {timeout_s:g} s")
            time.sleep(0.1)  # polling interval while waiting for Alertmanager to deliver
        return found[0]

