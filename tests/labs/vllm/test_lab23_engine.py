"""vLLM Lab 2.3 · 03: the gateway with vLLM's AsyncLLM inside (one engine for the module), and vLLM's own
OpenAI app mounted at /vllm on the same engine. Marked `server` (starts a real engine: about a minute)."""
import threading
import time

import httpx
import pytest

from llmserve.measure.prometheus_text import metric_total, parse_prometheus_text
from llmserve.servers import GatewayServer

pytestmark = pytest.mark.server
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def gateway():
    settings = {"backend": "engine", "engine_mount_vllm_api": True, "engine_kv_cache_gib": 1,
                "engine_max_num_seqs": 2, "max_in_flight": 2, "max_tokens_limit": 256}
    with GatewayServer(settings, start_timeout=400) as server:
        yield server


def counters(gateway) -> dict:
    samples = parse_prometheus_text(httpx.get(gateway.url("/metrics"), timeout=10).text)
    return {"running": metric_total(samples, "vllm:num_requests_running"),
            "generated": metric_total(samples, "vllm:generation_tokens_total"),
            "disconnects": metric_total(samples, "gateway_client_disconnects_total")}


def test_the_openai_client_works_unchanged_on_both_apis(gateway):
    from openai import OpenAI
    texts = []
    for base in ("/v1", "/vllm/v1"):
        client = OpenAI(base_url=gateway.url(base), api_key="unused")
        reply = client.chat.completions.create(model="course-model", messages=QUESTION, max_tokens=24, temperature=0)
        chunks = list(client.chat.completions.create(model="course-model", messages=QUESTION, max_tokens=24,
                                                     temperature=0, stream=True, stream_options={"include_usage": True}))
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert streamed == reply.choices[0].message.content and chunks[-1].usage.completion_tokens == \
            reply.usage.completion_tokens
        texts.append((reply.choices[0].message.content, reply.usage.prompt_tokens))
    assert texts[0] == texts[1] and "Paris" in texts[0][0]


def test_a_disconnect_aborts_the_generation_in_the_engine(gateway):
    before = counters(gateway)
    body = {"model": "course-model", "messages": [{"role": "user", "content": "Write a long story."}],
            "max_tokens": 200, "ignore_eos": True, "stream": True}
    with httpx.stream("POST", gateway.url("/v1/chat/completions"), json=body, timeout=60) as response:
        seen = 0
        for line in response.iter_lines():
            seen += line.startswith("data: {")
            if seen == 4:
                assert counters(gateway)["running"] == 1
                break
    deadline = time.monotonic() + 10
    while counters(gateway)["running"] != 0:
        assert time.monotonic() < deadline, "the engine kept running the abandoned request"
        time.sleep(0.1)
    after = counters(gateway)
    assert after["generated"] - before["generated"] < 200
    assert after["disconnects"] - before["disconnects"] == 1


def test_a_burst_beyond_the_limit_gets_503_quickly(gateway):
    body = {"model": "course-model", "messages": QUESTION, "max_tokens": 48, "ignore_eos": True, "stream": True}
    holders = []

    def hold():
        with httpx.stream("POST", gateway.url("/v1/chat/completions"), json=body, timeout=120) as response:
            holders.append(response.status_code)
            for _ in response.iter_lines():
                pass

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while counters(gateway)["running"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    began = time.perf_counter()
    refused = httpx.post(gateway.url("/v1/chat/completions"), json=body, timeout=30)
    refusal_s = time.perf_counter() - began
    for t in threads:
        t.join()
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["code"] == "server_overloaded" and refusal_s < 2.0
    assert holders == [200, 200]


@pytest.mark.parametrize("change, status, code", [
    ({"messages": [{"role": "user", "content": "word " * 1200}]}, 400, "prompt_too_long"),
    ({"temperature": -1}, 422, "validation_error"),
    ({"top_p": 2}, 422, "validation_error"),
    ({"model": "gpt-4o"}, 404, "model_not_found"),
    ({"max_tokens": 300}, 422, "validation_error"),
])
def test_bad_input_gets_openai_style_4xx_over_raw_http(gateway, change, status, code):
    body = {"model": "course-model", "messages": QUESTION, "max_tokens": 8, **change}
    response = httpx.post(gateway.url("/v1/chat/completions"), content=httpx.Request("POST", "/", json=body).content,
                          headers={"Content-Type": "application/json"}, timeout=60)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and error["type"] == "invalid_request_error"
