"""Where tokens come from. The OpenAI routes talk to one `Backend`:

- `EngineBackend`: vLLM's async engine (`AsyncLLM` from `AsyncEngineArgs`) in this process, started in
  the app's lifespan. The gateway tokenizes (it enforces limits in tokens anyway) and hands the token
  ids to the engine.
- `UpstreamBackend`: an OpenAI-compatible server elsewhere (vLLM's own server, a router): the gateway
  validates, limits, meters and forwards. Labs 2.4 and 2.5 put it in front of vLLM replicas.

Both yield `Delta`s; cancelling the consumer (a client that went away) cancels the generation: the
engine aborts the request, the upstream connection is closed (and vLLM aborts it there).
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from gateway.errors import GatewayError
from gateway.settings import Settings


@dataclass
class GenerationRequest:
    request_id: str
    messages: list[dict]
    prompt_token_ids: list[int]
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    ignore_eos: bool = False
    priority: int = 0


@dataclass
class Delta:
    text: str
    tokens: int  # new tokens in this delta
    finish_reason: str | None = None


class Backend:
    name = "none"
    max_model_len: int | None = None

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def ready(self) -> bool:
        return True

    def generate(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        raise NotImplementedError


class EngineBackend(Backend):
    """vLLM's AsyncLLM in this process (its EngineCore runs in a child process, as in vLLM's server)."""

    name = "engine"

    def __init__(self, settings: Settings, model_path: str):
        self.settings, self.model_path = settings, model_path
        self.engine = None
        self.max_model_len = settings.engine_max_model_len
        self.started_s: float | None = None
        self.error: str | None = None

    def engine_args(self):
        from vllm.engine.arg_utils import AsyncEngineArgs
        s = self.settings
        extra = {"max_num_queued_reqs": s.engine_max_queued} if s.engine_max_queued else {}
        return AsyncEngineArgs(model=self.model_path, served_model_name=[s.model_name], dtype=s.engine_dtype,
                               max_model_len=s.engine_max_model_len, max_num_seqs=s.engine_max_num_seqs,
                               enforce_eager=s.engine_enforce_eager, scheduling_policy=s.engine_scheduling_policy,
                               distributed_executor_backend=s.engine_executor, **extra)

    def _build(self):
        os.environ["VLLM_CPU_KVCACHE_SPACE"] = f"{self.settings.engine_kv_cache_gib:g}"
        if self.settings.engine_executor == "uni":
            # On a CPU, vLLM replaces "uni" by its multiprocess executor unless this is 0; the engine core
            # still runs in its own child process (AsyncLLM always does that), now with the model inside it.
            os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        from vllm.v1.engine.async_llm import AsyncLLM  # importing vLLM alone takes seconds
        return AsyncLLM.from_engine_args(self.engine_args())

    async def start(self) -> None:
        began = time.perf_counter()
        try:  # in a thread: importing and building the engine takes tens of seconds; /health answers meanwhile
            self.engine = await asyncio.to_thread(self._build)
        except Exception as error:  # readiness reports it; liveness stays up so the log can be read
            self.error = f"{type(error).__name__}: {error}"
            raise
        self.started_s = time.perf_counter() - began

    async def vllm_api_app(self):
        """vLLM's own OpenAI-compatible FastAPI app, built exactly as its API server builds it, on our engine."""
        from vllm.entrypoints.launchers.api_server.app_state import init_app_state
        from vllm.entrypoints.launchers.app import build_app
        from vllm.entrypoints.launchers.cli_args import make_arg_parser
        from vllm.utils.argparse_utils import FlexibleArgumentParser
        s = self.settings
        args = make_arg_parser(FlexibleArgumentParser()).parse_args(
            ["--model", self.model_path, "--served-model-name", s.model_name, "--dtype", s.engine_dtype,
             "--max-model-len", str(s.engine_max_model_len), "--disable-uvicorn-access-log"])
        tasks = await self.engine.get_supported_tasks()
        app = build_app(args, tasks, self.engine.model_config)
        await init_app_state(self.engine, app.state, args, tasks)
        return app

    async def stop(self) -> None:
        if self.engine is not None:
            self.engine.shutdown()
            self.engine = None

    async def ready(self) -> bool:
        return self.engine is not None and not self.engine.errored

    def num_unfinished(self) -> int:
        return self.engine.get_num_unfinished_requests() if self.engine is not None else 0

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind
        from vllm.v1.engine.exceptions import EngineDeadError
        if self.engine is None:
            raise GatewayError(503, "the engine is still starting; retry shortly", code="not_ready",
                               headers={"Retry-After": "5"})
        try:
            params = SamplingParams(max_tokens=request.max_tokens, temperature=request.temperature,
                                    top_p=request.top_p, seed=request.seed, stop=request.stop or None,
                                    ignore_eos=request.ignore_eos, output_kind=RequestOutputKind.DELTA)
        except ValueError as error:
            raise GatewayError(400, f"invalid sampling parameters: {error}", code="invalid_sampling") from None
        stream = self.engine.generate({"prompt_token_ids": request.prompt_token_ids}, params,
                                      request.request_id, priority=request.priority)
        try:
            async for output in stream:
                for completion in output.outputs[:1]:
                    yield Delta(completion.text, len(completion.token_ids), completion.finish_reason)
        except EngineDeadError:
            raise GatewayError(503, "the engine died; this replica needs a restart", code="engine_dead") from None
        except Exception as error:
            _raise_engine_error(error)
            raise


