"""Lab 2.2's tokenizer, embedder and classifier versions, on the course model's real tokenizer and
weights (no server): what each version computes, and the client errors each one answers with 400."""
import numpy as np
import pytest
from transformers import AutoTokenizer

SENTENCE = "The new update made the app faster and easier to use."


@pytest.fixture(scope="module")
def tokenizer(stub):
    from llmserve.course.config import config
    return AutoTokenizer.from_pretrained(config().model_dir)


def test_tokenizer_versions(stub, tokenizer):
    folder = stub.lab22 / "multi_model" / "tokenizer"
    v1, v2 = (stub.model(folder / v / "model.py", folder / "config.pbtxt") for v in ("1", "2"))
    plain = stub.outputs(v1.execute([stub.request(TEXT=SENTENCE)])[0])
    assert plain["TOKEN_IDS"].tolist() == tokenizer.encode(SENTENCE, add_special_tokens=False)
    assert plain["NUM_TOKENS"].tolist() == [len(plain["TOKEN_IDS"])] and plain["TOKEN_IDS"].dtype == np.int64
    chat = stub.outputs(v2.execute([stub.request(TEXT=SENTENCE)])[0])["TOKEN_IDS"].tolist()
    expected = tokenizer.apply_chat_template([{"role": "user", "content": SENTENCE}], tokenize=False,
                                             add_generation_prompt=True)
    assert chat == tokenizer.encode(expected, add_special_tokens=False) and len(chat) > len(plain["TOKEN_IDS"])
    empty, broken = v1.execute([stub.request(TEXT=""), stub.request(TEXT=b"\xff\xfe")])
    assert stub.outputs(empty)["NUM_TOKENS"].tolist() == [0]  # no text, no tokens: a valid answer
    code, message = stub.error(broken)
    assert code == stub.INVALID_ARG and "TEXT is not valid UTF-8" in message


@pytest.fixture(scope="module")
def embedders(stub):
    folder = stub.lab22 / "multi_model" / "embedder"
    first = stub.model(folder / "1" / "model.py", folder / "config.pbtxt")
    second = stub.load(folder / "2" / "model.py").TritonPythonModel()
    second.model, second.vocab_size = first.model, first.vocab_size  # same weights: load them once
    return first, second


def test_embedder_versions_pool_differently_and_normalise(stub, embedders, tokenizer):
    import torch
    ids = np.array(tokenizer.encode(SENTENCE, add_special_tokens=False), np.int64)
    vectors = [stub.outputs(m.execute([stub.request(TOKEN_IDS=ids)])[0])["EMBEDDING"] for m in embedders]
    with torch.inference_mode():
        hidden = embedders[0].model(input_ids=torch.from_numpy(ids[None])).last_hidden_state[0]
    for vector, pooled in zip(vectors, (hidden.mean(0), hidden[-1]), strict=True):
        assert vector.shape == (576,) and vector.dtype == np.float32
        np.testing.assert_allclose(vector, (pooled / pooled.norm()).numpy(), rtol=1e-5, atol=1e-6)
    assert float(vectors[0] @ vectors[1]) < 0.99  # different poolings, different vectors


def test_embedder_client_errors(stub, embedders):
    model = embedders[0]
    assert model.vocab_size == 49152
    responses = model.execute([stub.request(TOKEN_IDS=np.zeros(0, np.int64)),
                               stub.request(TOKEN_IDS=np.array([1, 49152], np.int64)),
                               stub.request(TOKEN_IDS=np.array([-3], np.int64)),
                               stub.request(TOKEN_IDS=np.array([1, 2, 3], np.int64))])
    codes_messages = [stub.error(r) for r in responses[:3]]
    assert [code for code, _ in codes_messages] == [stub.INVALID_ARG] * 3
    assert "TOKEN_IDS is empty" in codes_messages[0][1]
    assert "outside the vocabulary [0, 49152), e.g. 49152" in codes_messages[1][1]
    assert "e.g. -3" in codes_messages[2][1]
    assert stub.outputs(responses[3])["EMBEDDING"].shape == (576,)  # the good request of the batch is answered


def test_classifier_and_sentiment_prompts(stub, tokenizer):
    """What differs between the versions, without loading the weights four times."""
    prompts = {}
    for folder, version in (("multi_model/classifier", "1"), ("multi_model/classifier", "2"),
                            ("ab_test/sentiment", "1"), ("ab_test/sentiment", "2")):
        model = stub.load(stub.lab22 / folder / version / "model.py").TritonPythonModel()
        model.tokenizer = tokenizer
        prompts[folder, version] = (model.prompt("Great phone."), model.quantize_int8)
    completion = "Review: Great phone.\nSentiment (positive or negative):"
    assert prompts["multi_model/classifier", "2"] == (completion, False)
    assert prompts["ab_test/sentiment", "1"] == (completion, False)  # A = classifier v2
    assert prompts["ab_test/sentiment", "2"] == (completion, True)  # B = A with int8 weights
    chat, quantized = prompts["multi_model/classifier", "1"]
    assert not quantized and chat.startswith("<|im_start|>") and "Review: Great phone.\n" in chat
    assert chat.rstrip().endswith("<|im_start|>assistant")


def test_classifier_labels_and_client_errors(stub):
    folder = stub.lab22 / "multi_model" / "classifier"
    model = stub.model(folder / "2" / "model.py", folder / "config.pbtxt")
    good, bad, empty = model.execute([stub.request(TEXT="I love this phone, it is wonderful."),
                                      stub.request(TEXT="This was a terrible, awful waste of money."),
                                      stub.request(TEXT=" ")])
    for response, label in ((good, "positive"), (bad, "negative")):
        out = stub.outputs(response)
        assert out["LABEL"].tolist() == [label.encode()]
        assert out["SCORES"].shape == (2,) and out["SCORES"].dtype == np.float32 and np.all(out["SCORES"] < 0)
        assert (out["SCORES"][0] > out["SCORES"][1]) == (label == "positive")
    code, message = stub.error(empty)
    assert code == stub.INVALID_ARG and "TEXT is empty" in message
