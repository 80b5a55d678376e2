"""llmserve.measure.openai_stream against a real local HTTP server that streams scripted SSE replies.

The server (FastAPI on uvicorn, in a thread) plays an OpenAI-compatible endpoint: it sends a
fixed sequence of chunks with fixed pauses, so the client's parsing and its latency
bookkeeping are tested without vLLM. Only lower bounds are asserted on times (a pause of
d seconds cannot be observed as shorter than d), never upper bounds.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from llmserve.measure.openai_stream import (
    OpenAIStreams,
    error_message,
    event_text,
    parse_sse_line,
    stream_load,
    streaming_payload,
)
from llmserve.servers import free_port

PAUSE = 0.03  # seconds the scripted server waits before each chunk
WORDS = ["Hello", ",", " world", "!"]


def chat_chunk(content: str | None = None, finish: str | None = None) -> dict:
    delta = {} if content is None else {"content": content}
    return {"id": "x", "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def make_app(state: dict) -> FastAPI:
    app = FastAPI()

    async def script(body: dict, kind: str):
        state["in_flight"] += 1
        state["max_in_flight"] = max(state["max_in_flight"], state["in_flight"])
        try:
            prompt = json.dumps(body.get("messages") or body.get("prompt"))
            if "gate" in prompt:  # hold the answer until `gate` requests are in flight at once
                deadline = time.monotonic() + 10
                while state["in_flight"] < state["gate"] and time.monotonic() < deadline:
                    await asyncio.sleep(0.005)
            yield ": keep-alive comment\n\n"
            if kind == "chat":
                yield f"data: {json.dumps(chat_chunk(''))}\n\n"  # role-only first chunk: no text, not a token
            for word in WORDS:
                await asyncio.sleep(PAUSE)
                event = chat_chunk(word) if kind == "chat" else {"choices": [{"index": 0, "text": word,
                                                                             "finish_reason": None}]}
                yield f"data: {json.dumps(event)}\n\n"
            if "broken" in prompt:
                return  # the stream stops without [DONE]
            final = chat_chunk(finish="length") if kind == "chat" else {"choices": [{"index": 0, "text": "",
                                                                                      "finish_reason": "length"}]}
            yield f"data: {json.dumps(final)}\n\n"
            if (body.get("stream_options") or {}).get("include_usage") and "no-usage" not in prompt:
                usage = {"prompt_tokens": 7, "completion_tokens": len(WORDS), "total_tokens": 7 + len(WORDS)}
                yield f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n"
            yield "data: [DONE]\n\n"
        finally:
            state["in_flight"] -= 1

    async def handle(request: Request, kind: str):
        body = await request.json()
        state["bodies"].append(body)
        if "max_tokens" in body and body["max_tokens"] < 0:
            return JSONResponse({"error": {"message": "max_tokens must be at least 1", "type": "BadRequestError",
                                           "code": 400}}, status_code=400)
        return StreamingResponse(script(body, kind), media_type="text/event-stream")

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        return await handle(request, "chat")

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await handle(request, "completions")

    return app


@pytest.fixture(scope="module")
def server():
    state = {"bodies": [], "in_flight": 0, "max_in_flight": 0, "gate": 0}
    port = free_port()
    config = uvicorn.Config(make_app(state), host="127.0.0.1", port=port, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not instance.started:
        assert time.monotonic() < deadline, "scripted server did not start"
        time.sleep(0.05)
    yield {"url": f"http://127.0.0.1:{port}", "state": state}
    instance.should_exit = True
    thread.join(timeout=10)


def chat_payload(content: str = "hi", **extra) -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": content}], "max_tokens": 4, **extra}


# -- parsing ---------------------------------------------------------------------------------------

def test_parse_sse_line_kinds():
    assert parse_sse_line("") is None
    assert parse_sse_line(": ping") is None
    assert parse_sse_line("event: message") is None
    assert parse_sse_line("data: [DONE]") == "[DONE]"
    assert parse_sse_line('data: {"a": 1}\r\n') == {"a": 1}
    assert parse_sse_line('data:{"a": 2}') == {"a": 2}
    with pytest.raises(ValueError, match="not JSON"):
        parse_sse_line("data: {broken")
    with pytest.raises(ValueError, match="not a JSON object"):
        parse_sse_line("data: [1, 2]")


def test_event_text_chat_and_completions():
    assert event_text(chat_chunk("abc")) == "abc"
    assert event_text(chat_chunk()) == ""
    assert event_text({"choices": [{"text": "xyz"}]}) == "xyz"
    assert event_text({"choices": [], "usage": {"completion_tokens": 3}}) == ""


def test_error_message_uses_the_servers_message():
    body = json.dumps({"error": {"message": "prompt too long", "code": 400}})
    assert error_message(400, body) == "HTTP 400: prompt too long"
    assert error_message(500, b"Internal Server Error") == "HTTP 500: Internal Server Error"


def test_streaming_payload_does_not_change_the_input():
    original = {"model": "m", "prompt": "x"}
    body = streaming_payload(original)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert "stream" not in original
    assert "stream_options" not in streaming_payload(original, include_usage=False)


# -- against the scripted server --------------------------------------------------------------------

def test_chat_stream_is_parsed_and_timed(server):
    run = stream_load(server["url"], [chat_payload()], concurrency=1)
    record = run.records[0]
    assert record.ok, record.error
    reply = record.stream
    assert reply.text == "".join(WORDS)
    assert len(reply.token_times) == len(WORDS), "the role-only chunk carries no text and is no token"
    assert reply.usage_output_tokens == len(WORDS) and reply.usage_prompt_tokens == 7
    assert reply.finish_reason == "length"
    assert record.ttft >= PAUSE
    assert len(record.itl) == len(WORDS) - 1 and all(gap >= PAUSE * 0.9 for gap in record.itl)
    assert record.end >= reply.token_times[-1] and record.latency >= record.ttft
    sent = server["state"]["bodies"][-1]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_completions_endpoint(server):
    payload = {"model": "m", "prompt": "The capital of France is", "max_tokens": 4}
    run = stream_load(server["url"], [payload], concurrency=1, endpoint="completions")
    assert run.records[0].ok and run.records[0].stream.text == "".join(WORDS)


def test_without_usage_the_chunks_are_counted(server):
    run = stream_load(server["url"], [chat_payload("no-usage please")], concurrency=1)
    record = run.records[0]
    assert record.ok and record.stream.usage_output_tokens is None and record.output_tokens == len(WORDS)


def test_errors_are_recorded_not_raised(server):
    payloads = [chat_payload(), chat_payload(max_tokens=-1), chat_payload("broken stream")]
    for run in (stream_load(server["url"], payloads, concurrency=3),
                stream_load(server["url"], payloads, rate=100.0)):
        assert [r.ok for r in run.records] == [True, False, False]
        assert run.records[1].error == "HTTP 400: max_tokens must be at least 1"
        assert "without data: [DONE]" in run.records[2].error
        assert run.summary()["errors"] == 2 and run.summary()["ok"] == 1


def test_connection_refused_is_an_error(server):
    run = stream_load(f"http://127.0.0.1:{free_port()}", [chat_payload()], concurrency=1, timeout=5)
    assert not run.records[0].ok and "ConnectError" in run.records[0].error


def test_concurrency_is_limited_and_every_request_is_answered(server):
    state = server["state"]
    state["max_in_flight"] = 0
    payloads = [chat_payload(f"request {i}") for i in range(8)]
    run = stream_load(server["url"], payloads, concurrency=2)
    assert [r.index for r in run.records] == list(range(8))
    assert all(r.ok for r in run.records)
    assert 1 <= state["max_in_flight"] <= 2
    # 8 requests, 2 at a time, each at least len(WORDS) pauses long: at least 4 rounds.
    assert run.wall_seconds >= 4 * len(WORDS) * PAUSE
    starts = sorted(r.start for r in run.records)
    assert starts[2] >= min(r.end for r in run.records), "the third request waits for a free slot"


def test_open_loop_streams_overlap_without_waiting(server):
    """Each request is held by the server until 6 are in flight: only an open loop gets answers."""
    state = server["state"]
    state["max_in_flight"], state["gate"] = 0, 6
    try:
        run = stream_load(server["url"], [chat_payload(f"gate {i}") for i in range(6)], rate=1000.0, seed=0)
    finally:
        state["gate"] = 0
    assert all(r.ok for r in run.records), run.error_messages()
    assert state["max_in_flight"] == 6
    assert max(r.start for r in run.records) < min(r.stream.token_times[0] for r in run.records)
    assert run.loop == "open" and run.summary()["output_tokens"] == 6 * len(WORDS)
    assert all(r.ttft == pytest.approx(r.stream.token_times[0] - r.scheduled) for r in run.records)


def test_a_stream_call_works_in_any_load_generator(server):
    from llmserve.measure.load import closed_loop
    with OpenAIStreams(server["url"], [chat_payload("a"), chat_payload("b")]) as call:
        run = closed_loop(call, concurrency=2, num_requests=4, progress=False)
    assert [r.ok for r in run.records] == [True] * 4 and len(run.ttfts()) == 4
    assert [b["messages"][0]["content"] for b in server["state"]["bodies"][-4:]].count("a") == 2


def test_stream_load_needs_exactly_one_loop(server):
    with pytest.raises(ValueError, match="exactly one"):
        stream_load(server["url"], [chat_payload()])
    with pytest.raises(ValueError, match="exactly one"):
        stream_load(server["url"], [chat_payload()], concurrency=1, rate=1.0)
    with pytest.raises(ValueError, match="concurrency"):
        stream_load(server["url"], [chat_payload()], concurrency=0)
