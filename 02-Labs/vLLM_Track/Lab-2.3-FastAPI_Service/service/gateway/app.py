"""The LLM gateway: `create_app(settings)` builds one FastAPI application.

    uvicorn gateway.app:create_app --factory --app-dir service      # settings from GATEWAY_* variables
    app = create_app(Settings(max_prompt_tokens=128))                 # in a test

Routes: `/health` (liveness: the process serves), `/ready` (readiness: tokenizer, backend, queue are
usable), `/v1/tokenize`, `/v1/models`, `/v1/chat/completions` (with a backend), `/metrics`, and
optionally `/demo/*` (Lab 2.3 · 02) and `/jobs` (with Redis).
"""

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from gateway.backends import Backend, Delta, GenerationRequest, make_backend
from gateway.errors import GatewayError, install_error_handlers
from gateway.metrics import GatewayMetrics, multiprocess_dir
from gateway.middleware import Admission, BodyLimit, Observe
from gateway.schemas import (
    ChatCompletion,
    ChatMessage,
    Choice,
    ErrorBody,
    Health,
    ModelCard,
    ModelList,
    Readiness,
    TokenizeResponse,
    Usage,
    request_models,
)
from gateway.security import AccessLog, KeyRing, Security, make_windows, secure_openapi
from gateway.settings import Settings
from gateway.text import chat_token_ids, load_tokenizer, text_token_ids

VERSION = "1.0.0"
GUARDED_PREFIXES = ("/v1/chat/completions", "/demo/work", "/demo/stream")
ERROR_RESPONSES = {code: {"model": ErrorBody} for code in (400, 404, 413, 422, 503)}  # + 401/429 with API keys
SSE_RESPONSE = {200: {"description": "a chat.completion, or with `stream: true` a Server-Sent-Events stream of "
                                     "chat.completion.chunk objects ending with `data: [DONE]`",
                      "content": {"text/event-stream": {"schema": {  # one Server-Sent Event
                          "type": "object", "required": ["data"],
                          "properties": {"data": {"type": "string", "description": "a chat.completion.chunk as "
                                                  "JSON, or [DONE]"}}}}}}}


@dataclass
class GatewayState:
    settings: Settings
    metrics: GatewayMetrics
    model_path: str = ""
    tokenizer: object = None
    backend: Backend | None = None
    backend_error: str | None = None
    backend_started_s: float | None = None
    job_pool: object = None
    process_pool: object = None
    admission: Admission | None = None
    rate_windows: object = None  # the rate limiter's counters (Redis or this process), with API keys only
    lag_samples: deque = field(default_factory=lambda: deque(maxlen=20_000))
    work_chunks_started: int = 0
    work_chunks_done: int = 0
    stream_cancellations: int = 0
    created: int = field(default_factory=lambda: int(time.time()))


async def _watch_loop_lag(state: GatewayState) -> None:
    """Sleep `interval` again and again; how much later than asked we wake up is the loop's lag."""
    interval = state.settings.loop_lag_interval_s
    loop = asyncio.get_running_loop()
    while True:
        began = loop.time()
        await asyncio.sleep(interval)
        lag = max(0.0, loop.time() - began - interval)
        state.lag_samples.append((time.monotonic(), lag))
        state.metrics.loop_lag.observe(lag)


def _warm_up() -> int:  # runs in a pool process: importing the work module once
    return os.getpid()


