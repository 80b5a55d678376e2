"""Unit tests of llmserve.measure.hf_baseline: the transformers baseline notebooks compare vLLM with."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from llmserve.measure.hf_baseline import (  # noqa: E402
    GenerationRun,
    chat_prompt_ids,
    first_difference,
    hf_generate,
    left_pad,
    load_model,
    static_schedule,
    token_times,
)


def test_left_pad_puts_every_prompt_against_the_right_edge():
    ids, mask = left_pad([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    with pytest.raises(ValueError):
        left_pad([[1], []], pad_id=0)


def test_first_difference():
    assert first_difference([1, 2, 3], [1, 2, 4]) == 2
    assert first_difference([5], [6, 7]) == 0
    assert first_difference([1, 2], [1, 2, 3]) is None
    assert first_difference([], []) is None


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
    assert loop.texts == batch.texts and loop.token_ids == batch.token_ids
    assert [len(ids) for ids in loop.token_ids] == [6, 6]
    assert tokenizer.decode(loop.token_ids[0], skip_special_tokens=True) == loop.texts[0]
    assert loop.texts[0].startswith("The capital of France is Paris")


def test_min_new_tokens_forces_the_full_length(course_model):
    model, tokenizer = course_model
    prompt = chat_prompt_ids(tokenizer, ["What is the capital of France?"])  # "The capital of France is Paris." + EOS
    run = hf_generate(model, tokenizer, prompt, max_new_tokens=12, keep_text=True)
    assert run.generated_tokens == 12  # even though the answer ends (EOS) earlier
    assert tokenizer.eos_token_id not in run.token_ids[0]  # min_new_tokens masks EOS, it is never emitted
    free = model.generate(input_ids=torch.tensor(prompt), do_sample=False, max_new_tokens=12,
                          pad_token_id=tokenizer.eos_token_id)[0, len(prompt[0]):].tolist()
    assert tokenizer.eos_token_id in free  # without it, the model does stop early: the test means something
    assert free.index(tokenizer.eos_token_id) < 12


def test_bad_arguments(course_model):
    model, tokenizer = course_model
    with pytest.raises(ValueError):
        hf_generate(model, tokenizer, [[1, 2]], max_new_tokens=0)
    with pytest.raises(ValueError):
        hf_generate(model, tokenizer, [], max_new_tokens=1)


def test_static_schedule_computes_every_slot_until_the_group_ends(course_model):
    model, tokenizer = course_model
    prompts = chat_prompt_ids(tokenizer, ["Hi!", "Name a colour of the rainbow, please.", "Count to three."])
    schedule = static_schedule(model, tokenizer, prompts, new_tokens=[2, 5, 3], batch_size=2)
    first, second, third = schedule.requests
    assert [r.group for r in schedule.requests] == [0, 0, 1]
    # groups of 2 and 1: every member of a group is computed for the group's longest answer
    assert schedule.decode_slots == 2 * 5 + 1 * 3 and schedule.useful_tokens == 10
    assert schedule.discarded_tokens == 3
    widest = max(len(prompts[0]), len(prompts[1]))
    assert schedule.prompt_slots == 2 * widest + len(prompts[2])
    assert schedule.pad_slots == 2 * widest - len(prompts[0]) - len(prompts[1])
    # the short member is done early but handed back only when its group ends
    assert first.own_done < second.own_done == first.returned == second.returned
    assert third.started >= second.returned  # the next group waits for the whole previous one
    for r in schedule.requests:
        assert r.started < r.first_token <= r.own_done <= r.returned <= schedule.seconds
    with pytest.raises(ValueError):
        static_schedule(model, tokenizer, prompts, new_tokens=[1, 2], batch_size=2)


def test_token_times_time_every_token_of_one_generation(course_model):
    model, tokenizer = course_model
    prompt = chat_prompt_ids(tokenizer, ["What is the capital of France?"])[0]
    times = token_times(model, tokenizer, prompt, new_tokens=12)  # past the answer's EOS: min_new_tokens
    assert len(times) == 12 and 0 < times[0]
    assert all(later > earlier for earlier, later in zip(times, times[1:], strict=False))  # one clock, strictly increasing
    with pytest.raises(ValueError):
        token_times(model, tokenizer, prompt, new_tokens=0)
