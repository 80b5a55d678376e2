"""What every course server shares: `ManagedServer`, ports, and the no-leak guarantee.

Every server in `llmserve.servers`:
- picks free ports unless you give one, and refuses a busy port with a clear error;
- runs in its own process group, with a parent-death signal, so it cannot outlive
  the Python process (notebook kernel) that started it;
- waits until its health endpoint answers, with a timeout;
- shows the tail of its log when it fails to start;
- on exit (also after an exception or Ctrl-C) ends its whole process group.

    with VLLMServer() as server:
        client = server.openai_client()
"""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import psutil
import requests

# Names a leaked course server shows in `ps`; used by the tests' leak check.
SERVER_PROCESS_PATTERNS = ("tritonserver", "triton_python_backend_stub", "vllm.entrypoints",
                           "VLLM::", "EngineCore", "prometheus --config", "alertmanager --config",
                           "node-exporter --web", "process-exporter -config",
                           "-m uvicorn", "llm-gateway", "redis-server", "-m arq",
                           "nginx: master process", "nginx: worker process",
                           "vllm::router",  # vllm-router sets that process title
                           "mlserver start")

# Environment for every engine: no model hub, no usage reporting.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1",
               "DO_NOT_TRACK": "1", "TOKENIZERS_PARALLELISM": "false"}


_ERROR_LINE = re.compile(r"^E\d{4}|Error|error:|Traceback|Exception")


class ServerStartError(RuntimeError):
    """A server did not become healthy; the message carries the tail of its log."""


class PortInUseError(ServerStartError):
    """A requested port is already bound by another process."""


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:  # runs in the child between fork and exec
    os.setsid()
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


_LIVE: set[ManagedServer] = set()