def create_app(settings: Settings | None = None, *, backend: Backend | None = None) -> FastAPI:
    """The gateway app. `settings` default to the GATEWAY_* environment; `backend` replaces the one the
    settings name (tests pass their own)."""
    settings = settings or Settings.from_env()
    metrics = GatewayMetrics()
    models = request_models(settings)
    state = GatewayState(settings=settings, metrics=metrics, model_path=settings.resolved_model_path())
    state.backend = backend or make_backend(settings, state.model_path)
    keyring = KeyRing.from_settings(settings) if settings.security_enabled else None
    if keyring is not None:
        state.rate_windows = make_windows(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.process_title:
            with contextlib.suppress(ImportError):
                import setproctitle
                setproctitle.setproctitle(f"{settings.process_title} (pid {os.getpid()})")
        state.tokenizer = await asyncio.to_thread(load_tokenizer, state.model_path)
        tasks = [asyncio.create_task(_watch_loop_lag(state))]
        if state.backend is not None:
            async def start_backend() -> None:
                began = time.perf_counter()
                try:
                    await state.backend.start()
                    if settings.backend == "engine" and settings.engine_mount_vllm_api:
                        app.mount("/vllm", await state.backend.vllm_api_app())
                    state.backend_started_s = time.perf_counter() - began
                except Exception as error:  # /ready says why; /health stays up
                    state.backend_error = f"{type(error).__name__}: {error}"
            tasks.append(asyncio.create_task(start_backend()))
        if settings.redis_url:
            from arq import create_pool
            from arq.connections import RedisSettings
            state.job_pool = await create_pool(RedisSettings.from_dsn(settings.redis_url))
        if settings.demo_routes:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor
            state.process_pool = ProcessPoolExecutor(settings.process_pool_workers,
                                                     mp_context=multiprocessing.get_context("spawn"))
            await asyncio.get_running_loop().run_in_executor(state.process_pool, _warm_up)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if state.backend is not None:
                await state.backend.stop()
            if state.job_pool is not None:
                await state.job_pool.aclose()
            if state.process_pool is not None:
                state.process_pool.shutdown(cancel_futures=True)
            if state.rate_windows is not None:
                await state.rate_windows.aclose()

    app = FastAPI(title="LLM gateway (course Lab 2.3)", version=VERSION, lifespan=lifespan,
                  description="Validation, limits, admission control, streaming and metrics in front of an "
                              "LLM engine. Every client error is a 4xx with an OpenAI-style error body.")
    app.state.gateway = state
    install_error_handlers(app)

    # ---- liveness and readiness ---------------------------------------------------------------
    @app.get("/health", response_model=Health, tags=["probes"], summary="liveness: the process serves")
    async def health() -> Health:
        return Health(pid=os.getpid())

    @app.get("/ready", response_model=Readiness, tags=["probes"], responses={503: {"model": Readiness}},
             summary="readiness: everything a request needs is usable")
    async def ready() -> JSONResponse:
        checks = {"tokenizer": state.tokenizer is not None}
        if state.backend is not None:
            checks[state.backend.name] = (state.backend_error is None and state.backend_started_s is not None
                                          and await state.backend.ready())
        if settings.redis_url:
            checks["redis"] = await _redis_ok(state.job_pool)
        if settings.demo_routes:
            checks["process_pool"] = state.process_pool is not None
        if settings.rate_limit_redis_url and state.rate_windows is not None:
            checks["rate_limit_store"] = await state.rate_windows.ping()
        body = Readiness(ready=all(checks.values()), checks=checks, pid=os.getpid(), detail=state.backend_error)
        return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)

    # ---- tokens -----------------------------------------------------------------------------------
    @app.post("/v1/tokenize", response_model=TokenizeResponse, responses=ERROR_RESPONSES, tags=["tokens"],
              summary="count the tokens of a text or of chat messages (with the chat template)")
    async def tokenize(body: models.tokenize) -> TokenizeResponse:
        if hasattr(body, "text"):
            ids = text_token_ids(state.tokenizer, body.text)
        else:
            ids = chat_token_ids(state.tokenizer, [m.model_dump() for m in body.messages],
                                 body.add_generation_prompt)
        return TokenizeResponse(model=settings.model_name, count=len(ids), max_prompt_tokens=settings.max_prompt_tokens,
                                fits=len(ids) <= settings.max_prompt_tokens,
                                tokens=ids if body.return_tokens else None)

    @app.get("/v1/models", response_model=ModelList, tags=["openai"], summary="the served model")
    async def list_models() -> ModelList:
        max_len = state.backend.max_model_len if state.backend is not None else None
        return ModelList(data=[ModelCard(id=settings.model_name, created=state.created, max_model_len=max_len)])

    # ---- generation -------------------------------------------------------------------------------
    if state.backend is not None:
        @app.post("/v1/chat/completions", response_model=ChatCompletion, responses={**ERROR_RESPONSES, **SSE_RESPONSE},
                  tags=["openai"], summary="OpenAI-compatible chat completion (stream or not)")
        async def chat_completions(body: models.chat, request: Request):
            began = request.scope.get("gateway.began", time.perf_counter())
            generation = _prepare(state, body)
            stream = state.backend.generate(generation)
            request_id = generation.request_id
            metrics.prompt_tokens.inc(len(generation.prompt_token_ids))
            request.scope.setdefault("gateway.usage", {})["prompt_tokens"] = len(generation.prompt_token_ids)
            if body.stream:
                include_usage = bool(body.stream_options and body.stream_options.include_usage)
                first = await _first(stream)  # errors (queue full, bad params) still get a real status code
                return StreamingResponse(
                    _sse(state, request_id, stream, first, began, len(generation.prompt_token_ids), include_usage),
                    media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Request-Id": request_id})
            return await _complete(state, request, request_id, stream, began, len(generation.prompt_token_ids))

    if settings.demo_routes:
        from gateway.demo import demo_router
        app.include_router(demo_router(app, models.work))
    if settings.redis_url:
        from gateway.jobs import jobs_router
        app.include_router(jobs_router(app))

    if settings.metrics:
        @app.get("/metrics", include_in_schema=False)
        async def prometheus_metrics() -> Response:
            text = metrics.render(include_global=multiprocess_dir() is None)
            return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    # Outermost last: Observe -> AccessLog -> Security -> Admission -> BodyLimit -> routes. Security comes before
    # admission, so a request without a valid key never takes a slot; the access log sees every refusal.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    admission_kwargs = dict(limit=settings.max_in_flight, retry_after_s=settings.retry_after_s, metrics=metrics,
                            guarded_prefixes=GUARDED_PREFIXES)
    app.add_middleware(_AdmissionHandle, state=state, **admission_kwargs)
    if keyring is not None:
        app.add_middleware(Security, keyring=keyring, windows=state.rate_windows, metrics=metrics,
                           default_limit=settings.rate_limit_requests, window_s=settings.rate_limit_window_s,
                           failure_limit=settings.auth_failure_limit)
        secure_openapi(app)
    if settings.access_log:
        app.add_middleware(AccessLog, router_app=app)
    app.add_middleware(Observe, metrics=metrics, router_app=app)
    return app


