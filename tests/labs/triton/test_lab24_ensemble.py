"""Triton Lab 2.4 · 01: the `ensemble` repository. Statically: the ensemble's graph wires the steps' real tensor
names; every model.py is thin. On the real server, over raw HTTP: the ensemble, the BLS model and the client
chaining the steps give the same answers; client mistakes are 400 at every entry point; the chunked BLS model
loops exactly when its condition says, and the server counts its LLM calls; BLS children are traced under
their parent; a BLS caller gets a step's 400 back as INTERNAL (the reason the BLS models check TEXT
themselves)."""
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from llmserve.course.config import REPO_ROOT
from llmserve.triton.model_config import parse_model_config

LAB = REPO_ROOT / "02-Labs" / "Triton_Track" / "Lab-2.4-Enterprise_Features"
ENSEMBLE = LAB / "repositories" / "ensemble"
MODELS = ["bls_error_code", "lm", "postprocess", "sentiment_bls", "sentiment_bls_chunked", "sentiment_ensemble",
          "tokenizer"]
LONG_REVIEW = ("The acting was great and the cast clearly had fun. But the plot was boring, slow and far too long. "
               "I left the cinema before the end. The music, at least, was fine.")


def _config(model):
    return parse_model_config((ENSEMBLE / model / "config.pbtxt").read_text())


def test_repository_holds_the_pipeline_models_and_thin_model_files():
    assert sorted(p.name for p in ENSEMBLE.iterdir() if p.is_dir()) == MODELS
    for model in MODELS:
        assert _config(model).name == model
        if model in ("sentiment_ensemble", "bls_error_code"):
            continue
        source = (ENSEMBLE / model / "1" / "model.py").read_text()
        assert "from triton_course_models.pipeline import" in source and "def " not in source, model


def test_ensemble_graph_uses_the_steps_real_tensor_names_in_order():
    ensemble = _config("sentiment_ensemble")
    assert ensemble.platform == "ensemble"
    steps = list(ensemble.ensemble_scheduling.step)
    assert [s.model_name for s in steps] == ["tokenizer", "lm", "postprocess"]
    produced = {i.name for i in ensemble.input}
    for step in steps:
        config = _config(step.model_name)
        assert set(step.input_map) == {i.name for i in config.input}, step.model_name
        assert set(step.output_map) <= {o.name for o in config.output}, step.model_name
        assert set(step.input_map.values()) <= produced, f"{step.model_name} reads a tensor no earlier step made"
        produced |= set(step.output_map.values())
    assert {o.name for o in ensemble.output} <= produced
    bls = _config("sentiment_bls")
    assert [o.name for o in bls.output] == [o.name for o in ensemble.output]
    assert {bls.parameters[k].string_value for k in ("tokenizer", "lm", "postprocess")} == {"tokenizer", "lm", "postprocess"}


@pytest.fixture(scope="module")
def server():
    from llmserve.servers import TritonServer
    with tempfile.TemporaryDirectory(prefix="trace-") as trace_dir, TritonServer(
            ENSEMBLE, extra_args=["--trace-config", f"triton,file={trace_dir}/trace.json",
                                  "--trace-config", "triton,log-frequency=1", "--trace-config", "level=OFF",
                                  "--trace-config", "rate=1"]) as running:
        running.trace_dir = Path(trace_dir)
        yield running


def _post(server, model, inputs, binary=False):
    from tests.labs.triton.conftest import raw_infer
    return raw_infer(server.http_url, model, inputs, binary=binary)


def _text(text):
    return np.array([text.encode() if isinstance(text, str) else text], dtype=np.object_)


def _label(body):
    out = {o["name"]: o["data"] for o in body["outputs"]}
    return out["LABEL"][0], round(out["CONFIDENCE"][0], 4)


def _client_chain(server, text):
    from tests.labs.triton.conftest import raw_infer
    code, body = raw_infer(server.http_url, "tokenizer", {"TEXT": _text(text)})
    assert code == 200, body
    ids = np.array(next(o["data"] for o in body["outputs"] if o["name"] == "TOKEN_IDS"), np.int64)
    code, body = raw_infer(server.http_url, "lm", {"TOKEN_IDS": ids}, binary=True)
    assert code == 200, body
    logits = np.array(body["outputs"][0]["data"], np.float32)
    assert logits.shape == (49152,)
    code, body = raw_infer(server.http_url, "postprocess", {"LOGITS": logits}, binary=True)
    assert code == 200, body
    return _label(body)


@pytest.mark.server
def test_three_ways_give_the_same_answer_and_the_labels_are_right(server):
    reviews = {"A wonderful, moving film.": "positive", "Dull and far too long.": "negative",
               "The worst movie I have seen this year.": "negative", "Brilliant acting and a clever plot.": "positive"}
    for text, expected in reviews.items():
        answers = []
        for model in ("sentiment_ensemble", "sentiment_bls"):
            code, body = _post(server, model, {"TEXT": _text(text)})
            assert code == 200, body
            answers.append(_label(body))
        answers.append(_client_chain(server, text))
        assert answers[0] == answers[1] == answers[2], (text, answers)
        assert answers[0][0] == expected and 0.5 < answers[0][1] <= 1.0, (text, answers)


