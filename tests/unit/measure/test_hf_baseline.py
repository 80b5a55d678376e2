"""Unit tests of llmserve.measure.hf_baseline: the transformers baseline notebooks compare vLLM with."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from llmserve.measure.hf_baseline import GenerationRun, chat_prompt_ids, hf_generate, left_pad, load_model  # noqa: E402


def test_left_pad_puts_every_prompt_against_the_right_edge():
    ids, mask = left_pad([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    with pytest.raises(ValueError):
        left_pad([[1], []], pad_id=0)


def test_generation_run_rates():
    run = GenerationRun(method="x", batch_size=1, num_requests=2, generated_tokens=20, seconds=4.0,
                        completion_s=(1.0, 4.0))
    assert run.tokens_per_s == 5.0
    assert run.mean_completion_s == 2.5


@pytest.fixture(scope="module")
def course_model():
    from llmserve.course.assets import AssetError
    try:
        return load_model()
    except AssetError as error:  # not prepared: fail loudly, the course needs it
        pytest.fail(str(error))


def test_exact_token_counts_and_batched_equals_loop(course_model):
    model, tokenizer = course_model
    prompts = chat_prompt_ids(tokenizer, ["What is the capital of France?",
                                          "Name one colour of the rainbow, please, in a single word."])
    assert len(prompts[0]) != len(prompts[1])  # so the batch really needs padding
    loop = hf_generate(model, tokenizer, prompts, max_new_tokens=6, batch_size=1, keep_text=True)
    batch = hf_generate(model, tokenizer, prompts, max_new_tokens=6, batch_size=2, keep_text=True)
    for run in (loop, batch):
        assert run.generated_tokens == 2 * 6 and run.num_requests == 2 and run.seconds > 0
    assert loop.method == "HF naive loop" and batch.method == "HF static batch 2"
    # the naive loop finishes requests one after another; a static batch finishes them together
    assert loop.completion_s[0] < loop.completion_s[1]
    assert batch.completion_s[0] == batch.completion_s[1]
    # left padding with an attention mask does not change greedy answers
    assert loop.texts == batch.texts
    assert loop.texts[0].startswith("The capital of France is Paris")


def test_min_new_tokens_forces_the_full_length(course_model):
    model, tokenizer = course_model
    prompt = chat_prompt_ids(tokenizer, ["Reply with the single word: yes"])
    run = hf_generate(model, tokenizer, prompt, max_new_tokens=12)
    assert run.generated_tokens == 12  # even though the answer ends (EOS) earlier


def test_bad_arguments(course_model):
    model, tokenizer = course_model
    with pytest.raises(ValueError):
        hf_generate(model, tokenizer, [[1, 2]], max_new_tokens=0)
    with pytest.raises(ValueError):
        hf_generate(model, tokenizer, [], max_new_tokens=1)