class _AdmissionHandle(Admission):
    """Admission, registered on the app state so that tests and /demo can read its counts."""

    def __init__(self, app, *, state: GatewayState, **kwargs) -> None:
        super().__init__(app, **kwargs)
        state.admission = self


async def _redis_ok(pool) -> bool:
    if pool is None:
        return False
    try:
        return bool(await asyncio.wait_for(pool.ping(), timeout=1))
    except Exception:
        return False


def _prepare(state: GatewayState, body) -> GenerationRequest:
    """Check the request against the served model and the limits; tokenize it."""
    settings = state.settings
    if body.model != settings.model_name:
        raise GatewayError(404, f"model {body.model!r} is not served here; available: [{settings.model_name!r}]",
                           code="model_not_found", param="model")
    # max_completion_tokens is OpenAI's newer name for max_tokens; when both are sent it wins (as in vLLM)
    max_tokens = body.max_completion_tokens or body.max_tokens or min(settings.default_max_tokens,
                                                                     settings.max_tokens_limit)
    messages = [m.model_dump() for m in body.messages]
    ids = chat_token_ids(state.tokenizer, messages)
    if len(ids) > settings.max_prompt_tokens:
        raise GatewayError(400, f"the prompt has {len(ids)} tokens (with the chat template); this gateway accepts "
                           f"at most {settings.max_prompt_tokens} (GATEWAY_MAX_PROMPT_TOKENS). Shorten the "
                           "messages.", code="prompt_too_long", param="messages")
    limit = state.backend.max_model_len or settings.engine_max_model_len
    if len(ids) + max_tokens > limit:
        raise GatewayError(400, f"prompt ({len(ids)} tokens) + max_tokens ({max_tokens}) exceeds the model's "
                           f"context of {limit} tokens; lower max_tokens or shorten the prompt",
                           code="context_length_exceeded", param="max_tokens")
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    return GenerationRequest(request_id=f"chatcmpl-{uuid.uuid4().hex[:24]}", messages=messages,
                             prompt_token_ids=ids, max_tokens=max_tokens, temperature=body.temperature,
                             top_p=body.top_p, seed=body.seed, stop=stop, ignore_eos=body.ignore_eos,
                             priority=body.priority)


