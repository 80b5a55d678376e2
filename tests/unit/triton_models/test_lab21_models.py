"""Triton Lab 2.1's self-contained models, through the fake pb_utils: what each answers to a client
mistake (HTTP 400 via INVALID_ARG) and that one bad request does not fail the others."""
import numpy as np
import pytest

from llmserve.course.config import REPO_ROOT

LAB21 = REPO_ROOT / "02-Labs" / "Triton_Track" / "Lab-2.1-Triton_Server_Basics" / "repositories"


def test_course_llm_reads_requests_and_refuses_mistakes_before_generating(stub):
    model = stub.load(LAB21 / "pytorch_deploy" / "course_llm" / "1" / "model.py").TritonPythonModel()
    model.default_max_tokens, model.max_tokens_limit = 32, 256  # what initialize reads from config.pbtxt
    generated = []
    model.generate = lambda prompt, max_tokens: generated.append((prompt, max_tokens)) or ("Paris.", 2)
    responses = model.execute([
        stub.request(PROMPT="Capital of France?"),
        stub.request(PROMPT="Capital of France?", MAX_TOKENS=np.array([300], np.int32)),
        stub.request(PROMPT="  "),
        stub.request(PROMPT=b"caf\xe9"),
        stub.request(PROMPT="Hi", MAX_TOKENS=np.array([0], np.int32)),
        stub.request(PROMPT="Hi", MAX_TOKENS=np.array([256], np.int32)),
        stub.request(MAX_TOKENS=np.array([3], np.int32)),  # Triton 2.51 lets this through (MAX_TOKENS is optional)
    ])
    assert generated == [("Capital of France?", 32), ("Hi", 256)]  # only the valid requests ran
    assert stub.outputs(responses[0])["NUM_TOKENS"].tolist() == [2]
    errors = [stub.error(r) for r in responses[1:5]]
    assert {code for code, _ in errors} == {stub.INVALID_ARG}
    assert [message for _, message in errors] == [
        "MAX_TOKENS must be between 1 and 256, got 300", "PROMPT is empty: send the message to answer",
        "PROMPT is not valid UTF-8 text", "MAX_TOKENS must be between 1 and 256, got 0"]
    assert stub.outputs(responses[5])["TEXT"].tolist() == [b"Paris."]
    assert stub.error(responses[6]) == (stub.INVALID_ARG, "PROMPT is missing: send the message to answer")


@pytest.fixture(scope="module")
def token_embedder(stub):
    return stub.model(LAB21 / "pytorch_deploy" / "token_embedder" / "1" / "model.py")


def test_token_embedder_answers_a_mixed_batch_request_by_request(stub, token_embedder):
    good_a, good_b = np.array([[1, 2, 3]], np.int64), np.array([[4, 5, 6], [7, 8, 9]], np.int64)
    responses = token_embedder.execute([stub.request(TOKEN_IDS=good_a),
                                        stub.request(TOKEN_IDS=np.array([[1, 49152, 3]], np.int64)),
                                        stub.request(TOKEN_IDS=np.zeros((1, 0), np.int64)),
                                        stub.request(TOKEN_IDS=good_b)])
    first, last = stub.outputs(responses[0])["EMBEDDING"], stub.outputs(responses[3])["EMBEDDING"]
    assert first.shape == (1, 576) and last.shape == (2, 576)
    alone = stub.outputs(token_embedder.execute([stub.request(TOKEN_IDS=good_b)])[0])["EMBEDDING"]
    np.testing.assert_allclose(last, alone, rtol=1e-6)  # batched with others = answered alone
    assert stub.error(responses[1]) == (stub.INVALID_ARG, "TOKEN_IDS must lie in [0, 49152), got 1..49152")
    assert stub.error(responses[2]) == (stub.INVALID_ARG, "TOKEN_IDS has no token: send at least one token id per row")


def test_first_server_tokenizer_refuses_bytes_that_are_not_utf8(stub):
    model = stub.model(LAB21 / "first_server" / "tokenizer" / "1" / "model.py")
    empty, broken, text = model.execute([stub.request(TEXT=""), stub.request(TEXT=b"\xff"),
                                         stub.request(TEXT="Paris")])
    assert stub.outputs(empty)["NUM_TOKENS"].tolist() == [0]
    assert stub.error(broken) == (stub.INVALID_ARG, "TEXT is not valid UTF-8 text")
    assert stub.outputs(text)["NUM_TOKENS"].item() >= 1
