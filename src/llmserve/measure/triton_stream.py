"""Streaming requests to a decoupled Triton model, as calls for the load generators of `llmserve.measure.load`.

Two ways Triton streams the responses of a decoupled model (Triton Lab 2.3 · 04's `llm`):

- **`generate_stream`** (HTTP, server-sent events): `POST /v2/models/<model>/generate_stream` with a JSON body
  whose keys are the model's input names (`{"text_input": "...", "max_tokens": 32}`); each response of the
  model becomes one `data: {...}` event holding its outputs by name; the stream ends when the connection closes
  (no `[DONE]`, unlike OpenAI's). An error is an event `data: {"error": "..."}` (HTTP 400 when it is the
  first thing the model answered with INVALID_ARG).
- **gRPC streaming** (`tritonclient.grpc`: `start_stream(callback)`, `async_stream_infer(...)`): the responses
  arrive on the callback; with `enable_empty_final_response=True` the last one is an empty response whose
  `triton_final_response` parameter is true, which tells the client the request is complete.

Both return a `StreamReply` (the arrival time of every text-carrying response, the text, and the tokens counted
from the model's `token_count` output), so TTFT, inter-token latency and tokens/s are computed exactly as for
vLLM's OpenAI server (`llmserve.measure.openai_stream`).

    with TritonGenerateStreams(server.http_url, "llm", payloads) as call:
        run = closed_loop(call, concurrency=4, num_requests=len(payloads))
"""
from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Sequence

import httpx
import numpy as np

from llmserve.measure.load import RequestFailed, StreamReply
from llmserve.measure.openai_stream import error_message, parse_sse_line


def add_event(reply: StreamReply, event: dict, arrived: float, *, text_key: str = "text_output",
              count_key: str = "token_count") -> None:
    """Add one `generate_stream` event (or one gRPC response, as a dict) to `reply`.

    Raises RequestFailed for an error event. An event without text (the closing response) adds nothing.
    """
    if "error" in event:
        raise RequestFailed(f"stream error: {event['error']}")
    text = event.get(text_key)
    if isinstance(text, list):  # a tensor with more than one element arrives as a JSON list
        text = "".join(text)
    if text:
        reply.token_times.append(arrived)
        reply.text += text
    count = event.get(count_key)
    if count is not None:
        reply.usage_output_tokens = (reply.usage_output_tokens or 0) + int(count[0] if isinstance(count, list) else count)


def stream_error_message(status: int, body: bytes | str) -> str:
    """`HTTP <status>: <message>` for a refused generate_stream request, whose body is an SSE error event
    (`data: {"error": "..."}`) or, for errors Triton itself raises before the model, plain JSON."""
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    first = text.strip().splitlines()[0] if text.strip() else ""
    try:
        event = parse_sse_line(first)
    except ValueError:
        event = None
    if isinstance(event, dict) and "error" in event:
        return f"HTTP {status}: {event['error']}"
    return error_message(status, text)


def generate_stream_request(client: httpx.Client, url: str, payload: dict) -> StreamReply:
    """POST one request to Triton's generate_stream endpoint (`url`) and note when each piece of text arrived."""
    reply = StreamReply()
    try:
        with client.stream("POST", url, json=payload) as response:
            if response.status_code != 200:
                raise RequestFailed(stream_error_message(response.status_code, response.read()))
            for line in response.iter_lines():
                event = parse_sse_line(line)
                if isinstance(event, dict):
                    add_event(reply, event, time.perf_counter())
    except ValueError as error:  # a malformed SSE line
        raise RequestFailed(f"ValueError: {error}") from error
    return reply  # without text when the model's first token ended the answer (its TTFT is then None)


