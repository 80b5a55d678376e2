"""Lab 2.2's multi-model and A/B repositories, on the real server.

One server serves both repositories (`multi_model/` and `ab_test/`): every model loads, the
version policies serve the expected versions, and each model answers correctly.
"""
import csv

import numpy as np
import pytest

from llmserve.course.config import REPO_ROOT
from llmserve.servers import TritonServer

LAB = REPO_ROOT / "02-Labs" / "Triton_Track" / "Lab-2.2-Multi_Model_Management"
MULTI = LAB / "repositories" / "multi_model"
AB = LAB / "repositories" / "ab_test"
LABELLED = LAB / "data" / "sentiment.csv"

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def server():
    with TritonServer(MULTI, extra_args=[f"--model-repository={AB}"]) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    return server.http_client()


def _text(text):
    import tritonclient.http as httpclient
    tensor = httpclient.InferInput("TEXT", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([text.encode()], dtype=np.object_))
    return tensor


def _tokens(client, text):
    return client.infer("tokenizer", [_text(text)]).as_numpy("TOKEN_IDS")


def _embed(client, text, version):
    import tritonclient.http as httpclient
    ids = _tokens(client, text)
    tensor = httpclient.InferInput("TOKEN_IDS", list(ids.shape), "INT64")
    tensor.set_data_from_numpy(ids)
    return client.infer("embedder", [tensor], model_version=version).as_numpy("EMBEDDING")


def _classify(client, model, text, version=""):
    result = client.infer(model, [_text(text)], model_version=version)
    return result.as_numpy("LABEL").reshape(-1)[0].decode(), result.as_numpy("SCORES")


def _labelled():
    with open(LABELLED, newline="") as handle:
        return [(row["text"], row["label"]) for row in csv.DictReader(handle)]


def test_labelled_set_is_balanced_and_clean():
    rows = _labelled()
    assert len(rows) == 60 and len({text for text, _ in rows}) == 60
    assert sorted({label for _, label in rows}) == ["negative", "positive"]
    assert sum(label == "positive" for _, label in rows) == 30


def test_repository_index_and_version_policies(client):
    index = {(m["name"], m.get("version")): m.get("state") for m in client.get_model_repository_index()}
    assert index == {("tokenizer", "1"): "READY", ("embedder", "1"): "READY", ("embedder", "2"): "READY",
                     ("classifier", "2"): "READY", ("sentiment", "1"): "READY", ("sentiment", "2"): "READY"}
    expected = {"tokenizer": ["1"], "embedder": ["1", "2"], "classifier": ["2"], "sentiment": ["1", "2"]}
    for model, versions in expected.items():
        assert client.get_model_metadata(model)["versions"] == versions
        for version in ("1", "2"):
            assert client.is_model_ready(model, version) == (version in versions), (model, version)
    assert client.get_model_config("tokenizer")["version_policy"] == {"specific": {"versions": [1]}}
    assert client.get_model_config("classifier")["version_policy"] == {"latest": {"num_versions": 1}}


def test_a_version_that_is_not_served_is_an_error(client):
    from tritonclient.utils import InferenceServerException
    with pytest.raises(InferenceServerException, match="unavailable|not found|is not ready"):
        _classify(client, "classifier", "Great!", version="1")


def test_tokenizer_matches_the_course_tokenizer(client):
    from transformers import AutoTokenizer

    from llmserve.course.config import config
    tokenizer = AutoTokenizer.from_pretrained(config().model_dir)
    for text in ("The cat sat on the mat.", "Triton serves many models.", "ünïcödé ✓"):
        result = client.infer("tokenizer", [_text(text)])
        ids = result.as_numpy("TOKEN_IDS")
        assert ids.tolist() == tokenizer.encode(text, add_special_tokens=False)
        assert result.as_numpy("NUM_TOKENS").tolist() == [len(ids)]


