"""The real tritonserver binary (from the pinned nvidia-pytriton wheel), as a context manager.

    with TritonServer(repository) as server:
        client = server.http_client()
"""
from __future__ import annotations

import os
import sysconfig
from collections.abc import Sequence
from pathlib import Path

import requests

from llmserve.course.assets import triton_status
from llmserve.course.config import config
from llmserve.servers.base import ManagedServer, ServerStartError, pick_port


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
            pick_port(http_port), pick_port(grpc_port), pick_port(metrics_port))
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
