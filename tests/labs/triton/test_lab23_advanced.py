"""Triton Lab 2.3 · 04: the `vllm_in_triton` and `bls_fanout` repositories.

Statically: `llm` is decoupled and thin over triton_course_models.vllm_stream, `llm_cached` is not decoupled and has
the response cache, the two fan-out models differ only in `mode`. On one real server (both repositories, explicit
model control, a local response cache; started once for the module): `llm` streams over generate_stream and gRPC
with the same greedy text, every client mistake is a 400 over raw HTTP (never a 500), `llm_cached` answers a repeated
request from the cache (counted in /metrics), the fan-out models agree and refuse bad input with 400, and Triton
refuses a response cache on the decoupled model.
"""
import json
import time

import httpx
import numpy as np
import pytest

from llmserve.course.config import REPO_ROOT, config
from llmserve.triton.model_config import lint_model_config, parse_model_config

LAB = REPO_ROOT / "02-Labs" / "Triton_Track" / "Lab-2.3-Backend_Integration"
VLLM_REPO = LAB / "repositories" / "vllm_in_triton"
FANOUT_REPO = LAB / "repositories" / "bls_fanout"
MODELS = ["llm", "llm_cached", "worker", "fanout_serial", "fanout_parallel"]
PROMPT = "The capital of France is"


def _config(folder, model):
    return parse_model_config((folder / model / "config.pbtxt").read_text())


def _model_source(folder, model) -> str:
    return (folder / model / "1" / "model.py").read_text()


def test_llm_is_decoupled_and_llm_cached_has_the_response_cache():
    assert sorted(p.name for p in VLLM_REPO.iterdir() if p.is_dir()) == ["llm", "llm_cached"]
    llm, cached = _config(VLLM_REPO, "llm"), _config(VLLM_REPO, "llm_cached")
    assert llm.model_transaction_policy.decoupled and not llm.response_cache.enable
    assert cached.response_cache.enable and not cached.model_transaction_policy.decoupled
    assert [t.name for t in llm.input] == ["text_input", "max_tokens", "stream", "ignore_eos"]
    assert [t.optional for t in llm.input] == [False, True, True, True]
    assert [t.name for t in llm.output] == [t.name for t in cached.output] == ["text_output", "token_count"]
    assert llm.parameters["enable_prefix_caching"].string_value == "false"
    assert cached.parameters["llm"].string_value == "llm"
    assert cached.parameters["max_model_len"].string_value == llm.parameters["max_model_len"].string_value
    for model, base in (("llm", "VLLMStreamingModel"), ("llm_cached", "CachedCompletionBLS")):
        assert lint_model_config(_config(VLLM_REPO, model), VLLM_REPO / model) == []
        source = _model_source(VLLM_REPO, model)
        assert f"from triton_course_models.vllm_stream import {base}" in source and "def " not in source


def test_fanout_models_differ_only_in_their_mode():
    serial, parallel = _config(FANOUT_REPO, "fanout_serial"), _config(FANOUT_REPO, "fanout_parallel")
    assert serial.parameters["mode"].string_value == "serial" and parallel.parameters["mode"].string_value == "parallel"
    for model_config in (serial, parallel):
        model_config.ClearField("name")
        del model_config.parameters["mode"]
    assert serial == parallel
    worker = _config(FANOUT_REPO, "worker")
    assert worker.instance_group[0].count == 2 and worker.parameters["depth"].string_value
    for model in ("worker", "fanout_serial", "fanout_parallel"):
        assert lint_model_config(_config(FANOUT_REPO, model), FANOUT_REPO / model) == []
        assert "def " not in _model_source(FANOUT_REPO, model)


def test_the_stub_environment_is_told_where_vllm_is():
    from llmserve.servers.triton import triton_runtime_env
    site = triton_runtime_env()["COURSE_VLLM_SITE_PACKAGES"]
    import vllm
    assert vllm.__file__.startswith(site)


@pytest.fixture(scope="module")
def server():
    from llmserve.servers import TritonServer
    caches = config().triton_dir / "pytriton" / "tritonserver" / "caches"
    with TritonServer(VLLM_REPO, model_control="explicit", load_models=MODELS, start_timeout=400,
                      extra_args=[f"--model-repository={FANOUT_REPO}", "--cache-config=local,size=8388608",
                                  f"--cache-directory={caches}"]) as running:
        yield running


def _generate(server, model_endpoint: str, body: dict) -> httpx.Response:
    return httpx.post(f"http://{server.http_url}/v2/models/{model_endpoint}", json=body, timeout=120)


@pytest.mark.server
@pytest.mark.model
def test_llm_streams_the_same_text_over_sse_grpc_and_generate(server):
    from llmserve.measure.triton_stream import TritonGrpcStreams, generate_stream_events
    status, events = generate_stream_events(server.http_url, "llm", {"text_input": PROMPT, "max_tokens": 8})
    assert status == 200 and len(events) >= 2, events  # one event per new piece of text
    sse_text = "".join(e["text_output"] for e in events)
    assert sum(e["token_count"] for e in events) <= 8 and "Paris" in sse_text
    with TritonGrpcStreams(server.grpc_url, "llm", [{"text_input": PROMPT, "max_tokens": 8}]) as call:
        reply = call(0)
    assert reply.text == sse_text and len(reply.token_times) == len(events)
    assert reply.token_times == sorted(reply.token_times)
    whole = _generate(server, "llm/generate", {"text_input": PROMPT, "max_tokens": 8, "stream": False})
    assert whole.status_code == 200 and whole.json()["text_output"] == sse_text
    exact = _generate(server, "llm/generate", {"text_input": PROMPT, "max_tokens": 40, "stream": False,
                                               "ignore_eos": True})
    assert exact.status_code == 200 and exact.json()["token_count"] == 40


