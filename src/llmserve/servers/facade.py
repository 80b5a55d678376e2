"""Triton Lab 2.3 · 03's servers: the unified façade (FastAPI under uvicorn) and MLServer, a second KServe v2 server.

    with FacadeServer(triton_url=triton.http_url, vllm_url=vllm.base_url) as facade:
        client = facade.openai_client()          # model "triton/course_chat" or "vllm/course-llm"

    with MLServerServer() as mlserver:           # serves service/mlserver/ (the `affine` model)
        requests.get(mlserver.url("/v2/models/affine"))

MLServer runs from its own environment (`.venv-kserve`, made by `make setup`): its pins (FastAPI, pandas,
OpenTelemetry) do not belong in the course environment. COURSE_MLSERVER_BIN points at another `mlserver`.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from llmserve.course.config import REPO_ROOT
from llmserve.servers.base import ManagedServer, ServerStartError, pick_port
from llmserve.servers.uvicorn import UvicornServer

LAB_DIR = REPO_ROOT / "02-Labs" / "Triton_Track" / "Lab-2.3-Backend_Integration"
FACADE_DIR = LAB_DIR / "service"
FACADE_APP = "facade.app:create_app"
MLSERVER_MODELS = LAB_DIR / "service" / "mlserver"
MLSERVER_VERSION = "1.7.1"  # the version notebook 03 was written against (.venv-kserve pins it)


class FacadeServer(UvicornServer):
    """The façade of `service/facade/`, configured through FACADE_* variables; started when /ready answers 200
    (every configured backend ready)."""

    name = "facade"

    def __init__(self, *, triton_url: str = "", vllm_url: str = "", triton_model: str = "course_chat",
                 vllm_model: str = "course-llm", settings: Mapping[str, object] | None = None,
                 port: int | None = None, workers: int = 1, wait_path: str = "/ready", **kwargs):
        values = {"triton_url": triton_url, "vllm_url": vllm_url, "triton_model": triton_model,
                  "vllm_model": vllm_model, **dict(settings or {})}
        self.settings = values
        env = {f"FACADE_{key.upper()}": str(value) for key, value in values.items()}
        super().__init__(FACADE_APP, app_dir=FACADE_DIR, factory=True, port=port, workers=workers,
                         wait_path=wait_path, env={**env, **kwargs.pop("env", {})}, **kwargs)

    def model_ids(self) -> list[str]:
        """The ids GET /v1/models will list, in the same order."""
        ids = []
        if self.settings["triton_url"]:
            ids.append(f"triton/{self.settings['triton_model']}")
        if self.settings["vllm_url"]:
            ids.append(f"vllm/{self.settings['vllm_model']}")
        return ids

    def openai_client(self, **kwargs):
        from openai import OpenAI
        return OpenAI(base_url=f"{self.base_url}/v1", api_key="not-needed-locally", **kwargs)


def mlserver_binary() -> Path:
    """The `mlserver` command: COURSE_MLSERVER_BIN, else .venv-kserve's; ServerStartError saying how to get it."""
    override = os.environ.get("COURSE_MLSERVER_BIN")
    path = Path(override) if override else REPO_ROOT / ".venv-kserve" / "bin" / "mlserver"
    if not path.exists():
        raise ServerStartError(f"MLServer is not installed ({path} does not exist): `make setup` creates .venv-kserve "
                               f"with mlserver=={MLSERVER_VERSION}, or set COURSE_MLSERVER_BIN")
    return path


def mlserver_status() -> tuple[bool, str]:
    """(installed, what was found or why not), for a notebook that reports it."""
    try:
        return True, str(mlserver_binary())
    except ServerStartError as error:
        return False, str(error)


class MLServerServer(ManagedServer):
    """`mlserver start MODELS` (Seldon's MLServer, KServe v2 over HTTP and gRPC) on free ports; ready when
    /v2/health/ready answers 200. Inference runs in the server process (parallel_workers=0)."""

    name = "mlserver"

    def __init__(self, models_dir: str | Path = MLSERVER_MODELS, *, http_port: int | None = None,
                 grpc_port: int | None = None, metrics_port: int | None = None, start_timeout: float = 60.0,
                 **kwargs):
        self.models_dir = Path(models_dir).resolve()
        if not self.models_dir.is_dir():
            raise FileNotFoundError(f"MLServer model folder {self.models_dir} does not exist")
        self.http_port, self.grpc_port, self.metrics_port = (pick_port(http_port), pick_port(grpc_port),
                                                             pick_port(metrics_port))
        env = {"MLSERVER_HOST": "127.0.0.1", "MLSERVER_HTTP_PORT": str(self.http_port),
               "MLSERVER_GRPC_PORT": str(self.grpc_port), "MLSERVER_METRICS_PORT": str(self.metrics_port),
               "MLSERVER_PARALLEL_WORKERS": "0", **kwargs.pop("env", {})}
        self.workdir = Path(tempfile.mkdtemp(prefix="mlserver-"))  # its working folder (metrics files, if any)
        super().__init__([mlserver_binary(), "start", self.models_dir],
                         health_url=f"http://127.0.0.1:{self.http_port}/v2/health/ready",
                         ports=[self.http_port, self.grpc_port, self.metrics_port], env=env, cwd=self.workdir,
                         start_timeout=start_timeout, **kwargs)

    def stop(self, grace: float = 15.0) -> None:
        super().stop(grace)
        shutil.rmtree(self.workdir, ignore_errors=True)

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def url(self, path: str) -> str:
        return f"http://{self.http_url}{path}"
