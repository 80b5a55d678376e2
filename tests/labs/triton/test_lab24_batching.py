"""Triton Lab 2.4 · 02: the `batching` repository. Statically: the configs say what the notebook teaches. On the
real server: the MLP computes each row the same whether batched or alone, the dynamic batcher forms batches
under concurrent load and `batch_stats` adds up to the counters; client mistakes are 400 over raw HTTP; the
sequence batcher keeps interleaved sequences apart (gRPC flags and HTTP parameters), refuses a continuation
without START (400 / INVALID_ARGUMENT), and closes an idle sequence after max_sequence_idle_microseconds."""
import json
import threading
import time

import numpy as np
import pytest
import requests

from llmserve.course.config import REPO_ROOT
from llmserve.triton.model_config import parse_model_config

LAB = REPO_ROOT / "02-Labs" / "Triton_Track" / "Lab-2.4-Enterprise_Features"
BATCHING = LAB / "repositories" / "batching"


def _config(model):
    return parse_model_config((BATCHING / model / "config.pbtxt").read_text())


def test_configs_match_what_the_notebook_teaches():
    assert sorted(p.name for p in BATCHING.iterdir() if p.is_dir()) == ["mlp", "running_sum"]
    mlp = _config("mlp")
    assert mlp.max_batch_size == 32 and mlp.HasField("dynamic_batching")
    assert list(mlp.dynamic_batching.preferred_batch_size) == [8, 16]
    seq = _config("running_sum")
    assert seq.HasField("sequence_batching") and seq.sequence_batching.max_sequence_idle_microseconds == 1_000_000
    kinds = {c.name: c.control[0].kind for c in seq.sequence_batching.control_input}
    from tritonclient.grpc import model_config_pb2 as pb
    batcher = pb.ModelSequenceBatching.Control
    assert kinds == {"START": batcher.CONTROL_SEQUENCE_START, "END": batcher.CONTROL_SEQUENCE_END,
                     "CORRID": batcher.CONTROL_SEQUENCE_CORRID}
    for model in ("mlp", "running_sum"):
        source = (BATCHING / model / "1" / "model.py").read_text()
        assert "from triton_course_models.batching import" in source and "def " not in source


@pytest.fixture(scope="module")
def server():
    from llmserve.servers import TritonServer
    with TritonServer(BATCHING, model_control="explicit", load_models=["mlp", "running_sum"]) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    import tritonclient.grpc as grpcclient
    client = grpcclient.InferenceServerClient(server.grpc_url)
    yield client
    client.close()


def _scores(client, rows):
    import tritonclient.grpc as grpcclient
    tensor = grpcclient.InferInput("X", list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows)
    return client.infer("mlp", [tensor]).as_numpy("SCORE")


def _stats(client, model="mlp"):
    return client.get_inference_statistics(model, as_json=True)["model_stats"][0]


@pytest.mark.server
def test_a_row_scores_the_same_alone_and_in_a_batch(client):
    rows = np.random.default_rng(3).standard_normal((8, 16)).astype(np.float32)
    batched = _scores(client, rows)
    alone = np.concatenate([_scores(client, rows[i:i + 1]) for i in range(8)])
    assert batched.shape == (8, 1)
    np.testing.assert_allclose(batched, alone, rtol=1e-4, atol=1e-6)
    assert len(np.unique(np.round(batched, 6))) == 8  # different inputs, different scores