def _wait_until_gone(pids: list[int], timeout_s: float) -> None:
    """Wait until none of `pids` runs any more (a zombie counts as gone: it holds no resources)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alive = []
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
        if not alive:
            return
        pids = alive
        time.sleep(0.05)  # polling interval while the kernel tears the processes down


def stop_all() -> None:
    """Stop every server this process started and has not stopped yet."""
    for server in list(_LIVE):
        server.stop()


atexit.register(stop_all)


class ManagedServer:
    """A server process that is healthy inside `with` and gone after it."""

    name = "server"

    def __init__(self, command: Sequence[str], *, health_url: str, ports: Iterable[int] = (),
                 env: dict[str, str] | None = None, cwd: str | Path | None = None,
                 start_timeout: float = 180.0, log_path: str | Path | None = None,
                 healthy: Callable[[requests.Response], bool] | None = None):
        self.command = [str(part) for part in command]
        self.health_url = health_url
        self.ports = list(ports)
        self.env = {**os.environ, **OFFLINE_ENV, **(env or {})}
        self.cwd = str(cwd) if cwd else None
        self.start_timeout = start_timeout
        if log_path is None:
            handle, log_path = tempfile.mkstemp(prefix=f"{self.name}-", suffix=".log")
            os.close(handle)
        self.log_path = Path(log_path)
        self._healthy = healthy or (lambda response: response.status_code == 200)
        self.process: subprocess.Popen | None = None
        self.startup_seconds: float | None = None

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> ManagedServer:
        self.launch()
        return self.wait_ready()

    def launch(self) -> ManagedServer:
        """Start the process and return at once (`wait_ready` waits for it; `start` does both). A subclass that
        must prepare something before its process starts (a config check, a fresh metrics folder) overrides this.

        Call it from the thread that will outlive the server (the notebook's main thread): the parent-death
        signal fires when the *thread* that started the process ends, so launch in the main thread and wait
        anywhere. See `start_together`."""
        for port in self.ports:
            if not port_is_free(port):
                raise PortInUseError(
                    f"{self.name}: port {port} is already in use by another process. "
                    "Stop that process or let the course pick a free port (port=None).")
        self._began = time.perf_counter()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=self.env, cwd=self.cwd,
                                            preexec_fn=_die_with_parent)
        _LIVE.add(self)
        return self

    def wait_ready(self) -> ManagedServer:
        """Wait until the launched server is healthy (stopping it and raising ServerStartError if not)."""
        try:
            self._wait_until_healthy()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - self._began
        return self

    # How often start() polls for readiness, and how readiness is checked. Subclasses whose
    # readiness is not an HTTP endpoint (Redis, a worker) override `_is_ready`.
    poll_interval_s = 0.5

    def _is_ready(self) -> bool:
        try:
            return bool(self._healthy(requests.get(self.health_url, timeout=2, **self._health_request_options())))
        except requests.RequestException:
            return False

    def _health_request_options(self) -> dict:
        return {}

    def _log_description(self) -> str:
        return f"its log ({self.log_path})"

    def _wait_until_healthy(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            code = self.process.poll()
            if code is not None:
                raise ServerStartError(f"{self.name} exited with code {code} while starting.\n"
                                       f"Last lines of {self._log_description()}:\n{self.log_tail()}")
            if self._is_ready():
                return
            if time.monotonic() > deadline:
                where = f" at {self.health_url}" if self.health_url else ""
                raise ServerStartError(
                    f"{self.name} was not healthy{where} after {self.start_timeout:.0f} s.\n"
                    f"Last lines of {self._log_description()}:\n{self.log_tail()}")
            time.sleep(self.poll_interval_s)  # polling interval while waiting for readiness

    def stop(self, grace: float = 15.0) -> None:
        """Stop the server, then make sure nothing of it is left.

        SIGTERM goes to the server's main process first, so that it can shut down in order
        (vLLM drains in-flight requests and then stops its engine; a group-wide SIGTERM would
        kill the engine mid-request). After `grace` seconds the whole process group gets
        SIGTERM, and anything still alive after that is killed.
        """
        process, self.process = self.process, None
        _LIVE.discard(self)
        if process is None:
            return
        try:
            members = [process.pid] + [c.pid for c in psutil.Process(process.pid).children(recursive=True)]
        except psutil.Error:
            members = [process.pid]
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        # Anything still alive (the group or a child that left it) is killed.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        for pid in members:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
        # A killed process takes a moment to exit (an engine frees gigabytes of memory first):
        # return only when every member is gone, so "stopped" means stopped.
        _wait_until_gone(members, timeout_s=10)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        """The last lines of the server log, preceded by its error lines (often far above the end)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        all_lines = text.splitlines()
        tail = all_lines[-lines:]
        harmless = ("CudaDriverHelper", "NVML", "DCGM")  # Triton on a machine without a GPU
        errors = [line for line in all_lines[:-lines] if _ERROR_LINE.search(line)
                  and not any(h in line for h in harmless)][:10]
        if errors:
            return "\n".join(["[error lines]", *errors, "[last lines]", *tail])
        return "\n".join(tail)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def start_together(servers: Iterable[ManagedServer]) -> list[ManagedServer]:
    """Launch every server first, then wait for each: they boot side by side, so the wait is the slowest start,
    not the sum. Launching happens in the calling thread (see `ManagedServer.launch`). If one fails, all are stopped.

        replicas = start_together([VLLMServer(...), VLLMServer(...)])
    """
    servers = list(servers)
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_ready()
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


def pick_port(port: int | None) -> int:
    """`port`, or a free one when it is None."""
    return free_port() if port is None else port


def find_server_processes(env_marker: str | None = None) -> list[str]:
    """Command lines of course-server processes running on this machine (leak check).

    With `env_marker` ("NAME=value"), only processes whose environment carries it: the
    test harness marks its own runs so it never blames (or kills) someone else's server.
    """
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info.get("cmdline") or []).strip()
        if not any(pattern in cmdline for pattern in SERVER_PROCESS_PATTERNS) or "pytest" in cmdline:
            continue
        if env_marker:
            key, _, value = env_marker.partition("=")
            # nginx overwrites its environment with its process title; NginxServer puts the marker's
            # value into its prefix path, which the title shows.
            try:
                if proc.environ().get(key) != value and value not in cmdline:
                    continue
            except psutil.Error:
                continue
        found.append(f"{proc.info['pid']}: {cmdline[:160]}")
    return found
