"""Triton Lab 2.4's model logic without a server: the pipeline steps (tokenizer, postprocess, sentence split),
the batched MLP and the running-sum sequence model. The BLS pipelines need a real server (exec()): they are
tested in tests/labs/triton/test_lab24_ensemble.py."""
import os

import numpy as np

from llmserve.course.config import REPO_ROOT

LAB24 = REPO_ROOT / "02-Labs" / "Triton_Track" / "Lab-2.4-Enterprise_Features" / "repositories"


def test_sentences_split_after_end_marks_only():
    from triton_course_models.pipeline import sentences
    assert sentences("Great start. Then it drags!  Why? ok") == ["Great start.", "Then it drags!", "Why?", "ok"]
    assert sentences("No end mark, e.g. here") == ["No end mark, e.g.", "here"]
    assert sentences("   ") == []


def test_prompt_tokenizer_encodes_the_prompt_and_rejects_empty_text(stub):
    from transformers import AutoTokenizer

    from triton_course_models.pipeline import PROMPT
    folder = LAB24 / "ensemble" / "tokenizer"
    model = stub.model(folder / "1" / "model.py", folder / "config.pbtxt")
    [ok, empty] = model.execute([stub.request(TEXT="A fine film."), stub.request(TEXT=" ")])
    reference = AutoTokenizer.from_pretrained(os.environ["COURSE_MODEL_DIR"])
    expected = reference.encode(PROMPT.format(text="A fine film."), add_special_tokens=False)
    assert stub.outputs(ok)["TOKEN_IDS"].tolist() == expected
    assert stub.outputs(ok)["NUM_TOKENS"].tolist() == [len(expected)]
    assert stub.error(empty)[0] == stub.INVALID_ARG


def test_postprocess_picks_the_likelier_label_word_and_checks_the_length(stub):
    folder = LAB24 / "ensemble" / "postprocess"
    model = stub.model(folder / "1" / "model.py", folder / "config.pbtxt")
    positive, negative = model.label_ids
    logits = np.zeros(49152, np.float32)
    logits[negative] = 2.0
    [answer, short] = model.execute([stub.request(LOGITS=logits), stub.request(LOGITS=np.zeros(5, np.float32))])
    out = stub.outputs(answer)
    assert out["LABEL"].tolist() == [b"negative"]
    np.testing.assert_allclose(out["CONFIDENCE"], [1 / (1 + np.exp(-2.0))], rtol=1e-6)
    code, message = stub.error(short)
    assert code == stub.INVALID_ARG and "5 values" in message


def _mlp(stub):
    folder = LAB24 / "batching" / "mlp"
    return stub.model(folder / "1" / "model.py", folder / "config.pbtxt")


def test_batched_mlp_scores_rows_the_same_in_one_execution_or_alone(stub):
    model = _mlp(stub)
    rows = np.random.default_rng(0).standard_normal((5, 16)).astype(np.float32)
    together = model.execute([stub.request(X=rows[:2]), stub.request(X=rows[2:])])
    alone = [model.execute([stub.request(X=rows[i:i + 1])])[0] for i in range(5)]
    batched = np.concatenate([stub.outputs(r)["SCORE"] for r in together])
    single = np.concatenate([stub.outputs(r)["SCORE"] for r in alone])
    assert batched.shape == (5, 1)
    np.testing.assert_allclose(batched, single, rtol=1e-4, atol=1e-6)


def test_batched_mlp_fails_only_the_request_with_non_finite_input(stub):
    model = _mlp(stub)
    bad = np.zeros((1, 16), np.float32)
    bad[0, 2] = np.nan
    good = np.ones((2, 16), np.float32)
    first, broken, last = model.execute([stub.request(X=good), stub.request(X=bad), stub.request(X=good)])
    assert stub.error(broken)[0] == stub.INVALID_ARG
    np.testing.assert_array_equal(stub.outputs(first)["SCORE"], stub.outputs(last)["SCORE"])
    assert stub.outputs(first)["SCORE"].shape == (2, 1)


def _step(stub, model, corrid, value, start=0, end=0):
    one = lambda v, dtype: np.array([[v]], dtype)  # noqa: E731
    [response] = model.execute([stub.request(VALUE=one(value, np.int32), START=one(start, np.int32),
                                             END=one(end, np.int32), CORRID=one(corrid, np.uint64))])
    return {k: int(v[0, 0]) for k, v in stub.outputs(response).items()}


def test_running_sum_keeps_sequences_apart_and_forgets_at_end(stub):
    folder = LAB24 / "batching" / "running_sum"
    model = stub.model(folder / "1" / "model.py", folder / "config.pbtxt")
    assert model.idle_s == 1.0  # from max_sequence_idle_microseconds
    assert _step(stub, model, 1, 5, start=1) == {"SUM": 5, "STEP": 1, "HELD": 1}
    assert _step(stub, model, 2, 100, start=1)["HELD"] == 2
    assert _step(stub, model, 1, 6)["SUM"] == 11
    assert _step(stub, model, 2, 1, end=1) == {"SUM": 101, "STEP": 2, "HELD": 1}
    assert _step(stub, model, 1, 1, start=1)["SUM"] == 1  # START resets a sequence


def test_running_sum_drops_state_idle_longer_than_the_limit(stub, monkeypatch):
    import triton_course_models.batching as batching
    folder = LAB24 / "batching" / "running_sum"
    model = stub.model(folder / "1" / "model.py", folder / "config.pbtxt")
    clock = [1000.0]
    monkeypatch.setattr(batching.time, "monotonic", lambda: clock[0])
    _step(stub, model, 7, 3, start=1)
    clock[0] += 0.5
    assert _step(stub, model, 8, 1, start=1)["HELD"] == 2  # 7 idle 0.5 s: kept
    clock[0] += 0.8
    assert _step(stub, model, 9, 1, start=1)["HELD"] == 2  # 7 idle 1.3 s: dropped; 8 idle 0.8 s: kept
    assert 7 not in model.states and 8 in model.states
