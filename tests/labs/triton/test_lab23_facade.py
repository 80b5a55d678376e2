"""Triton Lab 2.3 · 03: the unified façade (service/facade/), its Triton model (repositories/unified/) and MLServer.

Without servers: the façade's routes against fake backends (httpx.MockTransport): OpenAI answers built from Triton's
v2 outputs, the request vLLM receives, and every client mistake as a 4xx in its protocol's shape over raw HTTP
(OpenAI's {"error": {...}} on /v1, KServe v2's {"error": "..."} on /v2), never a 500.
With real servers (marker `server`, started once for the module): Triton serving `course_chat` and `affine`, vLLM,
the façade over both, the official `openai` client against the façade and against vLLM, and MLServer serving the
same `affine` model answering the same raw v2 requests.
"""
import json

import httpx
import numpy as np
import pytest
import requests

from llmserve.course.config import REPO_ROOT
from llmserve.servers.facade import FACADE_DIR, MLSERVER_MODELS
from llmserve.triton.model_config import lint_model_config, parse_model_config

LAB = REPO_ROOT / "02-Labs" / "Triton_Track" / "Lab-2.3-Backend_Integration"
UNIFIED = LAB / "repositories" / "unified"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def facade_modules():
    import sys
    sys.path.insert(0, str(FACADE_DIR))
    from facade.app import create_app
    from facade.settings import Settings
    yield create_app, Settings
    sys.path.remove(str(FACADE_DIR))


def test_unified_repository_configs_pass_the_schema():
    chat = parse_model_config((UNIFIED / "course_chat" / "config.pbtxt").read_text())
    assert chat.backend == "python" and chat.max_batch_size == 0
    assert [t.name for t in chat.input] == ["MESSAGES", "MAX_TOKENS"] and chat.input[1].optional
    assert [t.name for t in chat.output] == ["TEXT", "TOKEN_IDS", "PROMPT_TOKENS", "FINISH_REASON"]
    affine = parse_model_config((UNIFIED / "affine" / "config.pbtxt").read_text())
    settings = json.loads((MLSERVER_MODELS / "affine" / "model-settings.json").read_text())
    assert [t.name for t in affine.input] == [i["name"] for i in settings["inputs"]] == ["X"]
    assert list(affine.input[0].dims) == settings["inputs"][0]["shape"] == [-1, 4]  # declared alike on both
    for name in ("course_chat", "affine"):
        config = parse_model_config((UNIFIED / name / "config.pbtxt").read_text())
        assert lint_model_config(config, UNIFIED / name) == []


def fake_backends(seen: list):
    """Triton answering course_chat like the real model, vLLM answering like its OpenAI server."""
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.url.port, request.url.path, json.loads(request.content or b"null")))
        if request.url.path.endswith("/ready") or request.url.path == "/health":
            return httpx.Response(200)
        if request.url.path == "/v2/models/course_chat/infer":
            body = json.loads(request.content)
            limit = body["inputs"][1]["data"][0]
            if limit > 256:
                return httpx.Response(400, json={"error": "MAX_TOKENS must be between 1 and 256"})
            return httpx.Response(200, json={"model_name": "course_chat", "outputs": [
                {"name": "TEXT", "datatype": "BYTES", "shape": [1], "data": ["Paris."]},
                {"name": "TOKEN_IDS", "datatype": "INT64", "shape": [3], "data": [7042, 30, 2]},
                {"name": "PROMPT_TOKENS", "datatype": "INT32", "shape": [1], "data": [37]},
                {"name": "FINISH_REASON", "datatype": "BYTES", "shape": [1], "data": ["stop"]}]})
        if request.url.path == "/v2/models/affine/infer":
            return httpx.Response(200, json={"model_name": "affine", "outputs": []})
        if request.url.path == "/v1/chat/completions":
            return httpx.Response(200, json={
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "course-llm",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."},
                             "finish_reason": "stop", "token_ids": [7042, 30, 2]}],
                "usage": {"prompt_tokens": 37, "completion_tokens": 3, "total_tokens": 40}})
        return httpx.Response(404, json={"error": "not found"})
    return httpx.MockTransport(handle)


@pytest.fixture()
def app_client(facade_modules):
    from fastapi.testclient import TestClient
    create_app, Settings = facade_modules
    seen = []
    settings = Settings(triton_url="127.0.0.1:9001", vllm_url="http://127.0.0.1:9002")
    with TestClient(create_app(settings, transport=fake_backends(seen)), raise_server_exceptions=False) as client:
        client.seen = seen
        yield client


def test_models_lists_one_id_per_backend(app_client):
    assert [m["id"] for m in app_client.get("/v1/models").json()["data"]] == ["triton/course_chat", "vllm/course-llm"]
    assert app_client.get("/ready").json() == {"ready": True, "checks": {"triton": True, "vllm": True}}


def test_triton_answer_becomes_an_openai_chat_completion(app_client):
    reply = app_client.post("/v1/chat/completions", json={"model": "triton/course_chat", "messages": QUESTION,
                                                          "max_tokens": 8, "return_token_ids": True})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["model"] == "triton/course_chat" and body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Paris."}
    assert body["choices"][0]["finish_reason"] == "stop" and body["choices"][0]["token_ids"] == [7042, 30, 2]
    assert body["usage"] == {"prompt_tokens": 37, "completion_tokens": 3, "total_tokens": 40}
    host, port, path, sent = app_client.seen[-1]
    assert (port, path) == (9001, "/v2/models/course_chat/infer")
    assert json.loads(sent["inputs"][0]["data"][0]) == QUESTION and sent["inputs"][1]["data"] == [8]
    assert "backend;dur=" in reply.headers["server-timing"]


def test_vllm_gets_its_own_model_name_and_the_answer_the_facades(app_client):
    reply = app_client.post("/v1/chat/completions", json={"model": "vllm/course-llm", "messages": QUESTION,
                                                          "temperature": 0, "max_completion_tokens": 5})
    assert reply.status_code == 200, reply.text
    assert reply.json()["model"] == "vllm/course-llm" and "token_ids" not in reply.json()["choices"][0]
    _, port, path, sent = app_client.seen[-1]
    assert (port, path) == (9002, "/v1/chat/completions")
    assert sent["model"] == "course-llm" and sent["max_tokens"] == 5 and sent["temperature"] == 0
    assert "return_token_ids" not in sent and "max_completion_tokens" not in sent


OPENAI_MISTAKES = [
    ({"model": "gpt-4", "messages": QUESTION}, 404, "model_not_found"),
    ({"model": "triton/course_chat", "messages": []}, 400, "messages"),
    ({"model": "triton/course_chat", "messages": [{"role": "robot", "content": "hi"}]}, 400, "role"),
    ({"model": "triton/course_chat", "messages": QUESTION, "max_tokens": 0}, 400, "max_tokens"),
    ({"model": "triton/course_chat", "messages": QUESTION, "max_tokens": 1000}, 400, "at most 256"),
    ({"model": "triton/course_chat", "messages": QUESTION, "temperature": 0.7}, 400, "greedily"),
    ({"model": "triton/course_chat", "messages": QUESTION, "stream": True}, 400, "stream"),
    ({"model": "vllm/course-llm", "messages": QUESTION, "n": 2}, 400, "n"),
    ({"model": "vllm/course-llm", "messages": QUESTION, "colour": "red"}, 400, "unknown field"),
    ({"model": 5, "messages": QUESTION}, 400, "model"),
]


@pytest.mark.parametrize(("body", "status", "text"), OPENAI_MISTAKES)
def test_openai_mistakes_are_4xx_in_openai_shape(app_client, body, status, text):
    reply = app_client.post("/v1/chat/completions", json=body)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    assert text in json.dumps(error), error


def test_broken_bodies_and_routes_are_4xx_not_500(app_client):
    for path, data, status in (("/v1/chat/completions", b"{not json", 400), ("/v1/chat/completions", b"[]", 400),
                               ("/v2/models/affine/infer", b"{not json", 400)):
        reply = app_client.post(path, content=data, headers={"content-type": "application/json"})
        assert reply.status_code == status, (path, reply.text)
    assert app_client.get("/v1/chat/completions").status_code == 405
    assert app_client.get("/nowhere").status_code == 404
    assert isinstance(app_client.post("/v2/models/affine/infer", content=b"{").json()["error"], str)


V2_MISTAKES = [
    ({"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3]}]}, "holds 4 elements"),
    ({"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": ["a", "b", "c", "d"]}]}, "not a finite"),
    ({"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FLOAT", "data": [1, 2, 3, 4]}]}, "not a KServe v2"),
    ({"inputs": [{"name": "X", "shape": [-1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}, "negative"),
    ({"inputs": []}, "inputs"),
    ({"inputs": [{"name": "X", "shape": [1], "datatype": "INT32", "data": [1.5]}]}, "not a finite INT32"),
]


@pytest.mark.parametrize(("body", "text"), V2_MISTAKES)
def test_v2_mistakes_are_400_in_v2_shape_before_triton_sees_them(app_client, body, text):
    before = len(app_client.seen)
    reply = app_client.post("/v2/models/affine/infer", json=body)
    assert reply.status_code == 400, reply.text
    assert set(reply.json()) == {"error"} and text in reply.json()["error"], reply.json()
    assert len(app_client.seen) == before  # refused by the façade, not forwarded


def test_a_backend_error_keeps_its_4xx_and_an_unreachable_backend_is_503(facade_modules):
    from fastapi.testclient import TestClient
    create_app, Settings = facade_modules

    def down(request):
        raise httpx.ConnectError("refused")

    app = create_app(Settings(triton_url="127.0.0.1:9001"), transport=httpx.MockTransport(down))
    with TestClient(app, raise_server_exceptions=False) as client:
        reply = client.post("/v1/chat/completions", json={"model": "triton/course_chat", "messages": QUESTION})
        assert reply.status_code == 503 and reply.json()["error"]["code"] == "backend_unavailable"
        assert client.get("/ready").status_code == 503


# -- real servers -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stack():
    from llmserve.servers import FacadeServer, TritonServer, VLLMServer, start_together
    triton, vllm = start_together([TritonServer(UNIFIED), VLLMServer(served_model_name="course-llm",
                                                                     max_model_len=1024)])
    try:
        with FacadeServer(triton_url=triton.http_url, vllm_url=vllm.base_url) as facade:
            yield triton, vllm, facade
    finally:
        triton.stop()
        vllm.stop()


@pytest.mark.server
def test_the_same_openai_code_runs_against_the_facade_and_vllm(stack):
    import openai
    triton, vllm, facade = stack
    answers = {}
    for label, client, model in (("facade/triton", facade.openai_client(), "triton/course_chat"),
                                 ("facade/vllm", facade.openai_client(), "vllm/course-llm"),
                                 ("vllm", vllm.openai_client(), "course-llm")):
        reply = client.chat.completions.create(model=model, messages=QUESTION, max_tokens=12, temperature=0)
        answers[label] = reply.choices[0].message.content
        assert reply.usage.completion_tokens >= 1 and reply.choices[0].finish_reason in ("stop", "length")
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model=model, messages=[], max_tokens=4)
    assert all("Paris" in text for text in answers.values()), answers
    assert answers["facade/vllm"] == answers["vllm"]


@pytest.mark.server
def test_greedy_token_ids_agree_through_the_facade(stack):
    _, _, facade = stack
    ids = {}
    for model in ("triton/course_chat", "vllm/course-llm"):
        reply = requests.post(facade.url("/v1/chat/completions"), timeout=120, json={
            "model": model, "messages": QUESTION, "max_tokens": 12, "temperature": 0, "return_token_ids": True})
        assert reply.status_code == 200, reply.text
        ids[model] = reply.json()["choices"][0]["token_ids"]
        assert reply.json()["usage"]["prompt_tokens"] == 37 or reply.json()["usage"]["prompt_tokens"] > 0
    assert ids["triton/course_chat"] == ids["vllm/course-llm"], ids


@pytest.mark.server
def test_real_mistakes_are_4xx_over_raw_http_from_facade_and_triton(stack):
    triton, _, facade = stack
    for body in ({"model": "triton/course_chat", "messages": QUESTION, "max_tokens": 1000},
                 {"model": "vllm/course-llm", "messages": QUESTION, "max_tokens": 1000},
                 {"model": "triton/course_chat", "messages": [{"role": "user"}]}):
        reply = requests.post(facade.url("/v1/chat/completions"), json=body, timeout=60)
        assert reply.status_code == 400 and reply.json()["error"]["message"], (body, reply.text)
    # Triton itself: a model's client error is a 400 ...
    bad_messages = {"inputs": [{"name": "MESSAGES", "shape": [1], "datatype": "BYTES", "data": ["not json"]}]}
    reply = requests.post(f"http://{triton.http_url}/v2/models/course_chat/infer", json=bad_messages, timeout=60)
    assert reply.status_code == 400 and "not JSON" in reply.json()["error"]
    # ... but a body whose data does not fit its shape is a 500 from Triton 2.51, and a 400 from the façade
    short = {"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3]}]}
    assert requests.post(f"http://{triton.http_url}/v2/models/affine/infer", json=short, timeout=30).status_code == 500
    reply = requests.post(facade.url("/v2/models/affine/infer"), json=short, timeout=30)
    assert reply.status_code == 400 and "holds 4 elements" in reply.json()["error"]
    good = {"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
    reply = requests.post(facade.url("/v2/models/affine/infer"), json=good, timeout=30)
    assert reply.status_code == 200 and reply.json()["outputs"][0]["data"] == [3.0, 5.0, 7.0, 9.0]


@pytest.mark.server
def test_mlserver_answers_the_same_v2_requests_as_triton():
    import tritonclient.grpc as grpcclient

    from llmserve.servers import MLServerServer, TritonServer, start_together
    triton, mlserver = start_together([TritonServer(UNIFIED, model_control="explicit", load_models=["affine"]),
                                       MLServerServer()])
    try:
        good = {"inputs": [{"name": "X", "shape": [2, 4], "datatype": "FP32", "data": list(range(8))}]}
        for server in (triton, mlserver):
            reply = requests.post(f"http://{server.http_url}/v2/models/affine/infer", json=good, timeout=30)
            assert reply.status_code == 200, reply.text
            assert reply.json()["outputs"][0]["data"] == [2.0 * i + 1 for i in range(8)]
            meta = requests.get(f"http://{server.http_url}/v2/models/affine", timeout=10).json()
            assert meta["inputs"] == [{"name": "X", "datatype": "FP32", "shape": [-1, 4]}]
            unknown = requests.get(f"http://{server.http_url}/v2/models/nope", timeout=10)
            assert unknown.status_code == 404 and isinstance(unknown.json()["error"], str)
            client = grpcclient.InferenceServerClient(server.grpc_url)
            tensor = grpcclient.InferInput("X", [1, 4], "FP32")
            tensor.set_data_from_numpy(np.arange(4, dtype=np.float32).reshape(1, 4))
            np.testing.assert_array_equal(client.infer("affine", [tensor]).as_numpy("Y"), [[1, 3, 5, 7]])
            client.close()
        # the declared shape: Triton checks it, MLServer leaves it to the model code
        wrong = {"inputs": [{"name": "X", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}
        assert requests.post(f"http://{triton.http_url}/v2/models/affine/infer", json=wrong, timeout=30).status_code == 400
        assert requests.post(f"http://{mlserver.http_url}/v2/models/affine/infer", json=wrong,
                             timeout=30).status_code == 200
    finally:
        triton.stop()
        mlserver.stop()
