"""A streaming load client for OpenAI-compatible servers (vLLM, or anything that speaks the API).

Every request is sent with `"stream": true` (and `stream_options.include_usage`), and the
client records, per request, when each streamed text chunk arrived. From that:

- TTFT: time from sending the request to the first chunk that carries text;
- ITL (inter-token latency): the gaps between consecutive text chunks (vLLM sends one chunk
  per generated token, so a gap is one decode step as the client sees it);
- E2E: time from sending to the end of the stream (`data: [DONE]`);
- output tokens: from the `usage` chunk when the server sends one, else the number of text chunks.

    payloads = [{"model": name, "messages": [...], "max_tokens": 32} for _ in range(16)]
    run = run_load_blocking(server.base_url, payloads, concurrency=4)
    print(run.summary())

A request that fails (HTTP error, broken stream, timeout) is recorded with its error and
counted, never raised: a load test must report failures, not stop at the first one.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import httpx

from llmserve.teach.formulas import percentile

ENDPOINTS = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}
DEFAULT_PERCENTILES = (50, 90, 99)


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
# Records and summaries
# ------------------------------------------------------------------------------------------------

@dataclass
class StreamRecord:
    """One streamed request as the client saw it. Times are seconds; `start` is from the run's start."""

    index: int
    start: float = 0.0
    chunk_times: list[float] = field(default_factory=list)  # arrival of each text chunk, from request start
    e2e: float | None = None
    text: str = ""
    usage_output_tokens: int | None = None
    usage_prompt_tokens: int | None = None
    finish_reason: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.e2e is not None

    @property
    def ttft(self) -> float | None:
        return self.chunk_times[0] if self.chunk_times else None

    @property
    def itl(self) -> list[float]:
        """Gaps between consecutive text chunks."""
        times = self.chunk_times
        return [b - a for a, b in zip(times, times[1:], strict=False)]

    @property
    def output_tokens(self) -> int:
        """Tokens generated: the server's usage count when it sent one, else the number of text chunks."""
        return self.usage_output_tokens if self.usage_output_tokens is not None else len(self.chunk_times)

    @property
    def tpot(self) -> float | None:
        """Time per output token after the first: (E2E - TTFT) / (output tokens - 1)."""
        if not self.ok or self.ttft is None or self.output_tokens < 2:
            return None
        return (self.e2e - self.ttft) / (self.output_tokens - 1)


def _stats(values: Sequence[float], ps: Iterable[float]) -> dict[str, float]:
    if not values:
        return {}
    stats = {f"p{p:g}": percentile(values, p) for p in ps}
    stats["mean"] = sum(values) / len(values)
    stats["max"] = max(values)
    return stats


@dataclass
class LoadRun:
    """All records of one load run, and its wall-clock time."""

    records: list[StreamRecord]
    wall_seconds: float
    concurrency: int

    @property
    def ok_records(self) -> list[StreamRecord]:
        return [r for r in self.records if r.ok]

    @property
    def errors(self) -> list[str]:
        return [r.error for r in self.records if not r.ok]

    @property
    def output_tokens(self) -> int:
        return sum(r.output_tokens for r in self.ok_records)

    def ttfts(self) -> list[float]:
        return [r.ttft for r in self.ok_records if r.ttft is not None]

    def itls(self) -> list[float]:
        return [gap for r in self.ok_records for gap in r.itl]

    def e2es(self) -> list[float]:
        return [r.e2e for r in self.ok_records]

    def tpots(self) -> list[float]:
        return [r.tpot for r in self.ok_records if r.tpot is not None]

    def summary(self, ps: Iterable[float] = DEFAULT_PERCENTILES) -> dict:
        ps = tuple(ps)
        wall = self.wall_seconds if self.wall_seconds > 0 else float("nan")
        return {"requests": len(self.records), "ok": len(self.ok_records), "errors": len(self.errors),
                "concurrency": self.concurrency, "wall_s": self.wall_seconds,
                "requests_per_s": len(self.ok_records) / wall, "output_tokens": self.output_tokens,
                "output_tokens_per_s": self.output_tokens / wall,
                "ttft_s": _stats(self.ttfts(), ps), "itl_s": _stats(self.itls(), ps),
                "tpot_s": _stats(self.tpots(), ps), "e2e_s": _stats(self.e2es(), ps)}

    def table(self, ps: Iterable[float] = DEFAULT_PERCENTILES) -> str:
        """The latency percentiles as a small text table (milliseconds)."""
        ps = tuple(ps)
        summary = self.summary(ps)
        head = f"{'metric':<8}" + "".join(f"{f'p{p:g} ms':>11}" for p in ps) + f"{'mean ms':>11}{'max ms':>11}"
        lines = [head]
        for key, label in (("ttft_s", "TTFT"), ("itl_s", "ITL"), ("tpot_s", "TPOT"), ("e2e_s", "E2E")):
            stats = summary[key]
            if stats:
                lines.append(f"{label:<8}" + "".join(f"{1000 * stats[f'p{p:g}']:>11.1f}" for p in ps)
                             + f"{1000 * stats['mean']:>11.1f}{1000 * stats['max']:>11.1f}")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# Sending requests