async def _first(stream: AsyncIterator[Delta]) -> Delta | None:
    try:
        return await stream.__anext__()
    except StopAsyncIteration:
        return None


def _chunk(request_id: str, created: int, model: str, delta: dict, finish: str | None) -> str:
    event = {"id": request_id, "object": "chat.completion.chunk", "created": created, "model": model,
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(event)}\n\n"


async def _sse(state: GatewayState, request_id: str, stream: AsyncIterator[Delta], first: Delta | None,
               began: float, prompt_tokens: int, include_usage: bool) -> AsyncIterator[str]:
    """OpenAI's chunk format: a role chunk, content chunks, a finish chunk, usage (if asked), [DONE]."""
    metrics, model, created = state.metrics, state.settings.model_name, int(time.time())
    tokens, finish, seen_first, done = 0, None, False, False
    try:
        yield _chunk(request_id, created, model, {"role": "assistant", "content": ""}, None)
        pending = [first] if first is not None else []
        while True:
            if pending:
                delta = pending.pop()
            else:
                try:
                    delta = await stream.__anext__()
                except StopAsyncIteration:
                    break
            if delta.tokens and not seen_first:
                seen_first = True
                metrics.ttft.observe(time.perf_counter() - began)
            tokens += delta.tokens
            metrics.generation_tokens.inc(delta.tokens)
            finish = delta.finish_reason or finish
            if delta.text:
                yield _chunk(request_id, created, model, {"content": delta.text}, None)
        yield _chunk(request_id, created, model, {}, finish or "stop")
        if include_usage:
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": tokens,
                     "total_tokens": prompt_tokens + tokens}
            event = {"id": request_id, "object": "chat.completion.chunk", "created": created, "model": model,
                     "choices": [], "usage": usage}
            yield f"data: {json.dumps(event)}\n\n"
        yield "data: [DONE]\n\n"
        done = True
        metrics.e2e.observe(time.perf_counter() - began)
    except GatewayError as error:  # after the 200 header: report in the stream, as OpenAI does
        yield f"data: {json.dumps({'error': {'message': error.message, 'code': error.code}})}\n\n"
        yield "data: [DONE]\n\n"
        done = True
    finally:
        if not done:  # cancelled: the client went away
            metrics.disconnects.inc()
        with anyio.CancelScope(shield=True):  # finish the clean-up even though this task is being cancelled
            await stream.aclose()  # stops the generation (engine abort / upstream connection closed)


async def _complete(state: GatewayState, request: Request, request_id: str, stream: AsyncIterator[Delta],
                    began: float, prompt_tokens: int):
    """A non-streamed completion; if the client disconnects meanwhile, the generation is cancelled."""
    metrics = state.metrics

    async def collect() -> tuple[str, int, str | None]:
        parts, tokens, finish, seen_first = [], 0, None, False
        async for delta in stream:
            if delta.tokens and not seen_first:
                seen_first = True
                metrics.ttft.observe(time.perf_counter() - began)
            parts.append(delta.text)
            tokens += delta.tokens
            metrics.generation_tokens.inc(delta.tokens)
            finish = delta.finish_reason or finish
        return "".join(parts), tokens, finish

    task = asyncio.ensure_future(collect())
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=0.25)
            if done:
                break
            if await request.is_disconnected():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                metrics.disconnects.inc()
                return Response(status_code=499)  # nobody reads it; nginx's code for "client closed request"
    finally:
        if not task.done():
            task.cancel()
    text, tokens, finish = task.result()
    metrics.e2e.observe(time.perf_counter() - began)
    request.scope.setdefault("gateway.usage", {})["completion_tokens"] = tokens
    return ChatCompletion(id=request_id, created=int(time.time()), model=state.settings.model_name,
                          choices=[Choice(message=ChatMessage(content=text), finish_reason=finish or "stop")],
                          usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=tokens,
                                      total_tokens=prompt_tokens + tokens))
