"""The façade: one OpenAI-compatible API over Triton and vLLM, and Triton's KServe v2 API behind the same door.

    GET  /health                    the process answers
    GET  /ready                     every configured backend is ready (503 otherwise)
    GET  /v1/models                 one id per backend: "triton/<model>", "vllm/<served name>"
    POST /v1/chat/completions       OpenAI's chat completion; the model id picks the backend
    GET  /v2/health/ready, GET /v2/models/{name}, POST /v2/models/{name}/infer
                                    KServe v2, forwarded to Triton after the façade checked the body

Every answer carries `Server-Timing: facade;dur=..., backend;dur=...` (milliseconds): the time the façade spent
itself and the time it waited for the backend, which is how notebook 03 splits the façade's overhead.
"""
from __future__ import annotations

import time
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from facade.backends import Backend, TritonBackend, VLLMBackend
from facade.errors import FacadeError, install_error_handlers
from facade.schemas import ChatCompletion, ChatRequest, V2Request
from facade.settings import Settings


def create_app(settings: Settings | None = None, transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    """The app; `transport` replaces the network for tests (httpx.MockTransport)."""
    settings = settings or Settings.from_env()
    backends: dict[str, Backend] = {}
    if settings.triton_url:
        backends["triton"] = TritonBackend(settings)
    if settings.vllm_url:
        backends["vllm"] = VLLMBackend(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        for backend in backends.values():
            await backend.start()
            if transport is not None:
                await backend.client.aclose()
                backend.client = httpx.AsyncClient(base_url=backend.base_url, transport=transport)
        yield
        for backend in backends.values():
            await backend.stop()

    app = FastAPI(title="Unified LLM API (Triton Lab 2.3 · 03)", lifespan=lifespan)
    install_error_handlers(app)

    @app.middleware("http")
    async def server_timing(request: Request, call_next):
        request.state.timing = {}
        began = time.perf_counter()
        response = await call_next(request)
        total_ms = (time.perf_counter() - began) * 1000
        backend_ms = request.state.timing.get("backend_s", 0.0) * 1000
        response.headers["Server-Timing"] = f"facade;dur={total_ms - backend_ms:.3f}, backend;dur={backend_ms:.3f}"
        return response

    def backend_for(model: str) -> Backend:
        for backend in backends.values():
            if model == backend.model_id:
                return backend
        known = ", ".join(repr(b.model_id) for b in backends.values())
        raise FacadeError(404, f"the model {model!r} does not exist here; use one of {known} (GET /v1/models)",
                          param="model", code="model_not_found")

    def triton() -> TritonBackend:
        if "triton" not in backends:
            raise FacadeError(404, "this façade has no Triton backend (FACADE_TRITON_URL is not set)")
        return backends["triton"]

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        checks = {name: await backend.ready() for name, backend in backends.items()}
        return JSONResponse({"ready": all(checks.values()) and bool(checks), "checks": checks},
                            status_code=200 if checks and all(checks.values()) else 503)

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [{"id": b.model_id, "object": "model", "created": 0, "owned_by": name}
                                           for name, b in backends.items()]}

    @app.post("/v1/chat/completions", response_model=ChatCompletion, response_model_exclude_none=True)
    async def chat(body: ChatRequest, request: Request) -> ChatCompletion:
        backend = backend_for(body.model)
        if body.stream:
            raise FacadeError(400, "this façade answers whole completions: send stream=false (Triton streams from a "
                                   "decoupled model, Lab 2.3 · 04)", param="stream", code="unsupported_parameter")
        return await backend.complete(body, request.state.timing)

    # -- KServe v2, forwarded to Triton ------------------------------------------------------------------
    async def forward(request: Request, method: str, path: str, body: dict | None = None) -> Response:
        backend = triton()
        began = time.perf_counter()
        try:
            reply = await backend.client.request(method, path, json=body)
        except httpx.HTTPError as error:
            raise FacadeError(503, f"Triton cannot be reached ({type(error).__name__}); retry later") from None
        finally:
            request.state.timing["backend_s"] = time.perf_counter() - began
        if reply.status_code >= 500:  # the façade checked the body, so a 5xx is the server's fault
            raise FacadeError(502, f"Triton failed: {reply.text[:300]}")
        return Response(reply.content, status_code=reply.status_code, media_type="application/json")

    @app.get("/v2/health/ready")
    async def v2_ready(request: Request) -> Response:
        return await forward(request, "GET", "/v2/health/ready")

    @app.get("/v2/models/{name}")
    async def v2_metadata(name: str, request: Request) -> Response:
        return await forward(request, "GET", f"/v2/models/{name}")

    @app.post("/v2/models/{name}/infer")
    async def v2_infer(name: str, body: V2Request, request: Request) -> Response:
        return await forward(request, "POST", f"/v2/models/{name}/infer", body.model_dump(exclude_none=True))

    return app
