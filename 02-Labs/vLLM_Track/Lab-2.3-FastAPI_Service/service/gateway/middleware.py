"""Pure ASGI middleware: metrics around everything, admission control, the body-size limit.

Pure ASGI (not `@app.middleware("http")`) because it must see streamed responses to their end and
must not buffer them: a streamed chat completion holds its admission slot until the last byte.

Order, outermost first: `Observe` (counts every answer, also the refusals) -> `Admission` (cheap
refusal first) -> `BodyLimit` -> the app.
"""
from __future__ import annotations

import json
import time

from gateway.errors import error_body
from gateway.metrics import GatewayMetrics
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def route_template(app, scope: Scope) -> str:
    """The route template a request will hit ("/jobs/{job_id}"), or "other" (keeps label values bounded)."""
    for route in getattr(app, "routes", ()):
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return getattr(route, "path", "other")
    return "other"


async def send_error(send: Send, status: int, message: str, *, code: str, headers: dict[str, str] | None = None,
                     param: str | None = None) -> None:
    body = json.dumps(error_body(status, message, code=code, param=param)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class Observe:
    """Counts and times every HTTP request by route template and status code; tracks requests in flight."""

    def __init__(self, app: ASGIApp, *, metrics: GatewayMetrics, router_app) -> None:
        self.app, self.metrics, self.router_app = app, metrics, router_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = route_template(self.router_app, scope)
        status = {"code": 500}
        began = time.perf_counter()
        scope["gateway.began"] = began  # the handlers measure TTFT from here

        async def send_and_record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        gauge = self.metrics.in_flight.labels(route)
        gauge.inc()
        try:
            await self.app(scope, receive, send_and_record)
        finally:
            gauge.dec()
            self.metrics.requests.labels(route, scope["method"], str(status["code"])).inc()
            self.metrics.duration.labels(route).observe(time.perf_counter() - began)


class Admission:
    """At most `limit` requests in flight on the guarded paths; the next one gets 503 + Retry-After at once.

    Refusing quickly is the point: a request that would wait behind a full engine for longer than the
    client's timeout only wastes work. A client (or load balancer) retries after Retry-After seconds,
    possibly on another replica.
    """

    def __init__(self, app: ASGIApp, *, limit: int, retry_after_s: int, metrics: GatewayMetrics,
                 guarded_prefixes: tuple[str, ...]) -> None:
        self.app, self.limit, self.retry_after = app, limit, retry_after_s
        self.metrics, self.guarded = metrics, guarded_prefixes
        self.in_flight = 0
        self.admitted = 0
        self.shed = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.limit <= 0 or scope["method"] != "POST" \
                or not scope["path"].startswith(self.guarded):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            self.shed += 1
            self.metrics.shed.labels("max_in_flight").inc()
            await send_error(send, 503, f"the gateway is at its limit of {self.limit} requests in flight; "
                             f"retry after {self.retry_after} s", code="server_overloaded",
                             headers={"Retry-After": str(self.retry_after)})
            return
        self.in_flight += 1
        self.admitted += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


class BodyLimit:
    """Refuses request bodies over `max_bytes` with 413, by Content-Length or by counting a chunked body.

    The body is read here (it is small by construction) and replayed to the app, so the app never sees a
    truncated body and a client never gets a 500 for sending too much.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    def _too_large(self, send: Send, size: str) -> object:
        return send_error(send, 413, f"request body is {size}; this gateway accepts at most {self.max_bytes} "
                          "bytes (GATEWAY_MAX_BODY_BYTES)", code="body_too_large")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await send_error(send, 400, "Content-Length is not a number", code="bad_content_length")
                return
            if length > self.max_bytes:
                await self._too_large(send, f"{length} bytes (Content-Length)")
                return
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left before sending its body: nothing to answer
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_bytes:
                await self._too_large(send, f"over {self.max_bytes} bytes (chunked)")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # afterwards: the real channel (http.disconnect when the client leaves)

        await self.app(scope, replay, send)