# ------------------------------------------------------------------------------------------------

def streaming_payload(payload: dict, include_usage: bool = True) -> dict:
    """The payload with streaming switched on (and usage requested in the last chunk)."""
    body = dict(payload)
    body["stream"] = True
    if include_usage:
        body["stream_options"] = {**body.get("stream_options", {}), "include_usage": True}
    return body


async def stream_request(client: httpx.AsyncClient, url: str, payload: dict, index: int = 0,
                         run_start: float | None = None, include_usage: bool = True) -> StreamRecord:
    """Send one streaming request and record its timings; never raises for request failures."""
    began = time.perf_counter()
    record = StreamRecord(index=index, start=began - (run_start if run_start is not None else began))
    done = False
    try:
        async with client.stream("POST", url, json=streaming_payload(payload, include_usage)) as response:
            if response.status_code != 200:
                record.error = error_message(response.status_code, await response.aread())
                return record
            async for line in response.aiter_lines():
                event = parse_sse_line(line)
                if event is None:
                    continue
                if event == "[DONE]":
                    done = True
                    break
                if "error" in event and not event.get("choices"):
                    inner = event["error"]
                    record.error = f"stream error: {inner.get('message', inner) if isinstance(inner, dict) else inner}"
                    return record
                text = event_text(event)
                if text:
                    record.chunk_times.append(time.perf_counter() - began)
                    record.text += text
                for choice in event.get("choices") or []:
                    if choice.get("finish_reason"):
                        record.finish_reason = choice["finish_reason"]
                usage = event.get("usage")
                if usage:
                    record.usage_output_tokens = usage.get("completion_tokens")
                    record.usage_prompt_tokens = usage.get("prompt_tokens")
    except (httpx.HTTPError, ValueError) as error:
        record.error = f"{type(error).__name__}: {error}"
        return record
    if not done:
        record.error = "stream ended without data: [DONE]"
        return record
    record.e2e = time.perf_counter() - began
    return record


async def run_load(base_url: str, payloads: Sequence[dict], *, concurrency: int, endpoint: str = "chat",
                   timeout: float = 300.0, include_usage: bool = True, progress: bool = False) -> LoadRun:
    """Send every payload as a streaming request, at most `concurrency` at a time (closed loop)."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    path = ENDPOINTS.get(endpoint, endpoint)
    url = base_url.rstrip("/") + path
    semaphore = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(payloads), desc=f"load (concurrency {concurrency})")
    run_start = time.perf_counter()

    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        async def one(index: int, payload: dict) -> StreamRecord:
            async with semaphore:
                record = await stream_request(client, url, payload, index, run_start, include_usage)
            if bar is not None:
                bar.update(1)
            return record

        records = await asyncio.gather(*(one(i, p) for i, p in enumerate(payloads)))
    wall = time.perf_counter() - run_start
    if bar is not None:
        bar.close()
    return LoadRun(records=list(records), wall_seconds=wall, concurrency=concurrency)


def run_load_blocking(base_url: str, payloads: Sequence[dict], **kwargs) -> LoadRun:
    """`run_load` from synchronous code, also inside Jupyter (whose event loop is already running)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run_load(base_url, payloads, **kwargs))
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run_load(base_url, payloads, **kwargs)).result()
