"""llmserve.measure.triton_stream's generate_stream client against a real local HTTP server that plays Triton's
`/v2/models/<m>/generate_stream` with scripted events (FastAPI on uvicorn, in a thread), so parsing, token counting
and error reporting are tested without Triton. Only lower bounds are asserted on times. The gRPC path needs a real
Triton and is tested in tests/labs/triton/test_lab23_advanced.py."""
from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from llmserve.measure.load import RequestFailed, StreamReply, closed_loop
from llmserve.measure.triton_stream import (
    TritonGenerateStreams,
    add_event,
    generate_stream_events,
    generate_stream_request,
    stream_error_message,
)
from llmserve.servers import free_port

PAUSE = 0.03
PIECES = [" Paris", ".", " It"]


def make_app() -> FastAPI:
    app = FastAPI()

    @app.post("/v2/models/{model}/generate_stream")
    async def generate_stream(model: str, request: Request):
        body = await request.json()
        if not body.get("text_input", "").strip():
            async def refused():
                yield 'data: {"error":"text_input is empty: send the text to process"}\n\n'
            return StreamingResponse(refused(), status_code=400, media_type="text/event-stream")
        if model == "missing":
            return JSONResponse({"error": "Request for unknown model: 'missing' is not found"}, status_code=400)

        async def events():
            for piece in PIECES[:body.get("max_tokens", 3)]:
                await asyncio.sleep(PAUSE)
                yield f"data: {json.dumps({'model_name': model, 'text_output': piece, 'token_count': 1})}\n\n"
            if "broken" in body["text_input"]:
                yield 'data: {"error":"engine died"}\n\n'
        return StreamingResponse(events(), media_type="text/event-stream")

    return app


@pytest.fixture(scope="module")
def base_url():
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(make_app(), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_add_event_counts_tokens_and_ignores_the_empty_closing_response():
    reply = StreamReply()
    add_event(reply, {"text_output": "Hi", "token_count": 2}, 1.0)
    add_event(reply, {"text_output": ["!"], "token_count": [1]}, 2.0)  # a gRPC response, as lists
    add_event(reply, {}, 3.0)
    assert (reply.text, reply.token_times, reply.output_tokens) == ("Hi!", [1.0, 2.0], 3)
    with pytest.raises(RequestFailed, match="stream error: boom"):
        add_event(reply, {"error": "boom"}, 4.0)


def test_stream_error_message_reads_sse_and_plain_json_errors():
    assert stream_error_message(400, b'data: {"error":"text_input is empty"}\n\n') == "HTTP 400: text_input is empty"
    assert stream_error_message(400, '{"error":"unknown model"}') == "HTTP 400: unknown model"
    assert stream_error_message(502, "Bad gateway") == "HTTP 502: Bad gateway"


def test_one_stream_notes_every_piece_in_order(base_url):
    with httpx.Client(timeout=10) as client:
        began = time.perf_counter()
        reply = generate_stream_request(client, f"http://{base_url}/v2/models/llm/generate_stream",
                                        {"text_input": "capital of France", "max_tokens": 3})
    assert reply.text == "".join(PIECES) and reply.output_tokens == 3
    assert reply.token_times == sorted(reply.token_times)
    assert reply.token_times[0] - began >= PAUSE and reply.token_times[-1] - reply.token_times[0] >= 2 * PAUSE


def test_refusals_and_errors_become_request_failed(base_url):
    with httpx.Client(timeout=10) as client:
        url = f"http://{base_url}/v2/models/llm/generate_stream"
        with pytest.raises(RequestFailed, match="HTTP 400: text_input is empty"):
            generate_stream_request(client, url, {"text_input": " "})
        with pytest.raises(RequestFailed, match="stream error: engine died"):
            generate_stream_request(client, url, {"text_input": "broken"})
        empty = generate_stream_request(client, url, {"text_input": "x", "max_tokens": 0})  # an answer ended at once
        assert (empty.text, empty.token_times, empty.output_tokens) == ("", [], 0)
        with pytest.raises(RequestFailed, match="unknown model"):
            generate_stream_request(client, f"http://{base_url}/v2/models/missing/generate_stream", {"text_input": "x"})


def test_the_load_generator_records_ttft_and_tokens(base_url):
    payloads = [{"text_input": f"prompt {i}", "max_tokens": 3} for i in range(6)] + [{"text_input": " "}]
    with TritonGenerateStreams(base_url, "llm", payloads) as call:
        run = closed_loop(call, concurrency=3, num_requests=len(payloads))
    assert len(run.ok_records) == 6 and run.error_messages() == {"HTTP 400: text_input is empty: send the text to "
                                                                 "process": 1}
    assert run.output_tokens == 18 and min(run.ttfts()) >= PAUSE
    with pytest.raises(ValueError):
        TritonGenerateStreams(base_url, "llm", [])


def test_generate_stream_events_returns_the_raw_events(base_url):
    status, events = generate_stream_events(base_url, "llm", {"text_input": "x", "max_tokens": 2})
    assert status == 200 and [e["text_output"] for e in events] == PIECES[:2]
