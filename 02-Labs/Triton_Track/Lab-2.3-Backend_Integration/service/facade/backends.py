"""One adapter per backend, one interface: `complete(request, timing) -> ChatCompletion` and `ready()`.

- `TritonBackend` calls Triton's KServe v2 infer endpoint (HTTP + JSON) of a chat model with inputs MESSAGES and
  MAX_TOKENS and outputs TEXT, TOKEN_IDS, PROMPT_TOKENS, FINISH_REASON, and builds the OpenAI answer from them.
- `VLLMBackend` forwards the OpenAI request to vLLM's OpenAI server with vLLM's model name, and renames the
  model in its answer.

Each adapter also says what its backend cannot do: the Triton chat model decodes greedily, so a sampling
parameter it would silently ignore is refused with a 400 instead.
"""
from __future__ import annotations

import json
import time
import uuid

import httpx

from facade.errors import FacadeError
from facade.schemas import ChatCompletion, ChatMessage, ChatRequest, Choice, Usage
from facade.settings import Settings


def _max_tokens(request: ChatRequest, settings: Settings) -> int:
    value = request.max_completion_tokens or request.max_tokens or settings.default_max_tokens
    if value > settings.max_tokens_limit:
        raise FacadeError(400, f"max_tokens must be at most {settings.max_tokens_limit}, got {value}",
                          param="max_tokens", code="max_tokens_too_large")
    return value


def _backend_unreachable(name: str, error: Exception) -> FacadeError:
    return FacadeError(503, f"the {name} backend cannot be reached ({type(error).__name__}); retry later",
                       code="backend_unavailable")


class Backend:
    prefix = ""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.client: httpx.AsyncClient | None = None

    @property
    def model_id(self) -> str:
        return f"{self.prefix}/{self.model}"

    async def start(self) -> None:
        self.client = httpx.AsyncClient(base_url=self.base_url, timeout=self.settings.timeout_s,
                                        limits=httpx.Limits(max_connections=64, max_keepalive_connections=16))

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def timed_post(self, path: str, timing: dict, **kwargs) -> httpx.Response:
        """POST to the backend; adds the seconds spent waiting for it to timing["backend_s"]."""
        began = time.perf_counter()
        try:
            return await self.client.post(path, **kwargs)
        except httpx.HTTPError as error:
            raise _backend_unreachable(self.prefix, error) from None
        finally:
            timing["backend_s"] = timing.get("backend_s", 0.0) + time.perf_counter() - began


class TritonBackend(Backend):
    prefix = "triton"

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.model = settings.triton_model
        self.base_url = f"http://{settings.triton_url.removeprefix('http://')}"

    async def ready(self) -> bool:
        try:
            return (await self.client.get(f"/v2/models/{self.model}/ready", timeout=2)).status_code == 200
        except httpx.HTTPError:
            return False

    def check_supported(self, request: ChatRequest) -> None:
        greedy_only = {"temperature": (request.temperature, 0.0), "top_p": (request.top_p, 1.0)}
        for name, (value, greedy) in greedy_only.items():
            if value is not None and value != greedy:
                raise FacadeError(400, f"{self.model_id} decodes greedily only: leave {name} out or send {greedy:g}",
                                  param=name, code="unsupported_parameter")
        if request.stop:
            raise FacadeError(400, f"{self.model_id} does not take stop strings", param="stop",
                              code="unsupported_parameter")

    def infer_body(self, request: ChatRequest) -> dict:
        messages = json.dumps([m.model_dump() for m in request.messages])
        return {"inputs": [
            {"name": "MESSAGES", "shape": [1], "datatype": "BYTES", "data": [messages]},
            {"name": "MAX_TOKENS", "shape": [1], "datatype": "INT32", "data": [_max_tokens(request, self.settings)]}]}

    async def complete(self, request: ChatRequest, timing: dict) -> ChatCompletion:
        self.check_supported(request)
        reply = await self.timed_post(f"/v2/models/{self.model}/infer", timing, json=self.infer_body(request))
        body = reply.json()
        if reply.status_code != 200:  # Triton's v2 error: {"error": "..."}; a 400 is the client's, keep it
            status = reply.status_code if reply.status_code < 500 else 502
            raise FacadeError(status, f"Triton: {body.get('error', reply.text)}", code="backend_error")
        out = {o["name"]: o["data"] for o in body["outputs"]}
        token_ids = [int(t) for t in out["TOKEN_IDS"]]
        prompt_tokens = int(out["PROMPT_TOKENS"][0])
        return ChatCompletion(
            id=f"chatcmpl-{uuid.uuid4().hex}", created=int(time.time()), model=self.model_id,
            choices=[Choice(message=ChatMessage(content=out["TEXT"][0]), finish_reason=out["FINISH_REASON"][0],
                            token_ids=token_ids if request.return_token_ids else None)],
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=len(token_ids),
                        total_tokens=prompt_tokens + len(token_ids)))


class VLLMBackend(Backend):
    prefix = "vllm"

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.model = settings.vllm_model
        self.base_url = settings.vllm_url.rstrip("/")

    async def ready(self) -> bool:
        try:
            return (await self.client.get("/health", timeout=2)).status_code == 200
        except httpx.HTTPError:
            return False

    async def complete(self, request: ChatRequest, timing: dict) -> ChatCompletion:
        body = request.model_dump(exclude_none=True, exclude={"return_token_ids"} if not request.return_token_ids
                                  else set())
        body.update(model=self.model, max_tokens=_max_tokens(request, self.settings))
        body.pop("max_completion_tokens", None)
        reply = await self.timed_post("/v1/chat/completions", timing, json=body)
        answer = reply.json()
        if reply.status_code != 200:  # vLLM's errors are OpenAI-shaped already
            error = answer.get("error", {}) if isinstance(answer, dict) else {}
            status = reply.status_code if reply.status_code < 500 else 502
            raise FacadeError(status, f"vLLM: {error.get('message', reply.text)}", param=error.get("param"),
                              code="backend_error")
        choice = answer["choices"][0]
        return ChatCompletion(
            id=answer["id"], created=answer["created"], model=self.model_id,
            choices=[Choice(message=ChatMessage(content=choice["message"]["content"] or ""),
                            finish_reason=choice["finish_reason"],
                            token_ids=choice.get("token_ids") if request.return_token_ids else None)],
            usage=Usage(**{k: answer["usage"][k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")}))
