"""Triton Lab 2.3 · 03's Triton models without a server: `unified/course_chat` (the course LLM as a chat model) and
`unified/affine` (Y = 2X + 1): what they answer, and the client mistakes they answer with 400 (INVALID_ARG)."""
import json

import numpy as np
import pytest

from llmserve.course.config import REPO_ROOT

UNIFIED = REPO_ROOT / "02-Labs" / "Triton_Track" / "Lab-2.3-Backend_Integration" / "repositories" / "unified"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.mark.parametrize(("text", "message"), [
    ("not json", "MESSAGES is not JSON"),
    ("[]", "non-empty JSON list"),
    ('{"role": "user", "content": "hi"}', "non-empty JSON list"),
    ('[{"role": "user"}]', "exactly the keys role and content"),
    ('[{"role": "robot", "content": "hi"}]', "MESSAGES[0].role is 'robot'"),
    ('[{"role": "user", "content": 5}]', "content must be a string"),
    ('[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]', "end with a user message"),
])
def test_parse_messages_refuses_what_a_chat_template_cannot_take(stub, text, message):
    from triton_course_models.chat import parse_messages
    from triton_course_models.common import ClientError
    with pytest.raises(ClientError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_messages(text)


def test_parse_messages_keeps_a_valid_chat(stub):
    from triton_course_models.chat import parse_messages
    chat = [{"role": "system", "content": "Be brief."}, *QUESTION]
    assert parse_messages(json.dumps(chat)) == chat


def test_affine_computes_2x_plus_1_and_refuses_nan(stub):
    model = stub.load(UNIFIED / "affine" / "1" / "model.py").TritonPythonModel()  # no initialize: nothing to load
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    good, bad = model.execute([stub.request(X=x), stub.request(X=np.full((1, 4), np.nan, np.float32))])
    np.testing.assert_array_equal(stub.outputs(good)["Y"], 2 * x + 1)
    assert stub.error(bad) == (stub.INVALID_ARG, "X holds NaN or infinite values: send finite numbers")


@pytest.mark.model
def test_course_chat_answers_greedily_with_token_ids_and_refuses_mistakes(stub):
    from transformers import AutoTokenizer

    from llmserve.course.config import config
    model = stub.model(UNIFIED / "course_chat" / "1" / "model.py", UNIFIED / "course_chat" / "config.pbtxt")
    limit = np.array([12], dtype=np.int32)
    answer, short, too_long, not_json = model.execute([
        stub.request(MESSAGES=json.dumps(QUESTION), MAX_TOKENS=limit),
        stub.request(MESSAGES=json.dumps(QUESTION), MAX_TOKENS=np.array([3], dtype=np.int32)),
        stub.request(MESSAGES=json.dumps(QUESTION), MAX_TOKENS=np.array([999], dtype=np.int32)),
        stub.request(MESSAGES="What is the capital of France?")])
    out = stub.outputs(answer)
    tokenizer = AutoTokenizer.from_pretrained(config().model_dir)
    assert out["TEXT"][0].decode() == "The capital of France is Paris."
    assert out["TOKEN_IDS"].dtype == np.int64 and tokenizer.decode(out["TOKEN_IDS"], skip_special_tokens=True) \
        == out["TEXT"][0].decode()
    assert out["FINISH_REASON"][0] == b"stop" and int(out["TOKEN_IDS"][-1]) == tokenizer.eos_token_id
    prompt = tokenizer.apply_chat_template(QUESTION, tokenize=True, add_generation_prompt=True, return_dict=False)
    assert out["PROMPT_TOKENS"].tolist() == [len(prompt)]
    cut = stub.outputs(short)
    assert cut["FINISH_REASON"][0] == b"length" and cut["TOKEN_IDS"].tolist() == out["TOKEN_IDS"][:3].tolist()
    assert stub.error(too_long) == (stub.INVALID_ARG, "MAX_TOKENS must be between 1 and 256, got 999")
    code, message = stub.error(not_json)
    assert code == stub.INVALID_ARG and "MESSAGES is not JSON" in message
