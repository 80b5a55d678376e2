"""Weight quantization of the course model with bitsandbytes, and how to measure it.

Three variants of the same checkpoint, loaded with transformers:

- ``fp32``: the course model as stored (weights de-quantized from the Q4_1 GGUF file);
- ``int8``: LLM.int8() (Dettmers et al., 2022), ``BitsAndBytesConfig(load_in_8bit=True)``;
- ``nf4``: 4-bit NormalFloat (Dettmers et al., QLoRA, 2023), ``load_in_4bit=True``.

What each variant costs and what it buys, all measured, never assumed:

    loaded = load_variant("nf4")                       # model + load time + memory
    ids = encode_text(tokenizer, read_eval_text())[:1024]
    ppl = perplexity(loaded.model, ids, max_length=256, stride=128)
    speed = prefill_and_decode(loaded.model, tokenizer, prompt_ids, decode_tokens=32)  # .decode_tok_s
    checks = answer_checks(loaded.model, tokenizer)    # exact answers, one forward pass each

Perplexity uses the sliding-window method of the transformers documentation ("Perplexity of
fixed-length models"): windows of ``max_length`` tokens advance by ``stride``; each token is
scored once, with between ``max_length - stride`` and ``max_length - 1`` tokens of context.
"""
from __future__ import annotations

import gc
import logging
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from llmserve.course.assets import model_path
from llmserve.course.config import REPO_ROOT
from llmserve.measure.memory import rss_bytes

VARIANTS = ("fp32", "int8", "nf4")

EVAL_TEXT = (REPO_ROOT / "02-Labs" / "vLLM_Track" / "Lab-2.2-Inference_Optimization" / "data"
             / "alice_ch1-2.txt")

# Short prompts with one exact continuation; `answer_checks` asks whether the model's greedy
# continuation starts with the answer. Plain-text prompts (no chat template), so the answer is
# the very next word.
ANSWER_CHECKS: tuple[tuple[str, str], ...] = (
    ("The capital of France is", "Paris"),
    ("The capital of Italy is", "Rome"),
    ("The capital of Japan is", "Tokyo"),
    ("one, two, three, four,", "five"),
    ("The opposite of hot is", "cold"),
    ("Water freezes at 0 degrees", "Celsius"),
    ("The first letters of the alphabet are A, B,", "C"),
    ("1, 2, 3, 4, 5,", "6"),
)


def quantization_config(variant: str):
    """The `BitsAndBytesConfig` of a variant (None for fp32)."""
    import torch
    from transformers import BitsAndBytesConfig

    if variant == "fp32":
        return None
    if variant == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    if variant == "nf4":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                  bnb_4bit_compute_dtype=torch.float32)
    raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")


def _quiet_bitsandbytes() -> None:
    # bitsandbytes warns on every int8 matmul on CPU ("inputs will be cast ... to float16"):
    # thousands of identical lines per forward pass. Show it once, then stay quiet.
    warnings.filterwarnings("once", message=r"MatMul8bitLt: inputs will be cast")
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)


@dataclass
class LoadedVariant:
    """A loaded model variant and what loading it cost."""
    variant: str
    model: object
    load_seconds: float
    footprint_bytes: int      # model.get_memory_footprint(): parameters + buffers, as stored
    rss_delta_bytes: int      # growth of this process's RSS: load + one warm-up forward pass
    layer_types: dict[str, int] = field(default_factory=dict)

    @property
    def footprint_mib(self) -> float:
        return self.footprint_bytes / 2**20

    @property
    def rss_delta_mib(self) -> float:
        return self.rss_delta_bytes / 2**20


def linear_layer_types(model) -> dict[str, int]:
    """How many Linear-like modules of each class the model has (e.g. {'Linear8bitLt': 210})."""
    import torch

    counts: dict[str, int] = {}
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            name = type(module).__name__
            counts[name] = counts.get(name, 0) + 1
    return counts


