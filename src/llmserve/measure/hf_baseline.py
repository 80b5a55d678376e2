"""A plain Hugging Face transformers baseline to measure serving engines against.

Two ways of serving N requests with `model.generate`, timed on identical token ids:

- the naive loop: one request at a time (`batch_size=1`);
- static batching: requests grouped into fixed batches, left-padded to the longest
  prompt of each batch; a batch finishes only when its last sequence does.

Greedy decoding with `min_new_tokens == max_new_tokens`, so every request generates
exactly `max_new_tokens` tokens. `min_new_tokens` *masks* the end-of-sequence token until
then (its logit is set to -inf, so the next most likely token is chosen). vLLM's like-for-like
setting is `SamplingParams(min_tokens=n, max_tokens=n)`, which masks EOS the same way;
`ignore_eos=True` is different: vLLM still emits EOS when it is the most likely token and
generates on after it (`first_difference` finds where two outputs part).

`static_schedule` times real static batching of requests that want *different* numbers of
new tokens: each group is left-padded and decodes until its longest member is done, so
finished members keep being computed (their extra tokens are thrown away), as in any padded
static batch; a timestamp per decode step shows when each request's own answer was complete.

    model, tokenizer = load_model()
    ids = chat_prompt_ids(tokenizer, ["What is the capital of France?"])
    run = hf_generate(model, tokenizer, ids, max_new_tokens=32, batch_size=1)
    print(run.tokens_per_s)
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from llmserve.course.assets import model_path


@dataclass(frozen=True)
class GenerationRun:
    """Timing of one method serving a list of requests that all arrived at t = 0."""
    method: str
    batch_size: int
    num_requests: int
    generated_tokens: int
    seconds: float
    completion_s: tuple[float, ...]  # per request: seconds from the start until its output was ready
    texts: tuple[str, ...] = ()
    token_ids: tuple[tuple[int, ...], ...] = ()  # per request, with keep_text=True

    @property
    def tokens_per_s(self) -> float:
        return self.generated_tokens / self.seconds

    @property
    def mean_completion_s(self) -> float:
        return sum(self.completion_s) / len(self.completion_s)


def load_model(path: str | Path | None = None, dtype=None, device: str | None = None):
    """(model, tokenizer) of the course model with transformers, in eval mode, fp32 by default.

    The model goes to CUDA when it is available (as vLLM does), else stays on the CPU.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = str(path or model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or torch.float32)
    model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.eval()
    return model, tokenizer


def chat_prompt_ids(tokenizer, questions: Sequence[str]) -> list[list[int]]:
    """Token ids of each question wrapped in the model's chat template (with the assistant cue)."""
    return [list(tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=True,
                                               add_generation_prompt=True, return_dict=False))
            for q in questions]


def left_pad(prompt_ids: Sequence[Sequence[int]], pad_id: int):
    """(input_ids, attention_mask) tensors, each row left-padded to the longest prompt.

    Left padding keeps every prompt's last token in the last column, where
    generation continues; the mask tells the model to ignore the pad slots.
    """
    import torch

    width = max(len(ids) for ids in prompt_ids)
    input_ids = torch.full((len(prompt_ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompt_ids), width), dtype=torch.long)
    for row, ids in enumerate(prompt_ids):
        if len(ids) == 0:
            raise ValueError("empty prompt")
        input_ids[row, width - len(ids):] = torch.tensor(list(ids), dtype=torch.long)
        mask[row, width - len(ids):] = 1
    return input_ids, mask


def hf_generate(model, tokenizer, prompt_ids: Sequence[Sequence[int]], max_new_tokens: int,
                batch_size: int = 1, method: str | None = None, keep_text: bool = False,
                progress: bool = False) -> GenerationRun:
    """Greedy-generate exactly `max_new_tokens` per prompt, `batch_size` prompts per `generate` call.

    All requests count as arrived at the start: a request's completion time includes the
    time it waited for earlier batches. `keep_text=True` keeps each answer's text and token ids.
    `progress=True` shows a tqdm bar over the batches.
    """
    import torch

    if batch_size < 1 or max_new_tokens < 1 or not prompt_ids:
        raise ValueError("need batch_size >= 1, max_new_tokens >= 1 and at least one prompt")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    completion, texts, ids, generated = [], [], [], 0
    began = time.perf_counter()
    with torch.inference_mode():
        starts = range(0, len(prompt_ids), batch_size)
        if progress:
            from tqdm.auto import tqdm
            starts = tqdm(starts, desc=method or f"transformers, batch {batch_size}")
        for start in starts:
            chunk = prompt_ids[start:start + batch_size]
            input_ids, mask = left_pad(chunk, pad_id)
            out = model.generate(input_ids=input_ids.to(device), attention_mask=mask.to(device),
                                 do_sample=False, max_new_tokens=max_new_tokens,
                                 min_new_tokens=max_new_tokens, pad_token_id=pad_id)
            new = out[:, input_ids.shape[1]:]
            if new.shape[1] != max_new_tokens:
                raise RuntimeError(f"generated {new.shape[1]} tokens, expected {max_new_tokens}")
            done = time.perf_counter() - began
            generated += new.numel()
            completion.extend([done] * len(chunk))
            if keep_text:
                texts.extend(tokenizer.batch_decode(new, skip_special_tokens=True))
                ids.extend(tuple(row) for row in new.tolist())
    seconds = time.perf_counter() - began
    name = method or ("HF naive loop" if batch_size == 1 else f"HF static batch {batch_size}")
    return GenerationRun(method=name, batch_size=batch_size, num_requests=len(prompt_ids),
                         generated_tokens=generated, seconds=seconds, completion_s=tuple(completion),
                         texts=tuple(texts), token_ids=tuple(ids))