@pytest.mark.server
@pytest.mark.model
@pytest.mark.parametrize("endpoint", ["generate", "generate_stream"])
@pytest.mark.parametrize("body, message", [
    ({"text_input": "  ", "max_tokens": 8}, "text_input is empty"),
    ({"text_input": PROMPT, "max_tokens": 0}, "max_tokens=0"),
    ({"text_input": PROMPT, "max_tokens": 100000}, "max_tokens=100000"),
    ({"max_tokens": 8}, "text_input"),
])
def test_llm_client_mistakes_are_400_with_a_message(server, endpoint, body, message):
    reply = _generate(server, f"llm/{endpoint}", body)
    assert reply.status_code == 400, reply.text
    assert message in reply.text


@pytest.mark.server
@pytest.mark.model
def test_llm_cached_refuses_bad_input_with_400_and_infer_refuses_the_decoupled_model(server, raw_http):
    # a decoupled model streams: Triton's /infer endpoint cannot answer for it (generate and gRPC can)
    raw_http.expect(server.http_url, "llm", {"text_input": raw_http.strings(PROMPT)}, 501, "decoupled")
    raw_http.expect(server.http_url, "llm_cached", {"text_input": raw_http.strings(b"\xff\xfe")}, 400,
                    "not valid UTF-8", binary=True)
    raw_http.expect(server.http_url, "llm_cached", {"text_input": raw_http.strings("")}, 400, "text_input is empty")
    raw_http.expect(server.http_url, "llm_cached", {"text_input": raw_http.strings(PROMPT),
                                                    "max_tokens": np.array([-1], np.int32)}, 400, "max_tokens=-1")


def _cache_hits(server) -> float:
    from llmserve.measure.prometheus_text import metric_total, parse_prometheus_text
    return metric_total(parse_prometheus_text(server.metrics_text()), "nv_cache_num_hits_per_model", model="llm_cached")


@pytest.mark.server
@pytest.mark.model
def test_llm_cached_answers_a_repeated_request_from_the_cache(server, raw_http):
    inputs = {"text_input": raw_http.strings("Name a large river."), "max_tokens": np.array([6], np.int32)}
    hits = _cache_hits(server)
    began = time.perf_counter()
    status, first = raw_http.infer(server.http_url, "llm_cached", inputs)
    miss_s = time.perf_counter() - began
    began = time.perf_counter()
    status_again, again = raw_http.infer(server.http_url, "llm_cached", inputs)
    hit_s = time.perf_counter() - began
    assert status == status_again == 200, (first, again)
    assert raw_http.outputs(first) == raw_http.outputs(again)
    assert raw_http.outputs(first)["token_count"][0] >= 1
    assert _cache_hits(server) == hits + 1
    assert hit_s < miss_s  # the miss generated tokens; the hit did not reach the model


@pytest.mark.server
def test_fanout_serial_and_parallel_agree_and_refuse_bad_input(server, raw_http):
    x = np.random.default_rng(3).standard_normal((5, 16)).astype(np.float32)
    answers = {}
    for model in ("fanout_serial", "fanout_parallel"):
        status, body = raw_http.infer(server.http_url, model, {"X": x})
        assert status == 200, body
        answers[model] = raw_http.outputs(body)["SCORES"]
    assert answers["fanout_serial"] == answers["fanout_parallel"] and len(answers["fanout_serial"]) == 5
    status, body = raw_http.infer(server.http_url, "worker", {"X": x[:1]})
    assert status == 200 and raw_http.outputs(body)["SCORE"] == answers["fanout_serial"][:1]
    nan = x.copy()
    nan[2, 3] = np.nan
    for model in ("fanout_serial", "fanout_parallel"):
        raw_http.expect(server.http_url, model, {"X": nan}, 400, "NaN or infinite", binary=True)
        raw_http.expect(server.http_url, model, {"X": np.zeros((65, 16), np.float32)}, 400, "at most 64")
        raw_http.expect(server.http_url, model, {"X": np.zeros((2, 15), np.float32)}, 400, "unexpected shape")


@pytest.mark.server
def test_a_response_cache_on_the_decoupled_model_is_refused(server):
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException
    client = httpclient.InferenceServerClient(server.http_url)
    try:
        llm = client.get_model_config("llm")
        offset = server.log_path.stat().st_size
        with pytest.raises(InferenceServerException, match="failed to load 'llm'"):
            client.load_model("llm", config=json.dumps({**llm, "response_cache": {"enable": True}}))
        log = server.log_path.read_bytes()[offset:].decode(errors="replace")
        assert "Response Cache does not currently support model llm with 'decoupled' transaction policy" in log
        assert client.is_model_ready("llm")  # the refused configuration left the loaded model serving
    finally:
        client.close()