@pytest.mark.server
def test_dynamic_batcher_forms_batches_and_batch_stats_add_up(client):
    config = client.get_model_config("mlp", as_json=True)["config"]
    config["dynamic_batching"] = {"max_queue_delay_microseconds": 20000}  # 20 ms: concurrent requests meet
    client.load_model("mlp", config=json.dumps(config))
    try:
        before = _stats(client)
        rows = np.random.default_rng(4).standard_normal((64, 1, 16)).astype(np.float32)
        threads = [threading.Thread(target=_scores, args=(client, rows[i])) for i in range(64)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        after = _stats(client)
    finally:
        client.load_model("mlp")  # the file's configuration again
    executions = int(after["execution_count"]) - int(before.get("execution_count", 0))
    inferences = int(after["inference_count"]) - int(before.get("inference_count", 0))
    assert inferences == 64 and executions < 64 / 2, (inferences, executions)
    old = {int(b["batch_size"]): int(b["compute_infer"]["count"]) for b in before.get("batch_stats", [])}
    new = {int(b["batch_size"]): int(b["compute_infer"]["count"]) for b in after["batch_stats"]}
    delta = {size: count - old.get(size, 0) for size, count in new.items() if count > old.get(size, 0)}
    assert sum(delta.values()) == executions and sum(s * c for s, c in delta.items()) == inferences
    assert max(delta) > 1


@pytest.mark.server
def test_mlp_client_mistakes_are_400(server, raw_http):
    url = server.http_url
    bad = np.zeros((2, 16), np.float32)
    bad[1, 4] = np.inf
    raw_http.expect(url, "mlp", {"X": bad}, 400, "NaN or infinite", binary=True)
    raw_http.expect(url, "mlp", {"X": np.zeros((33, 16), np.float32)}, 400, "batch-size must be <= 32")
    raw_http.expect(url, "mlp", {"X": np.zeros((1, 8), np.float32)}, 400, "unexpected shape")


def _add(client, sequence_id, value, start=False, end=False):
    import tritonclient.grpc as grpcclient
    tensor = grpcclient.InferInput("VALUE", [1, 1], "INT32")
    tensor.set_data_from_numpy(np.array([[value]], np.int32))
    reply = client.infer("running_sum", [tensor], sequence_id=sequence_id, sequence_start=start, sequence_end=end)
    return int(reply.as_numpy("SUM")[0, 0]), int(reply.as_numpy("STEP")[0, 0])


@pytest.mark.server
def test_interleaved_sequences_keep_their_own_sums_over_grpc(client):
    values = {501: [3, 4, 5, 6], 502: [100, 200, 300, 400], 503: [-1, -2, -3, -4]}
    answers = {k: [] for k in values}

    def drive(sequence_id):
        for n, value in enumerate(values[sequence_id]):
            answers[sequence_id].append(_add(client, sequence_id, value, start=n == 0, end=n == 3))

    # strictly interleaved from one thread first, then concurrently
    for n in range(4):
        for sequence_id, steps in values.items():
            answers[sequence_id].append(_add(client, sequence_id, steps[n], start=n == 0, end=n == 3))
    assert {k: [s for s, _ in v] for k, v in answers.items()} == {k: list(np.cumsum(v)) for k, v in values.items()}
    answers = {k: [] for k in values}
    threads = [threading.Thread(target=drive, args=(k,)) for k in values]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {k: [s for s, _ in v] for k, v in answers.items()} == {k: list(np.cumsum(v)) for k, v in values.items()}
    assert all([step for _, step in v] == [1, 2, 3, 4] for v in answers.values())


@pytest.mark.server
def test_sequence_protocol_over_raw_http(server):
    url = f"http://{server.http_url}/v2/models/running_sum/infer"

    def post(parameters, value):
        body = {"parameters": parameters, "inputs": [{"name": "VALUE", "shape": [1, 1], "datatype": "INT32", "data": [value]}]}
        reply = requests.post(url, json=body, timeout=30)
        return reply.status_code, reply.json()

    code, body = post({"sequence_id": 77, "sequence_start": True}, 10)
    assert code == 200 and body["outputs"][0]["data"] == [10], body
    code, body = post({"sequence_id": 77, "sequence_end": True}, 5)
    assert code == 200 and body["outputs"][0]["data"] == [15], body
    code, body = post({"sequence_id": 77}, 1)  # ended: continuing needs START again
    assert code == 400 and "START flag" in body["error"], body
    code, body = post({}, 1)
    assert code == 400 and "correlation ID" in body["error"], body
    # (a string in place of an INT32 is answered 500 by Triton's JSON parser: tests/labs/triton/test_lab24_security.py
    # pins that known 2.51 behaviour, so it is not repeated here)


@pytest.mark.server
def test_an_idle_sequence_is_closed_and_the_model_drops_its_state(client):
    from tritonclient.utils import InferenceServerException
    assert _add(client, 900, 10, start=True) == (10, 1)
    assert _add(client, 900, 1) == (11, 2)  # well within the idle limit: still open
    time.sleep(1.5)  # past max_sequence_idle_microseconds (1 s)
    with pytest.raises(InferenceServerException) as error:
        _add(client, 900, 5)
    assert "INVALID_ARGUMENT" in str(error.value.status()) and "START flag" in error.value.message()
    import tritonclient.grpc as grpcclient
    tensor = grpcclient.InferInput("VALUE", [1, 1], "INT32")
    tensor.set_data_from_numpy(np.array([[1]], np.int32))
    held = client.infer("running_sum", [tensor], sequence_id=901, sequence_start=True).as_numpy("HELD")[0, 0]
    assert held == 1  # only 901: the model dropped 900's idle state
    assert _add(client, 900, 5, start=True, end=True) == (5, 1)
    _add(client, 901, 0, end=True)