def load_variant(variant: str, path: str | Path | None = None, warmup_tokens: int = 8) -> LoadedVariant:
    """Load the course model (or the model at `path`) as `variant`, in eval mode.

    On the GPU when CUDA is available, else on the CPU.

    The RSS delta is measured from before loading until after one warm-up forward pass of
    `warmup_tokens` tokens (memory-mapped weights count only once they have been touched).
    Free the previous variant first (`del loaded; gc.collect()`) for a clean delta.
    """
    import torch
    from transformers import AutoModelForCausalLM

    config = quantization_config(variant)
    _quiet_bitsandbytes()
    gc.collect()
    before = rss_bytes()
    began = time.perf_counter()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    kwargs = {"dtype": torch.float32}
    if config is not None:
        kwargs.update(quantization_config=config, device_map=device)
    model = AutoModelForCausalLM.from_pretrained(str(path or model_path()), **kwargs)
    if config is None:
        model.to(device)
    model.eval()
    seconds = time.perf_counter() - began
    if warmup_tokens:
        with torch.inference_mode():
            model(torch.ones((1, warmup_tokens), dtype=torch.long, device=device))
    gc.collect()
    return LoadedVariant(variant=variant, model=model, load_seconds=seconds,
                         footprint_bytes=int(model.get_memory_footprint()),
                         rss_delta_bytes=rss_bytes() - before, layer_types=linear_layer_types(model))


def _device(model):
    import torch

    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration):  # a plain callable (tests)
        return torch.device("cpu")


def read_eval_text(path: str | Path | None = None) -> str:
    """The evaluation text shipped with Lab 2.2 (public domain; see its data/SOURCE.md)."""
    return Path(path or EVAL_TEXT).read_text(encoding="utf-8")


def encode_text(tokenizer, text: str) -> list[int]:
    """Token ids of `text`, without special tokens."""
    return list(tokenizer(text, add_special_tokens=False).input_ids)


# --------------------------------------------------------------------------------------------
# Perplexity
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    """One forward pass: tokens [begin, end) go in; predictions of tokens [score_from, end) count."""
    begin: int
    end: int
    score_from: int

    @property
    def scored(self) -> int:
        return self.end - self.score_from


def sliding_windows(num_tokens: int, max_length: int, stride: int) -> list[Window]:
    """Windows of at most `max_length` tokens; each scores the next `stride` tokens.

    The first window scores tokens 1 .. max_length-1 (token 0 has nothing to be predicted from);
    every later window scores the next `stride` tokens and reaches back as far as `max_length`
    allows, so each scored token sees at least max_length - stride tokens of context. Every token
    except the first is scored exactly once. A small stride gives more context and recomputes
    more; stride = max_length - 1 gives almost disjoint windows (fastest, least context).
    """
    if num_tokens < 2:
        raise ValueError("need at least 2 tokens")
    if max_length < 2 or not 1 <= stride < max_length:
        raise ValueError("need max_length >= 2 and 1 <= stride < max_length")
    end = min(max_length, num_tokens)
    windows = [Window(begin=0, end=end, score_from=1)]
    while end < num_tokens:
        start, end = end, min(end + stride, num_tokens)
        windows.append(Window(begin=max(0, end - max_length), end=end, score_from=start))
    return windows


@dataclass(frozen=True)
class Perplexity:
    nll_sum: float         # sum of -log p(token | context) over scored tokens, in nats
    scored_tokens: int
    forward_tokens: int    # tokens pushed through the model (overlaps counted again)
    seconds: float
    token_nlls: tuple[float, ...] = ()  # -log p of each scored token, in order

    @property
    def mean_nll(self) -> float:
        return self.nll_sum / self.scored_tokens

    @property
    def perplexity(self) -> float:
        return math.exp(self.mean_nll)


@dataclass(frozen=True)
class NLLDifference:
    """Mean per-token NLL of variant b minus variant a on the same tokens, with its standard error."""
    mean: float
    standard_error: float
    tokens: int

    def within(self, k: float = 2.0) -> bool:
        """True when |mean| <= k standard errors: no difference this text can resolve."""
        return abs(self.mean) <= k * self.standard_error