def _generate_timed(model, input_ids, mask, new_tokens: int, pad_id: int) -> tuple[object, list[float]]:
    """Greedy-generate exactly `new_tokens` for a left-padded batch; return the output ids and, per
    generated token, the perf_counter time when it was ready (a stopping criterion that never stops)."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    times: list[float] = []

    class StepClock(StoppingCriteria):
        def __call__(self, ids, scores, **kwargs):
            times.append(time.perf_counter())
            return torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)

    device = next(model.parameters()).device
    out = model.generate(input_ids=input_ids.to(device), attention_mask=mask.to(device), do_sample=False,
                         max_new_tokens=new_tokens, min_new_tokens=new_tokens, pad_token_id=pad_id,
                         stopping_criteria=StoppingCriteriaList([StepClock()]))
    if out.shape[1] - input_ids.shape[1] != new_tokens or len(times) != new_tokens:
        raise RuntimeError(f"expected {new_tokens} generated tokens, got {out.shape[1] - input_ids.shape[1]}")
    return out, times


def token_times(model, tokenizer, prompt_ids: Sequence[int], new_tokens: int) -> tuple[float, ...]:
    """Greedy-generate exactly `new_tokens` for one prompt and return, per generated token, the
    seconds from the start of `generate` until it was ready. The first entry is the prefill (plus
    the first token); the differences after it are the decode steps. One call, one clock: no
    subtraction of two separately timed runs, which timing noise can turn negative."""
    import torch

    if new_tokens < 1 or not prompt_ids:
        raise ValueError("need new_tokens >= 1 and a non-empty prompt")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    input_ids, mask = left_pad([list(prompt_ids)], pad_id)
    with torch.inference_mode():
        began = time.perf_counter()
        _, times = _generate_timed(model, input_ids, mask, new_tokens, pad_id)
    return tuple(t - began for t in times)


def first_difference(a: Sequence[int], b: Sequence[int]) -> int | None:
    """Index of the first position where two token sequences differ (None if one is a prefix of the other)."""
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return None


@dataclass(frozen=True)
class ScheduledRequest:
    """One request of a static schedule; times in seconds from the start of the schedule."""
    index: int
    group: int
    new_tokens: int        # tokens the request wanted (its own answer)
    started: float         # its group began (prefill starts)
    first_token: float     # its first new token was ready (end of the group's prefill)
    own_done: float        # its own last token was ready
    returned: float        # its group ended: the answer is handed back only now


@dataclass(frozen=True)
class StaticSchedule:
    """Real static batching, timed step by step (see `static_schedule`)."""
    batch_size: int
    seconds: float
    requests: tuple[ScheduledRequest, ...]
    prompt_slots: int      # prompt positions computed, padding included
    pad_slots: int         # of those, pad tokens
    decode_slots: int      # new-token positions computed: sum over groups of size x longest answer
    useful_tokens: int     # of those, tokens some request asked for

    @property
    def discarded_tokens(self) -> int:
        return self.decode_slots - self.useful_tokens


def static_schedule(model, tokenizer, prompt_ids: Sequence[Sequence[int]], new_tokens: Sequence[int],
                    batch_size: int) -> StaticSchedule:
    """Serve requests the static way with transformers and time every decode step.

    Requests are taken `batch_size` at a time in order; a group is left-padded to its longest
    prompt and generates exactly max(new_tokens of the group) tokens for every member (greedy,
    EOS masked), so a member that wanted fewer tokens keeps its slot and keeps being computed
    until the group ends. The next group starts when the previous one is done. All requests
    count as arrived at t = 0.
    """
    import torch

    if batch_size < 1 or not prompt_ids or len(prompt_ids) != len(new_tokens) or min(new_tokens) < 1:
        raise ValueError("need batch_size >= 1 and one positive new-token count per prompt")

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    requests, prompt_slots, pad_slots, decode_slots = [], 0, 0, 0
    began = time.perf_counter()
    with torch.inference_mode():
        for group, start in enumerate(range(0, len(prompt_ids), batch_size)):
            chunk, wanted = prompt_ids[start:start + batch_size], list(new_tokens[start:start + batch_size])
            longest = max(wanted)
            input_ids, mask = left_pad(chunk, pad_id)
            group_start = time.perf_counter() - began
            _, times = _generate_timed(model, input_ids, mask, longest, pad_id)
            steps = [t - began for t in times]
            for offset, n in enumerate(wanted):
                requests.append(ScheduledRequest(index=start + offset, group=group, new_tokens=n,
                                                 started=group_start, first_token=steps[0],
                                                 own_done=steps[n - 1], returned=steps[-1]))
            prompt_slots += input_ids.numel()
            pad_slots += int((mask == 0).sum())
            decode_slots += len(chunk) * longest
    return StaticSchedule(batch_size=batch_size, seconds=time.perf_counter() - began, requests=tuple(requests),
                          prompt_slots=prompt_slots, pad_slots=pad_slots, decode_slots=decode_slots,
                          useful_tokens=sum(new_tokens))