@pytest.mark.server
def test_client_mistakes_are_400_at_every_entry_point(server, raw_http):
    url = server.http_url
    for model in ("tokenizer", "sentiment_ensemble", "sentiment_bls", "sentiment_bls_chunked"):
        raw_http.expect(url, model, {"TEXT": _text("  ")}, 400, "TEXT is empty")
        raw_http.expect(url, model, {"TEXT": _text(b"\xff\xfe bad")}, 400, "not valid UTF-8", binary=True)
    raw_http.expect(url, "lm", {"TOKEN_IDS": np.array([1, 49152], np.int64)}, 400, "outside the vocabulary")
    raw_http.expect(url, "lm", {"TOKEN_IDS": np.array([], np.int64)}, 400, "empty")
    raw_http.expect(url, "postprocess", {"LOGITS": np.zeros(10, np.float32)}, 400, "LOGITS has 10 values")
    code, body = raw_http.infer(url, "sentiment_ensemble", {"TEXT": _text("  ")})
    assert "in ensemble 'sentiment_ensemble'" in body["error"]


@pytest.mark.server
def test_grpc_client_mistake_is_invalid_argument(server):
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException
    client = grpcclient.InferenceServerClient(server.grpc_url)
    tensor = grpcclient.InferInput("TEXT", [1], "BYTES")
    tensor.set_data_from_numpy(_text(""))
    for model in ("sentiment_ensemble", "sentiment_bls"):
        with pytest.raises(InferenceServerException) as error:
            client.infer(model, [tensor])
        assert "INVALID_ARGUMENT" in str(error.value.status()), model
    client.close()


@pytest.mark.server
def test_a_bls_caller_receives_a_steps_400_as_internal(server, raw_http):
    """Triton 2.51 fact the BLS models rely on: the step's INVALID_ARG does not reach the BLS caller."""
    code, body = raw_http.infer(server.http_url, "bls_error_code", {"TEXT": _text("")})
    assert code == 200, body
    out = raw_http.outputs(body)
    assert out["CODE"] == ["INTERNAL"] and "TEXT is empty" in out["MESSAGE"][0], out
    code, body = raw_http.infer(server.http_url, "bls_error_code", {"TEXT": _text("fine")})
    assert raw_http.outputs(body)["CODE"] == ["OK"]


def _lm_requests(server):
    stats = requests.get(f"http://{server.http_url}/v2/models/lm/stats", timeout=10).json()["model_stats"][0]
    return int(stats["inference_stats"]["success"]["count"])


@pytest.mark.server
def test_chunked_bls_loops_only_over_long_texts_and_the_server_counts_the_calls(server):
    for text, sentences in (("A wonderful, moving film.", 1), ("Dull. Far too long.", 1), (LONG_REVIEW, 4)):
        before = _lm_requests(server)
        code, body = _post(server, "sentiment_bls_chunked", {"TEXT": _text(text)})
        assert code == 200, body
        calls = {o["name"]: o["data"] for o in body["outputs"]}["LLM_CALLS"][0]
        assert calls == sentences, (text, calls)  # a short prompt (<= 40 tokens) takes one call, even with 2 sentences
        assert _lm_requests(server) - before == calls
    short = _label(_post(server, "sentiment_bls_chunked", {"TEXT": _text("A wonderful, moving film.")})[1])
    assert short == _label(_post(server, "sentiment_bls", {"TEXT": _text("A wonderful, moving film.")})[1])


@pytest.mark.server
def test_steps_of_ensemble_and_bls_are_traced_under_their_parent(server):
    from llmserve.triton.tracing import read_trace_file
    settings = f"http://{server.http_url}/v2/trace/setting"
    assert requests.post(settings, json={"trace_level": ["TIMESTAMPS"], "trace_rate": "1"}, timeout=10).ok
    for model in ("sentiment_ensemble", "sentiment_bls"):
        assert _post(server, model, {"TEXT": _text("A wonderful, moving film.")})[0] == 200
    assert requests.post(settings, json={"trace_level": ["OFF"]}, timeout=10).ok
    deadline = time.monotonic() + 20
    while len(list(server.trace_dir.glob("trace.json.*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    traces = read_trace_file(sorted(server.trace_dir.glob("trace.json.*")))
    for model in ("sentiment_ensemble", "sentiment_bls"):
        [parent] = [t for t in traces if t.model_name == model and t.parent_id is None]
        steps = sorted((t for t in traces if t.parent_id == parent.id), key=lambda t: t.timestamps["COMPUTE_START"])
        assert [t.model_name for t in steps] == ["tokenizer", "lm", "postprocess"], model
        for step in steps:  # each step started inside the pipeline request's time in the server
            assert parent.timestamps["HTTP_RECV_START"] < step.timestamps["COMPUTE_START"] < \
                step.timestamps["COMPUTE_END"], (model, step.model_name)
            assert step.timestamps["COMPUTE_START"] < parent.timestamps["HTTP_SEND_START"], (model, step.model_name)
        # The steps before the last one finish before the answer is sent. The last step's answer is forwarded
        # as soon as it is sent, and its COMPUTE_END is stamped after that (seen: 0.1 ms later under load).
        for step in steps[:-1]:
            assert step.timestamps["COMPUTE_END"] < parent.timestamps["HTTP_SEND_START"], (model, step.model_name)