def nll_difference(a: Perplexity, b: Perplexity) -> NLLDifference:
    """Paired difference of two perplexity runs over the same tokens (b - a, in nats per token).

    Both variants scored the very same tokens, so the per-token differences are paired; the
    standard error is their standard deviation / sqrt(n). Neighbouring tokens are not
    independent, so read it as a rough scale of the text's sampling noise, not an exact interval.
    """
    if not a.token_nlls or len(a.token_nlls) != len(b.token_nlls):
        raise ValueError("need per-token NLLs of the same tokens in both runs")
    diffs = [y - x for x, y in zip(a.token_nlls, b.token_nlls, strict=True)]
    n = len(diffs)
    mean = sum(diffs) / n
    variance = sum((d - mean) ** 2 for d in diffs) / (n - 1) if n > 1 else math.inf
    return NLLDifference(mean=mean, standard_error=math.sqrt(variance / n), tokens=n)


def perplexity(model, input_ids: Sequence[int], max_length: int = 256, stride: int = 128,
               progress: bool = False) -> Perplexity:
    """Perplexity exp(mean NLL) of `model` on `input_ids` with sliding windows (see module doc).

    `model(ids)` must return an object with `.logits` of shape (1, len, vocab), as transformers
    causal-LM models do.
    """
    import torch

    windows = sliding_windows(len(input_ids), max_length, stride)
    ids = torch.tensor(list(input_ids), dtype=torch.long, device=_device(model))
    nll, scored, pushed, per_token = 0.0, 0, 0, []
    iterator = windows
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(windows, desc="perplexity windows")
    began = time.perf_counter()
    with torch.inference_mode():
        for w in iterator:
            chunk = ids[w.begin:w.end].unsqueeze(0)
            logits = model(chunk).logits[0].float()
            # logits at position j predict token j + 1 (positions relative to the window)
            first = w.score_from - w.begin
            log_probs = torch.log_softmax(logits[first - 1:-1], dim=-1)
            targets = chunk[0, first:]
            token_nll = -log_probs.gather(1, targets.unsqueeze(1)).squeeze(1)
            nll += float(token_nll.sum())
            per_token.extend(token_nll.tolist())
            scored += len(targets)
            pushed += chunk.shape[1]
    return Perplexity(nll_sum=nll, scored_tokens=scored, forward_tokens=pushed,
                      seconds=time.perf_counter() - began, token_nlls=tuple(per_token))


# --------------------------------------------------------------------------------------------
# Speed and exact answers
# --------------------------------------------------------------------------------------------

def decode_tokens_per_s(model, tokenizer, prompt_ids: Sequence[int], max_new_tokens: int) -> float:
    """Greedy generation speed at batch 1: exactly `max_new_tokens` new tokens / wall seconds.

    Includes the prefill of the prompt; `prefill_and_decode` separates the two.
    Uses `llmserve.measure.hf_baseline.hf_generate`, like the other transformers baselines.
    """
    from llmserve.measure.hf_baseline import hf_generate

    run = hf_generate(model, tokenizer, [list(prompt_ids)], max_new_tokens=max_new_tokens, batch_size=1)
    return run.tokens_per_s


@dataclass(frozen=True)
class PrefillDecode:
    """Batch-1 timings that separate the prompt's prefill from the decode steps after it.

    Per repeat, one `generate` of 1 + `decode_tokens` tokens is timed token by token: `first_s`
    is when the first token was ready (prefill + the first token) and `total_s` when the last one
    was; their difference is the time of `decode_tokens` decode steps alone.
    """
    prompt_tokens: int
    decode_tokens: int
    first_s: tuple[float, ...]
    total_s: tuple[float, ...]

    @property
    def prefill_tok_s(self) -> tuple[float, ...]:
        """Prompt tokens per second of the prefill (first token included), per repeat."""
        return tuple(self.prompt_tokens / t for t in self.first_s)

    @property
    def decode_tok_s(self) -> tuple[float, ...]:
        """Decode tokens per second with the prefill taken out, per repeat."""
        return tuple(self.decode_tokens / (t - f) for f, t in zip(self.first_s, self.total_s, strict=True))


