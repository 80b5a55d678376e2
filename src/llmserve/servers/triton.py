"""The real tritonserver binary (from the pinned nvidia-pytriton wheel), as a context manager.

    with TritonServer(repository) as server:
        client = server.http_client()
"""
from __future__ import annotations

import contextlib
import os
import sysconfig
from collections.abc import Sequence
from pathlib import Path

import requests

from llmserve.course.assets import triton_status
from llmserve.course.config import config
from llmserve.servers.base import ManagedServer, ServerStartError, pick_port

_POOL = "triton_python_backend_shm_region_"


def triton_runtime_env() -> dict[str, str]:
    """The environment the bundled tritonserver needs on this machine (checked: a clear error if missing).

    The Python-backend stub embeds Python in isolated mode: it ignores PYTHONPATH and finds its packages
    through the first `python3` on PATH, so `.venv-triton`'s bin goes first. Course models find the
    course LLM folder through COURSE_MODEL_DIR (no paths in config.pbtxt). A container image sets up
    the same things in its own layout (/opt/tritonserver).
    COURSE_VLLM_SITE_PACKAGES is the site-packages of the environment running this code (`.venv`, where vLLM
    is installed): Triton Lab 2.3 · 04's vLLM model appends it to the stub's sys.path, after `.venv-triton`'s
    (triton_course_models.vllm_stream says why); no other model reads it.
    """
    cfg = config()
    ready, message = triton_status(cfg)
    if not ready:
        raise ServerStartError(f"Triton is not installed: {message}")
    python_env = cfg.triton_python_env
    if not (python_env / "bin" / "python").exists():
        raise ServerStartError(f"The Python environment for Triton models is missing ({python_env}): "
                               "run `make setup`.")
    return {"PATH": f"{python_env / 'bin'}:{os.environ.get('PATH', '')}",
            "LD_LIBRARY_PATH": f"{sysconfig.get_config_var('LIBDIR')}:{os.environ.get('LD_LIBRARY_PATH', '')}",
            "COURSE_MODEL_DIR": str(cfg.model_dir),
            "COURSE_VLLM_SITE_PACKAGES": sysconfig.get_paths()["purelib"]}


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
                 strict_readiness: bool = True, command: Sequence[str] | None = None, **kwargs):
        """`command` replaces the course's own command line, e.g. with the container command a Helm chart
        renders (Triton Lab 2.5); its port flags must match `http_port`, `grpc_port` and `metrics_port`."""
        cfg = config()
        runtime_env = triton_runtime_env()
        self.model_repository = Path(model_repository).resolve()
        if not self.model_repository.is_dir():
            raise FileNotFoundError(f"Model repository {self.model_repository} does not exist.")
        self.http_port, self.grpc_port, self.metrics_port = (
            pick_port(http_port), pick_port(grpc_port), pick_port(metrics_port))
        course_command = [cfg.tritonserver_bin, f"--model-repository={self.model_repository}",
                   f"--backend-directory={cfg.triton_backends_dir}",
                   f"--http-port={self.http_port}", f"--grpc-port={self.grpc_port}",
                   f"--metrics-port={self.metrics_port}", "--http-address=127.0.0.1",
                   "--grpc-address=127.0.0.1", f"--model-control-mode={model_control}",
                   f"--strict-readiness={'true' if strict_readiness else 'false'}",
                   "--exit-timeout-secs=10", *extra_args]
        course_command += [f"--load-model={name}" for name in load_models]
        env = {**runtime_env, **kwargs.pop("env", {})}
        self._shm_pools: set[str] = set()
        super().__init__(command or course_command, health_url=f"http://127.0.0.1:{self.http_port}/v2/health/ready",
                         ports=[self.http_port, self.grpc_port, self.metrics_port], env=env,
                         start_timeout=start_timeout, **kwargs)

    def _wait_until_healthy(self) -> None:
        super()._wait_until_healthy()
        self._remember_shm_pools()

    def _remember_shm_pools(self) -> None:
        from llmserve.measure.memory import shared_memory_files
        if self.process is not None:
            self._shm_pools |= {p for p in shared_memory_files(self.process.pid) if _POOL in p}

    def stop(self, grace: float = 15.0) -> None:
        """Stop the server, then remove the Python backend's shared-memory pools it leaves in /dev/shm.

        A stub that is killed rather than shut down leaves its pool file behind (seen on this machine:
        tmpfs memory that stays used until reboot), so the pools seen at start and at stop are unlinked.
        """
        with contextlib.suppress(Exception):
            self._remember_shm_pools()
        super().stop(grace)
        for pool in self._shm_pools:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(pool)
        self._shm_pools.clear()

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