def _raise_engine_error(error: Exception) -> None:
    """Map vLLM's client-facing errors to gateway errors (queue full -> 503, bad request -> 400)."""
    name = type(error).__name__
    if name in ("QueueOverflowError", "MaxQueuedTokensError"):
        raise GatewayError(503, f"the engine's queue is full ({name}); retry later", code="engine_queue_full",
                           headers={"Retry-After": "1"}) from None
    if name in ("VLLMValidationError", "VLLMClientError") or isinstance(error, ValueError):
        raise GatewayError(400, f"the engine refused the request: {error}", code="engine_rejected") from None


class UpstreamBackend(Backend):
    """An OpenAI-compatible server (e.g. vLLM's), reached with httpx; streamed through chunk by chunk."""

    name = "upstream"

    def __init__(self, settings: Settings):
        if not settings.upstream_url:
            raise ValueError("backend=upstream needs GATEWAY_UPSTREAM_URL (e.g. http://127.0.0.1:8000)")
        self.settings = settings
        self.base = settings.upstream_url.rstrip("/")
        self.client = None
        self.upstream_model: str | None = None

    async def start(self) -> None:
        import httpx
        limits = httpx.Limits(max_connections=512, max_keepalive_connections=64)
        key = self.settings.upstream_api_key.get_secret_value()
        headers = {"Authorization": f"Bearer {key}"} if key else {}  # vLLM's --api-key / VLLM_API_KEY
        self.client = httpx.AsyncClient(base_url=self.base, timeout=self.settings.upstream_timeout_s, limits=limits,
                                        headers=headers)
        await self._discover()

    async def _discover(self) -> bool:
        try:
            reply = await self.client.get("/v1/models", timeout=2)
            card = reply.json()["data"][0]
        except Exception:
            return False
        self.upstream_model = card["id"]
        self.max_model_len = card.get("max_model_len") or self.max_model_len
        return True

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    async def ready(self) -> bool:
        if self.client is None:
            return False
        try:
            healthy = (await self.client.get("/health", timeout=1)).status_code == 200
        except Exception:
            return False
        return healthy and (self.upstream_model is not None or await self._discover())

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        import httpx
        if self.upstream_model is None and not await self._discover():
            raise GatewayError(503, f"the upstream {self.base} is not reachable", code="upstream_unavailable",
                               headers={"Retry-After": "1"})
        body = {"model": self.upstream_model, "messages": request.messages, "max_tokens": request.max_tokens,
                "temperature": request.temperature, "top_p": request.top_p, "stream": True,
                "stream_options": {"include_usage": True}, "ignore_eos": request.ignore_eos,
                "priority": request.priority}
        if request.seed is not None:
            body["seed"] = request.seed
        if request.stop:
            body["stop"] = request.stop
        counted = 0
        try:
            async with self.client.stream("POST", "/v1/chat/completions", json=body,
                                          headers={"X-Request-Id": request.request_id}) as response:
                if response.status_code != 200:
                    raw = await response.aread()
                    raise _upstream_error(response.status_code, raw)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    event = json.loads(data)
                    if event.get("usage") and not event.get("choices"):
                        extra = event["usage"]["completion_tokens"] - counted
                        if extra > 0:
                            yield Delta("", extra)
                        continue
                    for choice in event.get("choices", [])[:1]:
                        text = (choice.get("delta") or {}).get("content") or ""
                        tokens = 1 if text else 0
                        counted += tokens
                        if text or choice.get("finish_reason"):
                            yield Delta(text, tokens, choice.get("finish_reason"))
        except httpx.HTTPError as error:
            raise GatewayError(502, f"the upstream failed: {type(error).__name__}", code="upstream_error") from None


def _upstream_error(status: int, raw: bytes) -> GatewayError:
    try:
        message = json.loads(raw)["error"]["message"]
    except Exception:
        message = raw.decode(errors="replace")[:300]
    if status in (401, 403):  # the gateway's own credential, not the client's: a gateway fault
        return GatewayError(502, f"the upstream refused the gateway's API key ({status}); check "
                            "GATEWAY_UPSTREAM_API_KEY", code="upstream_auth_failed")
    if 400 <= status < 500:
        return GatewayError(status, f"the upstream refused the request: {message}", code="upstream_rejected")
    return GatewayError(502 if status != 503 else 503, f"the upstream answered {status}: {message}",
                        code="upstream_error")


def make_backend(settings: Settings, model_path: str) -> Backend | None:
    if settings.backend == "engine":
        return EngineBackend(settings, model_path)
    if settings.backend == "upstream":
        return UpstreamBackend(settings)
    return None


async def wait_ready(backend: Backend, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await backend.ready():
            return True
        await asyncio.sleep(0.2)
    return False
