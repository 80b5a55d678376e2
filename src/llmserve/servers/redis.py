"""Redis (Debian's redis-server) and an arq job worker that consumes it, as context managers.

    with RedisServer() as redis, ArqWorker("gateway.jobs.WorkerSettings", redis_url=redis.url,
                                           app_dir=GATEWAY_DIR) as worker:
        ...

`RedisServer` runs on a free port with its own temporary directory and, unless `persistence=True`
(append-only file), keeps nothing on disk: a fresh, empty Redis per notebook.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from llmserve.servers.base import ManagedServer, ServerStartError, pick_port


def redis_binary() -> str:
    found = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server")
                                             else None)
    if not found:
        raise ServerStartError("Redis is not installed: run `make setup-system` (installs Debian's redis-server).")
    return found


def redis_command(port: int, *parts: str, timeout: float = 2.0) -> bytes:
    """Send one command (RESP) to Redis at 127.0.0.1:port; return the raw reply's first line."""
    payload = f"*{len(parts)}\r\n".encode() + b"".join(
        f"${len(p.encode())}\r\n".encode() + p.encode() + b"\r\n" for p in parts)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        reply = b""
        while not reply.endswith(b"\r\n"):
            data = sock.recv(4096)
            if not data:
                break
            reply += data
    return reply.strip()


class _PolledServer(ManagedServer):
    """A ManagedServer whose readiness is not an HTTP endpoint: subclasses implement `_is_ready()`."""

    poll_interval_s = 0.1

    def _is_ready(self) -> bool:
        raise NotImplementedError


class RedisServer(_PolledServer):
    """Debian's redis-server on 127.0.0.1, a free port, a temporary directory; ready when PING answers."""

    name = "redis"

    def __init__(self, *, port: int | None = None, persistence: bool = False, maxmemory_mb: int = 256,
                 start_timeout: float = 30.0, **kwargs):
        binary = redis_binary()
        self.port = pick_port(port)
        self.workdir = Path(tempfile.mkdtemp(prefix="redis-"))
        self.persistence = persistence
        command = [binary, "--port", self.port, "--bind", "127.0.0.1", "--dir", self.workdir,
                   "--daemonize", "no", "--save", "", "--appendonly", "yes" if persistence else "no",
                   "--maxmemory", f"{maxmemory_mb}mb", "--loglevel", "notice"]
        super().__init__(command, health_url=f"redis://127.0.0.1:{self.port}", ports=[self.port],
                         cwd=self.workdir, start_timeout=start_timeout, **kwargs)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def _is_ready(self) -> bool:
        try:
            return self.ping()
        except OSError:
            return False

    def ping(self) -> bool:
        return redis_command(self.port, "PING") == b"+PONG"

    def stop(self, grace: float = 15.0) -> None:
        super().stop(grace)
        shutil.rmtree(self.workdir, ignore_errors=True)


class ArqWorker(_PolledServer):
    """An arq worker: `python -m arq SETTINGS` (e.g. "gateway.jobs.WorkerSettings"), importable from
    `app_dir`; ready once it logs that it started. `env` reaches the worker (e.g. the Redis URL)."""

    name = "arq-worker"
    READY = re.compile(r"Starting worker for \d+ functions")

    def __init__(self, settings_path: str, *, redis_url: str, app_dir: str | Path | None = None,
                 env: Mapping[str, str] | None = None, redis_url_env: str = "GATEWAY_REDIS_URL",
                 start_timeout: float = 60.0, **kwargs):
        self.settings_path = settings_path
        worker_env = {redis_url_env: redis_url, **dict(env or {})}
        if app_dir is not None:
            worker_env["PYTHONPATH"] = os.pathsep.join(
                [str(app_dir)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
        command = [sys.executable, "-m", "arq", settings_path]
        super().__init__(command, health_url=redis_url, env=worker_env, cwd=app_dir, start_timeout=start_timeout,
                         **kwargs)

    def _is_ready(self) -> bool:
        try:
            return bool(self.READY.search(self.log_path.read_text(errors="replace")))
        except OSError:
            return False

    def kill(self) -> int:
        """SIGKILL the worker (a crash: no clean-up, its running job keeps its in-progress lease); return its pid."""
        pid = self.process.pid
        self.process.kill()
        self.process.wait(timeout=10)
        self.stop()
        return pid