def prefill_and_decode(model, tokenizer, prompt_ids: Sequence[int], decode_tokens: int,
                       repeats: int = 3) -> PrefillDecode:
    """Time prefill and decode of one prompt at batch 1 separately, `repeats` times (see PrefillDecode)."""
    from llmserve.measure.hf_baseline import token_times

    if decode_tokens < 1 or repeats < 1:
        raise ValueError("need decode_tokens >= 1 and repeats >= 1")
    first, total = [], []
    for _ in range(repeats):
        times = token_times(model, tokenizer, prompt_ids, new_tokens=1 + decode_tokens)
        first.append(times[0])
        total.append(times[-1])
    return PrefillDecode(prompt_tokens=len(prompt_ids), decode_tokens=decode_tokens, first_s=tuple(first),
                         total_s=tuple(total))


@dataclass(frozen=True)
class OpTime:
    """One operator in a profile: its name, self CPU seconds and number of calls."""
    name: str
    self_seconds: float
    calls: int


def profile_decode_step(model, prompt_ids: Sequence[int]) -> list[OpTime]:
    """Profile one batch-1 decode step (after the prompt's prefill) with torch.profiler.

    Returns every operator with its self CPU time, slowest first: which kernels a variant really
    runs (e.g. ``aten::mm`` for fp32, ``aten::_int_mm`` for LLM.int8 on AVX-512, a bitsandbytes
    4-bit kernel for NF4) and how the step's time splits between them.
    """
    import torch
    from torch.profiler import ProfilerActivity, profile

    device = _device(model)
    ids = torch.tensor([list(prompt_ids)], dtype=torch.long, device=device)
    with torch.inference_mode():
        out = model(ids, use_cache=True)
        past = out.past_key_values
        token = out.logits[:, -1:].argmax(-1)
        out = model(token, past_key_values=past, use_cache=True)  # one untimed step: lazy set-up
        token = out.logits[:, -1:].argmax(-1)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            model(token, past_key_values=out.past_key_values, use_cache=True)
    ops = [OpTime(name=e.key, self_seconds=e.self_cpu_time_total / 1e6, calls=e.count)
           for e in prof.key_averages()]
    return sorted(ops, key=lambda op: -op.self_seconds)


@dataclass(frozen=True)
class AnswerCheck:
    prompt: str
    expected: str
    predicted: str   # the greedy continuation, as many tokens as the expected answer has
    correct: bool


def answer_checks(model, tokenizer, checks: Sequence[tuple[str, str]] = ANSWER_CHECKS) -> list[AnswerCheck]:
    """Does the greedy continuation of each prompt start with the expected answer?

    One forward pass per check over prompt + " answer" (teacher forcing): the answer is correct
    exactly when the model's argmax at every answer position is the answer's token, i.e. when
    greedy generation would produce the answer as its first tokens.
    """
    import torch

    results = []
    with torch.inference_mode():
        for prompt, expected in checks:
            prompt_ids = encode_text(tokenizer, prompt)
            full = encode_text(tokenizer, prompt + " " + expected)
            if full[:len(prompt_ids)] != prompt_ids:
                raise ValueError(f"answer {expected!r} changes the tokens of prompt {prompt!r}")
            answer_ids = full[len(prompt_ids):]
            logits = model(torch.tensor([full], device=_device(model))).logits[0]
            predicted = logits[len(prompt_ids) - 1:-1].argmax(-1).tolist()
            results.append(AnswerCheck(prompt=prompt, expected=expected,
                                       predicted=tokenizer.decode(predicted).strip(),
                                       correct=predicted == answer_ids))
    return results


# --------------------------------------------------------------------------------------------
# The original GGUF file
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GGUFSummary:
    file_bytes: int
    parameters: int
    tensor_types: dict[str, int]   # quantization type -> number of parameters stored in it

    @property
    def bits_per_weight(self) -> float:
        """File bits per parameter, metadata included (the tokenizer lives in the file too)."""
        return 8 * self.file_bytes / self.parameters


def gguf_summary(path: str | Path) -> GGUFSummary:
    """Size, parameter count and storage types of a GGUF file, read with the `gguf` package."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    types: dict[str, int] = {}
    total = 0
    for tensor in reader.tensors:
        count = int(tensor.n_elements)
        total += count
        types[tensor.tensor_type.name] = types.get(tensor.tensor_type.name, 0) + count
    return GGUFSummary(file_bytes=Path(path).stat().st_size, parameters=total, tensor_types=types)

