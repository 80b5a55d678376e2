"""API keys, per-key rate limits on a shared store, and an access log that keeps secrets out (vLLM Lab 2.4 · 03).

All of it is off unless configured, so the gateway of Lab 2.3 behaves as before:

    GATEWAY_API_KEY_HASHES="alice:<sha256 hex>:20,batch:<sha256 hex>"   # name:hash[:requests per window]
    GATEWAY_RATE_LIMIT_REQUESTS=60 GATEWAY_RATE_LIMIT_WINDOW_S=60        # default limit per key per window
    GATEWAY_AUTH_FAILURE_LIMIT=10                                          # failed keys per client address
    GATEWAY_RATE_LIMIT_REDIS_URL=redis://127.0.0.1:6379                    # shared by every gateway process
    GATEWAY_ACCESS_LOG=1                                                   # one JSON line per request

- **Keys.** The gateway stores the sha256 of each key, never the key (`hash_key`). A request sends
  `Authorization: Bearer <key>`; the gateway hashes it and compares with every stored hash with
  `hmac.compare_digest` (constant time, and over all entries, so the time does not say which entry almost
  matched). A missing or wrong key is 401 with `WWW-Authenticate: Bearer`. Every path needs a key except the
  probes, `/metrics` and the API description (deny by default: a route added later is protected too).
- **Rate limits.** A fixed window per key, counted in Redis by one Lua script (INCR, and PEXPIRE when the
  count is new): atomic, so two gateway processes never both see "under the limit" for the last slot. The
  window starts at a key's first request and lasts `rate_limit_window_s`; request `limit + 1` and later in it
  get 429 with `Retry-After` (the seconds left). Fixed rather than sliding: one counter per key, and the
  arithmetic is exact; the price is that a client can send up to twice the limit around the moment a window
  ends and the next begins. Without a Redis URL each process counts alone (N processes let N times the
  limit through).
- **Failed authentications** are counted per client address (a key guesser has no key to be counted
  against); past `auth_failure_limit` in a window that address gets 429 before its key is even looked at.
  The client address is the peer of the TCP connection, or what uvicorn's `--forwarded-allow-ips` lets
  `X-Forwarded-For` say: trust it only from your proxy's address, or every client picks its own address.
- **The access log** has the route template (never the raw path or query string), status, time, client
  address, the key's *name*, token counts and a request id; never the key, never a prompt or an answer.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from gateway.middleware import route_template, send_error
from starlette.types import ASGIApp, Message, Receive, Scope, Send

OPEN_PATHS = ("/health", "/ready", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
# Atomic fixed window: count this request; a new count gets the window's lifetime. Returns the count and the
# milliseconds left in the window. (PTTL -1 would mean a key without expiry: give it one, never lock forever.)
WINDOW_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('PTTL', KEYS[1])}
"""
PEEK_SCRIPT = "return {tonumber(redis.call('GET', KEYS[1]) or '0'), redis.call('PTTL', KEYS[1])}"