class TritonGenerateStreams:
    """`call(i)` for `closed_loop`/`open_loop`: streams `payloads[i % len(payloads)]` to
    `POST /v2/models/<model>/generate_stream`. One thread-safe `httpx.Client` serves all threads."""

    def __init__(self, http_url: str, model: str, payloads: Sequence[dict], *, timeout: float = 300.0,
                 max_connections: int = 256):
        if not payloads:
            raise ValueError("payloads must not be empty")
        base = http_url if http_url.startswith("http") else f"http://{http_url}"
        self.url = f"{base.rstrip('/')}/v2/models/{model}/generate_stream"
        self.payloads = list(payloads)
        self.client = httpx.Client(timeout=timeout, limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections))

    def __call__(self, index: int) -> StreamReply:
        return generate_stream_request(self.client, self.url, self.payloads[index % len(self.payloads)])

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> TritonGenerateStreams:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TritonGrpcStreams:
    """`call(i)` for the load generators: sends `payloads[i % len(payloads)]` (a dict of input name -> value)
    over a gRPC stream and waits for the response flagged final.

    A tritonclient.grpc client holds one stream at a time, so each thread of the load generator gets its own
    client (created on first use, closed by `close()`), and each request opens and closes its own stream.
    """

    DATATYPES = {np.dtype(np.int32): "INT32", np.dtype(np.int64): "INT64", np.dtype(np.float32): "FP32",
                 np.dtype(bool): "BOOL", np.dtype(object): "BYTES"}

    def __init__(self, grpc_url: str, model: str, payloads: Sequence[dict], *, timeout: float = 300.0):
        if not payloads:
            raise ValueError("payloads must not be empty")
        self.grpc_url, self.model, self.timeout = grpc_url, model, timeout
        self.payloads = list(payloads)
        self._local = threading.local()
        self._clients: list = []
        self._lock = threading.Lock()

    def _client(self):
        client = getattr(self._local, "client", None)
        if client is None:
            import tritonclient.grpc as grpcclient
            client = self._local.client = grpcclient.InferenceServerClient(self.grpc_url)
            with self._lock:
                self._clients.append(client)
        return client

    @classmethod
    def inputs(cls, payload: dict) -> list:
        import tritonclient.grpc as grpcclient
        tensors = []
        for name, value in payload.items():
            array = np.array([value.encode() if isinstance(value, str) else value])
            if array.dtype.kind in "SU":
                array = array.astype(object)
            elif array.dtype == np.int64:
                array = array.astype(np.int32)
            tensor = grpcclient.InferInput(name, list(array.shape), cls.DATATYPES[array.dtype])
            tensor.set_data_from_numpy(array)
            tensors.append(tensor)
        return tensors

    def __call__(self, index: int) -> StreamReply:
        client = self._client()
        arrivals: queue.Queue = queue.Queue()
        reply = StreamReply()
        client.start_stream(callback=lambda result, error: arrivals.put((time.perf_counter(), result, error)))
        try:
            client.async_stream_infer(self.model, self.inputs(self.payloads[index % len(self.payloads)]),
                                      request_id=str(index), enable_empty_final_response=True)
            while True:
                arrived, result, error = arrivals.get(timeout=self.timeout)
                if error is not None:
                    raise RequestFailed(f"gRPC: {error.message() if hasattr(error, 'message') else error}")
                response = result.get_response()
                event = {}
                for output in response.outputs:
                    values = result.as_numpy(output.name).reshape(-1)
                    event[output.name] = [v.decode() if isinstance(v, bytes) else v.item() for v in values]
                add_event(reply, event, arrived)
                if response.parameters["triton_final_response"].bool_param:
                    return reply
        finally:
            client.stop_stream()

    def close(self) -> None:
        with self._lock:
            for client in self._clients:
                client.close()
            self._clients.clear()

    def __enter__(self) -> TritonGrpcStreams:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def generate_stream_events(http_url: str, model: str, payload: dict, timeout: float = 120.0) -> tuple[int, list]:
    """One raw `generate_stream` request: (HTTP status, the list of its `data:` events as parsed JSON), for
    showing the wire format and for tests."""
    base = http_url if http_url.startswith("http") else f"http://{http_url}"
    with httpx.stream("POST", f"{base.rstrip('/')}/v2/models/{model}/generate_stream", json=payload,
                      timeout=timeout) as response:
        events = [json.loads(line[len("data:"):]) for line in response.iter_lines() if line.startswith("data:")]
        return response.status_code, events
