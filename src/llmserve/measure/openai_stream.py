"""Streaming requests to OpenAI-compatible servers (vLLM, or anything that speaks the API), as calls
for the load generators of `llmserve.measure.load`.

Every request is sent with `"stream": true` (and `stream_options.include_usage`), and the client
notes when each streamed text chunk arrived (a `StreamReply`). The load generator's record turns
that into:

- TTFT: from the moment the request was due to the first chunk that carries text;
- ITL (inter-token latency): the gaps between consecutive text chunks (vLLM sends one chunk per
  generated token, so a gap is one decode step as the client sees it);
- E2E: from the moment the request was due to the end of the stream (`data: [DONE]`);
- output tokens: from the `usage` chunk when the server sends one, else the number of text chunks.

    payloads = [{"model": name, "messages": [...], "max_tokens": 32} for _ in range(16)]
    run = stream_load(server.base_url, payloads, concurrency=4)      # closed loop
    run = stream_load(server.base_url, payloads, rate=2.0, seed=1)   # open loop, Poisson arrivals
    print(run.table())

A request that fails (HTTP error, broken stream, timeout) is recorded with its error and counted,
never raised: a load test must report failures, not stop at the first one.
"""
from __future__ import annotations

import json
import time
from collections.abc import Sequence

import httpx

from llmserve.measure.load import LoadRun, RequestFailed, StreamReply, closed_loop, open_loop

ENDPOINTS = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}


# ------------------------------------------------------------------------------------------------
# Parsing the SSE stream
# ------------------------------------------------------------------------------------------------

def parse_sse_line(line: str) -> dict | str | None:
    """One line of an OpenAI-style SSE stream: the JSON event, "[DONE]", or None (blank, comment, other field).

    Raises ValueError for a `data:` line whose payload is neither JSON nor [DONE].
    """
    line = line.rstrip("\r\n")
    if not line.startswith("data:"):
        return None  # blank separator, ": comment" keep-alive, "event:"/"id:" fields
    data = line[len("data:"):].strip()
    if data == "[DONE]":
        return "[DONE]"
    try:
        event = json.loads(data)
    except json.JSONDecodeError as error:
        raise ValueError(f"SSE data line is not JSON: {data[:120]!r}") from error
    if not isinstance(event, dict):
        raise ValueError(f"SSE event is not a JSON object: {data[:120]!r}")
    return event


def event_text(event: dict) -> str:
    """The generated text an event carries (chat: choices[0].delta.content, completions: choices[0].text)."""
    choices = event.get("choices") or []
    if not choices:
        return ""
    choice = choices[0]
    delta = choice.get("delta")
    if isinstance(delta, dict):
        return delta.get("content") or ""
    return choice.get("text") or ""


def error_message(status: int, body: bytes | str) -> str:
    """A short message for an HTTP error reply (the server's `message` when it sends OpenAI-style JSON)."""
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    try:
        reply = json.loads(text)
    except json.JSONDecodeError:
        return f"HTTP {status}: {text.strip()[:200]}"
    inner = reply.get("error", reply) if isinstance(reply, dict) else reply
    message = inner.get("message", inner) if isinstance(inner, dict) else inner
    return f"HTTP {status}: {message}"


# ------------------------------------------------------------------------------------------------
# One streamed request
# ------------------------------------------------------------------------------------------------

def streaming_payload(payload: dict, include_usage: bool = True) -> dict:
    """The payload with streaming switched on (and usage requested in the last chunk)."""
    body = dict(payload)
    body["stream"] = True
    if include_usage:
        body["stream_options"] = {**body.get("stream_options", {}), "include_usage": True}
    return body


def stream_request(client: httpx.Client, url: str, payload: dict, include_usage: bool = True) -> StreamReply:
    """Send one streaming request and note when each text chunk arrived.

    Raises RequestFailed for an HTTP error status, an error event or a stream that ends without
    `data: [DONE]`, and httpx's errors for connection problems and timeouts: the load generators
    record both as a failed request.
    """
    reply = StreamReply()
    try:
        with client.stream("POST", url, json=streaming_payload(payload, include_usage)) as response:
            if response.status_code != 200:
                raise RequestFailed(error_message(response.status_code, response.read()))
            for line in response.iter_lines():
                event = parse_sse_line(line)
                if event is None:
                    continue
                if event == "[DONE]":
                    return reply
                if "error" in event and not event.get("choices"):
                    inner = event["error"]
                    raise RequestFailed(
                        f"stream error: {inner.get('message', inner) if isinstance(inner, dict) else inner}")
                text = event_text(event)
                if text:
                    reply.token_times.append(time.perf_counter())
                    reply.text += text
                for choice in event.get("choices") or []:
                    if choice.get("finish_reason"):
                        reply.finish_reason = choice["finish_reason"]
                usage = event.get("usage")
                if usage:
                    reply.usage_output_tokens = usage.get("completion_tokens")
                    reply.usage_prompt_tokens = usage.get("prompt_tokens")
    except ValueError as error:  # a malformed SSE line
        raise RequestFailed(f"ValueError: {error}") from error
    raise RequestFailed("stream ended without data: [DONE]")


class OpenAIStreams:
    """`call(i)` for `closed_loop`/`open_loop`: streams `payloads[i % len(payloads)]` to the server.

    One `httpx.Client` (thread-safe, with a connection pool) serves all threads. Close it when
    done, or use the object as a context manager.
    """

    def __init__(self, base_url: str, payloads: Sequence[dict], *, endpoint: str = "chat",
                 timeout: float = 300.0, include_usage: bool = True, max_connections: int = 256):
        if not payloads:
            raise ValueError("payloads must not be empty")
        self.url = base_url.rstrip("/") + ENDPOINTS.get(endpoint, endpoint)
        self.payloads = list(payloads)
        self.include_usage = include_usage
        self.client = httpx.Client(timeout=timeout, limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections))

    def __call__(self, index: int) -> StreamReply:
        return stream_request(self.client, self.url, self.payloads[index % len(self.payloads)],
                              self.include_usage)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> OpenAIStreams:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def stream_load(base_url: str, payloads: Sequence[dict], *, concurrency: int | None = None,
                rate: float | None = None, burstiness: float = 1.0, seed: int | None = 0,
                endpoint: str = "chat", timeout: float = 300.0, include_usage: bool = True,
                drain_timeout: float | None = None, progress: bool = False,
                description: str | None = None) -> LoadRun:
    """Send every payload once as a streaming request and record it.

    Give `concurrency` for a closed loop (at most that many at a time, the next one as soon as one
    finishes) or `rate` for an open loop (Poisson arrivals at `rate` requests/s, or gamma gaps with
    `burstiness`, reproducible with `seed`; see `llmserve.measure.load.arrival_offsets`).
    """
    if (concurrency is None) == (rate is None):
        raise ValueError("give exactly one of concurrency (closed loop) or rate (open loop)")
    with OpenAIStreams(base_url, payloads, endpoint=endpoint, timeout=timeout,
                       include_usage=include_usage) as call:
        if concurrency is not None:
            return closed_loop(call, concurrency=concurrency, num_requests=len(payloads), progress=progress,
                               description=description or f"load (concurrency {concurrency})")
        return open_loop(call, rate=rate, num_requests=len(payloads), burstiness=burstiness, seed=seed,
                         drain_timeout=drain_timeout, progress=progress,
                         description=description or f"load ({rate:g} requests/s)")