def hash_key(key: str) -> str:
    """The sha256 (hex) of an API key: what the gateway's configuration stores instead of the key."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class KeyEntry:
    name: str
    digest: bytes
    limit: int | None  # requests per window; None = the gateway's default


class KeyRing:
    """The accepted keys, as (name, sha256, limit) entries parsed from "name:hex[:limit]" items."""

    def __init__(self, entries: list[KeyEntry]):
        names = [e.name for e in entries]
        if len(set(names)) != len(names):
            raise ValueError(f"API key names must be unique; got {sorted(names)}")
        self.entries = entries

    @classmethod
    def parse(cls, text: str, *, source: str = "GATEWAY_API_KEY_HASHES") -> KeyRing:
        entries = []
        for item in re.split(r"[,\n]", text):
            item = item.split("#", 1)[0].strip()
            if not item:
                continue
            parts = item.split(":")
            if len(parts) not in (2, 3) or not parts[0] or not _HEX64.match(parts[1].lower()):
                raise ValueError(f"{source}: {item[:20]!r}... is not name:sha256hex[:limit] (64 hex digits: "
                                 "the sha256 of the key, e.g. gateway.security.hash_key(key); never the key)")
            limit = None
            if len(parts) == 3:
                if not parts[2].isdigit():
                    raise ValueError(f"{source}: the limit of {parts[0]!r} must be a whole number, got {parts[2]!r}")
                limit = int(parts[2])
            entries.append(KeyEntry(parts[0], bytes.fromhex(parts[1].lower()), limit))
        return cls(entries)

    @classmethod
    def from_settings(cls, settings) -> KeyRing:
        entries = cls.parse(settings.api_key_hashes).entries
        if settings.api_keys_file:
            entries += cls.parse(Path(settings.api_keys_file).read_text(), source=settings.api_keys_file).entries
        return cls(entries)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def identify(self, presented: str) -> KeyEntry | None:
        """The entry whose hash matches the presented key, or None; compares with every entry."""
        digest = hashlib.sha256(presented.encode()).digest()
        found = None
        for entry in self.entries:
            if hmac.compare_digest(digest, entry.digest):
                found = entry
        return found


def bearer_token(scope: Scope) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() or None if scheme.lower() == "bearer" else None
    return None


class MemoryWindows:
    """Fixed-window counters in this process only (no Redis URL): each gateway process counts alone."""

    def __init__(self) -> None:
        self.windows: dict[str, tuple[int, float]] = {}

    async def hit(self, key: str, window_s: int) -> tuple[int, int]:
        now = time.monotonic()
        count, ends = self.windows.get(key, (0, 0.0))
        if now >= ends:
            count, ends = 0, now + window_s
        self.windows[key] = (count + 1, ends)
        return count + 1, int((ends - now) * 1000)

    async def peek(self, key: str) -> tuple[int, int]:
        count, ends = self.windows.get(key, (0, 0.0))
        now = time.monotonic()
        return (count, int((ends - now) * 1000)) if now < ends else (0, -2)

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        pass


class RedisWindows:
    """Fixed-window counters in Redis, shared by every gateway process that uses the same URL."""

    def __init__(self, url: str, prefix: str = "gateway:rl:") -> None:
        import redis.asyncio as aioredis
        self.redis = aioredis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.prefix = prefix
        self._hit = self.redis.register_script(WINDOW_SCRIPT)
        self._peek = self.redis.register_script(PEEK_SCRIPT)

    async def hit(self, key: str, window_s: int) -> tuple[int, int]:
        count, ttl_ms = await self._hit(keys=[self.prefix + key], args=[window_s * 1000])
        return int(count), int(ttl_ms)

    async def peek(self, key: str) -> tuple[int, int]:
        count, ttl_ms = await self._peek(keys=[self.prefix + key])
        return int(count), int(ttl_ms)

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except Exception:
            return False

    async def aclose(self) -> None:
        await self.redis.aclose()


def make_windows(settings):
    return RedisWindows(settings.rate_limit_redis_url) if settings.rate_limit_redis_url else MemoryWindows()


def _retry_after_s(ttl_ms: int) -> int:
    return max(1, math.ceil(ttl_ms / 1000))


class Security:
    """Pure ASGI: API key (401), failed-authentication limit per client address and rate limit per key (429).

    Sets scope["gateway.key_name"] for the access log; adds `X-RateLimit-Limit/Remaining/Reset` to answers."""

    def __init__(self, app: ASGIApp, *, keyring: KeyRing, windows, default_limit: int, window_s: int,
                 failure_limit: int, metrics, open_paths: tuple[str, ...] = OPEN_PATHS) -> None:
        self.app, self.keyring, self.windows = app, keyring, windows
        self.default_limit, self.window_s, self.failure_limit = default_limit, window_s, failure_limit
        self.metrics, self.open_paths = metrics, open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        try:
            await self._guard(scope, receive, send, client)
        except _Unavailable as error:
            await send_error(send, 503, f"the rate limiter's store is not reachable ({error}); retry later",
                             code="rate_limiter_unavailable", headers={"Retry-After": "1"})

    async def _count(self, method, *args):
        try:
            return await method(*args)
        except Exception as error:
            raise _Unavailable(type(error).__name__) from None

    async def _guard(self, scope: Scope, receive: Receive, send: Send, client: str) -> None:
        if self.failure_limit:
            failures, ttl_ms = await self._count(self.windows.peek, f"fail:{client}")
            if failures >= self.failure_limit:
                self.metrics.shed.labels("auth_failures").inc()
                await send_error(send, 429, f"too many failed authentications from {client}: {failures} in this "
                                 f"window (limit {self.failure_limit}); retry after {_retry_after_s(ttl_ms)} s "
                                 "with a valid key", code="too_many_auth_failures",
                                 headers={"Retry-After": str(_retry_after_s(ttl_ms))})
                return
        token = bearer_token(scope)
        entry = self.keyring.identify(token) if token else None
        if entry is None:
            if self.failure_limit:
                await self._count(self.windows.hit, f"fail:{client}", self.window_s)
            self.metrics.shed.labels("unauthenticated").inc()
            message = ("the API key is not valid" if token else
                       "this gateway needs an API key: send the header `Authorization: Bearer <key>`")
            error = 'Bearer realm="llm-gateway"' + (', error="invalid_token"' if token else "")
            await send_error(send, 401, message, code="invalid_api_key" if token else "missing_api_key",
                             headers={"WWW-Authenticate": error})
            return
        scope["gateway.key_name"] = entry.name
        limit = entry.limit if entry.limit is not None else self.default_limit
        if not limit:
            await self.app(scope, receive, send)
            return
        count, ttl_ms = await self._count(self.windows.hit, f"key:{entry.name}", self.window_s)
        headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(max(0, limit - count)),
                   "X-RateLimit-Reset": str(_retry_after_s(ttl_ms))}
        if count > limit:
            self.metrics.shed.labels("rate_limit").inc()
            await send_error(send, 429, f"key {entry.name!r} is over its limit of {limit} requests per "
                             f"{self.window_s} s; retry after {_retry_after_s(ttl_ms)} s", code="rate_limit_exceeded",
                             headers={**headers, "Retry-After": str(_retry_after_s(ttl_ms))})
            return
        extra = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _Unavailable(Exception):
    pass


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class AccessLog:
    """One JSON line per request on stdout, written when the answer has been sent (streams: at their end).

    Fields: ts, id (the client's X-Request-Id if it is a plain token, else a new one; echoed in the answer),
    client, method, route (the route *template*), status, ms, key (the key's name, or null), and the token
    counts the handlers put into scope["gateway.usage"]. Never a header value, the body, or the query string."""

    def __init__(self, app: ASGIApp, *, router_app, stream=None) -> None:
        self.app, self.router_app, self.stream = app, router_app, stream or sys.stdout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex[:16]
        scope["gateway.usage"] = {}
        status = {"code": 500}
        began = time.perf_counter()

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            line = {"ts": round(time.time(), 3), "id": request_id, "client": (scope.get("client") or ("-",))[0],
                    "method": scope["method"], "route": route_template(self.router_app, scope),
                    "status": status["code"], "ms": round(1000 * (time.perf_counter() - began), 2),
                    "key": scope.get("gateway.key_name"), **scope["gateway.usage"]}
            self.stream.write(json.dumps(line) + "\n")
            self.stream.flush()


def secure_openapi(app, open_paths: tuple[str, ...] = OPEN_PATHS) -> None:
    """Declare bearer authentication in the app's OpenAPI document: every operation outside `open_paths` needs
    it and may answer 401 and 429. Clients and fuzzers (schemathesis) read this; the middleware enforces it."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {}).setdefault("securitySchemes", {})["apiKey"] = {
            "type": "http", "scheme": "bearer", "description": "Authorization: Bearer <API key>"}
        error_ref = {"$ref": "#/components/schemas/ErrorBody"}
        has_error_body = "ErrorBody" in schema["components"].get("schemas", {})
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                if path in open_paths:
                    operation["security"] = []
                    continue
                operation["security"] = [{"apiKey": []}]
                for code, text in (("401", "missing or invalid API key"), ("429", "rate limit exceeded")):
                    response = {"description": text}
                    if has_error_body:
                        response["content"] = {"application/json": {"schema": error_ref}}
                    operation.setdefault("responses", {}).setdefault(code, response)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi
