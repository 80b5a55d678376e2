"""Lab 2.1 · 03 and 04 on the real servers: the `pytorch_deploy` repository, the libtorch
artefact, and the Prometheus scrape configuration.

One Triton server serves the repository for the whole module; each model must load and
answer correctly. The TorchScript artefact must match eager PyTorch and its config.pbtxt
must pass Triton's protobuf schema (and be refused by this Triton, which has no libtorch).
The scrape config must pass `promtool check config` and make a real Prometheus scrape Triton.
"""
import time

import numpy as np
import pytest

from llmserve.course.assets import model_path
from llmserve.course.config import REPO_ROOT
from llmserve.ops.prometheus import check_prometheus_config, prometheus_config
from llmserve.servers import PrometheusServer, TritonServer
from llmserve.triton.model_config import config_summary, parse_model_config
from llmserve.triton.torchscript import export_torchscript, load_module_file
from llmserve.triton.tracing import read_trace_file

LAB = REPO_ROOT / "02-Labs" / "Triton_Track" / "Lab-2.1-Triton_Server_Basics"
REPOSITORY = LAB / "repositories" / "pytorch_deploy"
LIBTORCH_CONFIG = LAB / "repositories" / "libtorch_export" / "token_embedder_libtorch" / "config.pbtxt"
SCRAPE_TEMPLATE = LAB / "monitoring" / "prometheus.yml"

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    trace_dir = tmp_path_factory.mktemp("trace")
    with TritonServer(REPOSITORY, extra_args=[
            "--metrics-config", "summary_latencies=true",
            "--trace-config", f"triton,file={trace_dir / 'trace.json'}",
            "--trace-config", "triton,log-frequency=2", "--trace-config", "level=OFF"]) as running:
        running.trace_dir = trace_dir
        yield running


@pytest.fixture(scope="module")
def eager_embedder():
    module = load_module_file(REPOSITORY / "token_embedder" / "1" / "embedding_module.py")
    return module.load_from_course_model(model_path())


def _embed(client, ids):
    import tritonclient.http as httpclient
    tensor = httpclient.InferInput("TOKEN_IDS", list(ids.shape), "INT64")
    tensor.set_data_from_numpy(ids)
    return client.infer("token_embedder", [tensor]).as_numpy("EMBEDDING")


def _generate(client, prompt, max_tokens=None):
    import tritonclient.http as httpclient
    tensor = httpclient.InferInput("PROMPT", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([prompt.encode()], dtype=object))
    inputs = [tensor]
    if max_tokens is not None:
        limit = httpclient.InferInput("MAX_TOKENS", [1], "INT32")
        limit.set_data_from_numpy(np.array([max_tokens], dtype=np.int32))
        inputs.append(limit)
    result = client.infer("course_llm", inputs)
    return result.as_numpy("TEXT")[0].decode(), int(result.as_numpy("NUM_TOKENS")[0])


def test_the_repository_holds_exactly_these_models():
    assert sorted(p.name for p in REPOSITORY.iterdir() if p.is_dir()) == ["course_llm", "token_embedder"]
    for model in ("course_llm", "token_embedder"):
        assert parse_model_config((REPOSITORY / model / "config.pbtxt").read_text()).name == model


def test_token_embedder_matches_eager_pytorch(server, eager_embedder):
    import torch
    client = server.http_client()
    ids = np.random.default_rng(0).integers(0, 49152, size=(3, 11), dtype=np.int64)
    served = _embed(client, ids)
    with torch.inference_mode():
        local = eager_embedder(torch.from_numpy(ids)).numpy()
    assert served.shape == (3, 576)
    np.testing.assert_allclose(served, local, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(served, axis=1), 1.0, atol=1e-5)
    config = client.get_model_config("token_embedder")
    assert config["max_batch_size"] == 32 and "dynamic_batching" in config


def test_token_embedder_batches_concurrent_requests(server):
    from llmserve.measure.load import closed_loop
    grpc = server.grpc_client()
    ids = np.arange(1, 9, dtype=np.int64).reshape(1, 8)

    def call(i):
        import tritonclient.grpc as grpcclient
        tensor = grpcclient.InferInput("TOKEN_IDS", [1, 8], "INT64")
        tensor.set_data_from_numpy(ids)
        return grpc.infer("token_embedder", [tensor]).as_numpy("EMBEDDING")

    before = server.http_client().get_inference_statistics("token_embedder")["model_stats"][0]
    result = closed_loop(call, concurrency=4, num_requests=200, progress=False)
    after = server.http_client().get_inference_statistics("token_embedder")["model_stats"][0]
    assert not result.errors
    assert after["inference_count"] - before["inference_count"] == 200
    outputs = [r.result for r in result.records]
    assert all(np.array_equal(o, outputs[0]) for o in outputs)  # batching must not change answers


def test_course_llm_answers_text_with_optional_max_tokens(server):
    from tritonclient.utils import InferenceServerException
    client = server.http_client()
    answer, n_tokens = _generate(client, "What is the capital of France?")
    assert answer == "The capital of France is Paris."
    assert 1 <= n_tokens <= 32  # default_max_tokens in config.pbtxt
    short, n_short = _generate(client, "What is the capital of France?", max_tokens=3)
    assert n_short == 3 and answer.startswith(short)
    with pytest.raises(InferenceServerException, match="MAX_TOKENS must be between 1 and 256") as error:
        _generate(client, "Hello", max_tokens=0)
    assert error.value.status() == "400"


def test_course_llm_answers_client_mistakes_with_400(server, raw_http):
    prompt = raw_http.strings("What is the capital of France?")
    for max_tokens in (0, -5, 257, 10_000):
        raw_http.expect(server.http_url, "course_llm", {"PROMPT": prompt, "MAX_TOKENS": np.array([max_tokens], np.int32)},
                        400, f"MAX_TOKENS must be between 1 and 256, got {max_tokens}")
    for empty in ("", "   "):
        raw_http.expect(server.http_url, "course_llm", {"PROMPT": raw_http.strings(empty)}, 400, "PROMPT is empty")
    raw_http.expect(server.http_url, "course_llm", {"PROMPT": raw_http.strings(b"caf\xe9")}, 400,
                    "PROMPT is not valid UTF-8", binary=True)
    # the server lets a request without PROMPT through (MAX_TOKENS is optional): model.py answers it
    raw_http.expect(server.http_url, "course_llm", {"MAX_TOKENS": np.array([3], np.int32)}, 400, "PROMPT is missing")
    # what breaks config.pbtxt the server itself refuses, also with 400
    raw_http.expect(server.http_url, "course_llm", {"PROMPT": np.array([1.0], np.float32)}, 400, "data-type")
    status, body = raw_http.infer(server.http_url, "course_llm", {"PROMPT": prompt, "MAX_TOKENS": np.array([3], np.int32)})
    assert status == 200 and raw_http.outputs(body)["NUM_TOKENS"] == [3]


def test_token_embedder_answers_client_mistakes_with_400(server, raw_http):
    raw_http.expect(server.http_url, "token_embedder", {"TOKEN_IDS": np.zeros((1, 0), np.int64)}, 400,
                    "TOKEN_IDS has no token")
    for bad in (49152, -1):
        raw_http.expect(server.http_url, "token_embedder", {"TOKEN_IDS": np.array([[1, bad, 3]], np.int64)}, 400,
                        "TOKEN_IDS must lie in [0, 49152)")
    status, body = raw_http.infer(server.http_url, "token_embedder", {"TOKEN_IDS": np.array([[1, 2, 3]], np.int64)})
    assert status == 200 and len(raw_http.outputs(body)["EMBEDDING"]) == 576


def test_tracing_writes_the_stages_of_traced_requests(server):
    client = server.http_client()
    client.update_trace_settings("token_embedder", {"trace_level": ["TIMESTAMPS"], "trace_rate": "1",
                                                    "trace_count": "2"})
    for _ in range(3):
        _embed(client, np.ones((1, 4), np.int64))
    deadline = time.monotonic() + 10
    while not list(server.trace_dir.glob("trace.json.*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    traces = read_trace_file(sorted(server.trace_dir.glob("trace.json.*")))
    assert len(traces) == 2 and {t.model_name for t in traces} == {"token_embedder"}
    for trace in traces:
        stamps = trace.timestamps
        assert stamps["HTTP_RECV_START"] <= stamps["QUEUE_START"] <= stamps["COMPUTE_START"] <= stamps["COMPUTE_END"]


def test_torchscript_artefact_matches_eager(eager_embedder, tmp_path):
    import torch
    example = torch.tensor([[1, 2, 3, 4, 5]])
    others = [torch.randint(0, 49152, (rows, tokens), generator=torch.Generator().manual_seed(rows))
              for rows, tokens in ((1, 1), (7, 33))]
    export = export_torchscript(eager_embedder, [example], LIBTORCH_CONFIG, tmp_path, check_inputs=others)
    assert export.model_file == tmp_path / "token_embedder_libtorch" / "1" / "model.pt"
    assert export.max_abs_diff <= 1e-6 and export.checked_shapes == [(1, 5), (1, 1), (7, 33)]
    loaded = torch.jit.load(str(export.model_file))
    with torch.inference_mode():
        torch.testing.assert_close(loaded(others[1]), eager_embedder(others[1]))
    summary = config_summary(parse_model_config(export.config_file.read_text()))
    assert summary["platform"] == "pytorch_libtorch"
    assert summary["input"] == [("INPUT__0", "TYPE_INT64", [-1])]
    assert summary["output"] == [("OUTPUT__0", "TYPE_FP32", [576])]


def test_this_triton_refuses_the_libtorch_artefact(eager_embedder, tmp_path):
    import torch
    from tritonclient.utils import InferenceServerException
    export_torchscript(eager_embedder, [torch.tensor([[1, 2, 3]])], LIBTORCH_CONFIG, tmp_path)
    with TritonServer(tmp_path, model_control="explicit") as libtorch_server:
        with pytest.raises(InferenceServerException, match="unable to find backend library for backend 'pytorch'"):
            libtorch_server.http_client().load_model("token_embedder_libtorch")


def test_scrape_config_passes_promtool_and_prometheus_scrapes_triton(server):
    text = prometheus_config(SCRAPE_TEMPLATE, triton_metrics=f"127.0.0.1:{server.metrics_port}")
    assert "SUCCESS" in check_prometheus_config(text)
    _embed(server.http_client(), np.ones((2, 3), np.int64))
    expected = server.metrics_text()
    with PrometheusServer(text) as prometheus:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            up = prometheus.query('up{job="triton"}')
            success = prometheus.query('nv_inference_request_success{model="token_embedder"}')
            if up and up[0]["value"][1] == "1" and success:
                break
            time.sleep(0.2)
        assert up and up[0]["value"][1] == "1"
        assert success and float(success[0]["value"][1]) >= 1
        assert "nv_inference_request_success" in expected