def test_embedder_versions_shape_norm_determinism_and_meaning(client):
    sentences = ["The cat sat on the mat.", "A cat was sitting on the rug.",
                 "Stock markets fell sharply today.", "Shares dropped a lot on Wall Street."]
    by_version = {}
    for version in ("1", "2"):
        vectors = np.stack([_embed(client, s, version) for s in sentences])
        assert vectors.shape == (4, 576) and vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-4)
        np.testing.assert_array_equal(_embed(client, sentences[0], version), vectors[0])  # deterministic
        sim = vectors @ vectors.T
        # each paraphrase is closer to its partner than to either sentence of the other topic
        assert sim[0, 1] > max(sim[0, 2], sim[0, 3]) and sim[2, 3] > max(sim[2, 0], sim[2, 1]), sim
        by_version[version] = vectors
    assert not np.allclose(by_version["1"], by_version["2"])  # mean pooling != last token


def test_embedder_rejects_empty_input(client):
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException
    tensor = httpclient.InferInput("TOKEN_IDS", [0], "INT64")
    tensor.set_data_from_numpy(np.zeros(0, np.int64))
    with pytest.raises(InferenceServerException, match="TOKEN_IDS is empty") as error:
        client.infer("embedder", [tensor])
    assert error.value.status() == "400"


def test_every_model_answers_client_mistakes_with_400(server, raw_http):
    url, text = server.http_url, raw_http.strings
    for version in ("1", "2"):
        raw_http.expect(url, "embedder", {"TOKEN_IDS": np.zeros(0, np.int64)}, 400, "TOKEN_IDS is empty", version=version)
        raw_http.expect(url, "embedder", {"TOKEN_IDS": np.array([5, 49152], np.int64)}, 400,
                        "outside the vocabulary [0, 49152), e.g. 49152", version=version)
        raw_http.expect(url, "sentiment", {"TEXT": text("")}, 400, "TEXT is empty", version=version)
        raw_http.expect(url, "sentiment", {"TEXT": text(b"caf\xe9")}, 400, "TEXT is not valid UTF-8",
                        version=version, binary=True)
    raw_http.expect(url, "classifier", {"TEXT": text("  ")}, 400, "TEXT is empty")
    raw_http.expect(url, "tokenizer", {"TEXT": text(b"\xff")}, 400, "TEXT is not valid UTF-8", binary=True)
    status, body = raw_http.infer(url, "tokenizer", {"TEXT": text("")})
    assert status == 200 and raw_http.outputs(body)["NUM_TOKENS"] == [0]  # an empty text has no tokens: a valid answer
    # what breaks config.pbtxt is refused by the server before the model runs, also with 400
    raw_http.expect(url, "classifier", {"TEXT": text("a", "b")}, 400, "shape")
    raw_http.expect(url, "embedder", {"TOKEN_IDS": np.array([1.0], np.float32)}, 400, "data-type")
    status, body = raw_http.infer(url, "classifier", {"TEXT": text("The hotel room was clean and quiet.")})
    assert status == 200 and raw_http.outputs(body)["LABEL"][0] in ("positive", "negative")


def test_classifier_gets_most_of_the_labelled_set_right(client):
    rows = _labelled()
    predictions = [_classify(client, "classifier", text) for text, _ in rows]
    for label, scores in predictions:
        assert label in ("positive", "negative") and scores.shape == (2,) and np.all(scores < 0)
        assert label == ("positive" if scores[0] > scores[1] else "negative")
    correct = sum(label == truth for (label, _), (_, truth) in zip(predictions, rows, strict=True))
    assert correct >= 45, f"{correct}/60"  # measured 52/60; chance is 30


def test_ab_variants_answer_and_version_1_is_the_fp32_classifier(client):
    rows = _labelled()[::6]  # 10 sentences, both labels
    for text, _ in rows:
        label_a, scores_a = _classify(client, "sentiment", text, version="1")
        label_c, scores_c = _classify(client, "classifier", text)  # same prompt, same fp32 weights
        assert label_a == label_c
        np.testing.assert_allclose(scores_a, scores_c, rtol=1e-5)
        label_b, scores_b = _classify(client, "sentiment", text, version="2")
        assert label_b in ("positive", "negative") and np.all(np.isfinite(scores_b)) and np.all(scores_b < 0)
    # int8 weights change the numbers: B is a different model, not a copy of A
    _, scores_a = _classify(client, "sentiment", rows[0][0], version="1")
    _, scores_b = _classify(client, "sentiment", rows[0][0], version="2")
    assert not np.allclose(scores_a, scores_b, atol=1e-3)
