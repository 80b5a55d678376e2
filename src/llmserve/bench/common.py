"""What every `make bench` entry shares: the result record, the sizes per profile, the prompts,
small statistics, timed generation on a vLLM engine, the machine description and a bar plot."""
from __future__ import annotations

import contextlib
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from llmserve.course.config import REPO_ROOT

# Sizes per profile (the code path never changes). `prompts` x `new_tokens` is the equal work of
# the throughput comparison (vLLM may run all prompts at once: max_num_seqs = prompts, as the one
# static HF batch does); `mixed_requests` requests through `max_num_seqs` slots make continuous
# batching visible; `prefix_words` sizes the shared system prompt; `teach_prompts` x
# `teach_tokens` is the speculative_teaching workload and `lever_tokens` the decode length of
# each cpu_levers setting.
BENCH_SIZES: dict[str, dict[str, int]] = {
    "ci": {"prompts": 8, "new_tokens": 32, "mixed_requests": 16, "max_num_seqs": 8, "prefix_words": 600,
           "repeats": 2, "bandwidth_mib": 256, "spec_tokens": 64, "teach_prompts": 2, "teach_tokens": 96,
           "lever_tokens": 64, "lever_repeats": 3},
    "cpu": {"prompts": 16, "new_tokens": 64, "mixed_requests": 32, "max_num_seqs": 16, "prefix_words": 900,
            "repeats": 3, "bandwidth_mib": 1024, "spec_tokens": 128, "teach_prompts": 3, "teach_tokens": 128,
            "lever_tokens": 96, "lever_repeats": 4},
    "gpu": {"prompts": 64, "new_tokens": 128, "mixed_requests": 192, "max_num_seqs": 64, "prefix_words": 1500,
            "repeats": 5, "bandwidth_mib": 2048, "spec_tokens": 256, "teach_prompts": 4, "teach_tokens": 256,
            "lever_tokens": 256, "lever_repeats": 5},
}

QUESTIONS = [
    "Write two sentences about the ocean.", "Explain to a child what a public library is.",
    "Give three facts about winter.", "Describe a robot that learns to paint.",
    "Why do people drink coffee in the morning?", "Describe a mountain village in one paragraph.",
    "What makes a night train journey special?", "Give three facts about the moon.",
    "Explain how bees make honey.", "Describe the daily work of a lighthouse keeper.",
    "What does rain sound like in a city?", "Tell the story of an old bicycle in three sentences.",
]


@dataclass
class Entry:
    """One benchmark: headline figures (`summary`), every raw timing (`raw`), and what it ran on."""
    name: str
    description: str
    summary: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    plot: str | None = None


# --------------------------------------------------------------------------- small statistics

def ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator is not None and denominator else None


def median_of(timings: list[float]) -> float:
    return statistics.median(timings)


def spread(values: list[float]) -> dict:
    """Median, min, max and the relative half-range of repeated measurements (how noisy they are)."""
    if not values:
        raise ValueError("no values")
    mid = statistics.median(values)
    return {"median": mid, "min": min(values), "max": max(values), "n": len(values),
            "half_range_pct": 100 * (max(values) - min(values)) / 2 / mid if mid else None}


def decode_rate(seconds_one_token: float, seconds_n_tokens: float, n_tokens: int) -> float:
    """Decode tokens/s with the prefill taken out: (n - 1) extra tokens in the extra time."""
    extra = seconds_n_tokens - seconds_one_token
    if n_tokens < 2 or extra <= 0:
        raise ValueError("need n_tokens >= 2 and a longer run for n tokens than for one")
    return (n_tokens - 1) / extra


# --------------------------------------------------------------------------- prompts and engines

def question_prompts(count: int) -> list[str]:
    return [QUESTIONS[i % len(QUESTIONS)] for i in range(count)]


def chat_ids(questions: list[str]) -> list[list[int]]:
    """Chat-template token ids of `questions` with the course model's tokenizer (no model loaded)."""
    from transformers import AutoTokenizer

    from llmserve.course.assets import model_path
    from llmserve.measure.hf_baseline import chat_prompt_ids
    return chat_prompt_ids(AutoTokenizer.from_pretrained(model_path()), questions)


def shared_prefix_text(words: int) -> str:
    """A long, real system prompt: the first `words` words of the course's theory file 2.1."""
    text = (REPO_ROOT / "01-Theory" / "2.1-Inference_Engines.md").read_text(encoding="utf-8")
    chosen = text.split()[:words]
    if len(chosen) < words:
        raise ValueError(f"the theory file has only {len(chosen)} words")
    return "Answer questions about the following course notes.\n\n" + " ".join(chosen)


def grounded_prompts(tokenizer, count: int = 4) -> list[dict]:
    """Input-grounded prompts (repeat a 120-word passage of theory file 2.2), as vLLM token prompts."""
    text = (REPO_ROOT / "01-Theory" / "2.2-Serving_and_Optimization.md").read_text(encoding="utf-8").split()
    prompts = []
    for i in range(count):
        passage = " ".join(text[200 + 150 * i: 200 + 150 * i + 120])
        prompts.append({"prompt_token_ids": list(tokenizer.apply_chat_template(
            [{"role": "user", "content": f"Repeat the following passage word for word.\n\n{passage}"}],
            tokenize=True, add_generation_prompt=True, return_dict=False))})
    return prompts


def tokens_prompts(ids: list[list[int]]) -> list[dict]:
    return [{"prompt_token_ids": list(x)} for x in ids]


def generate_timed(llm, prompts, params) -> tuple[float, list]:
    began = time.perf_counter()
    outputs = llm.generate(prompts, params, use_tqdm=False)
    return time.perf_counter() - began, outputs


def decode_timings(llm, prompts: list[dict], new_tokens: int, repeats: int) -> dict:
    """Seconds for 1 and for `new_tokens` tokens (greedy, EOS ignored) of all `prompts` at once,
    `repeats` times each, alternating; `decode_rate` of the medians takes the prefill out."""
    from vllm import SamplingParams
    one_p = SamplingParams(temperature=0, max_tokens=1, ignore_eos=True)
    many_p = SamplingParams(temperature=0, max_tokens=new_tokens, ignore_eos=True)
    one, many, token_ids = [], [], None
    for _ in range(repeats):
        one.append(generate_timed(llm, prompts, one_p)[0])
        seconds, outputs = generate_timed(llm, prompts, many_p)
        many.append(seconds)
        token_ids = [list(o.outputs[0].token_ids) for o in outputs]
    return {"batch": len(prompts), "n_tokens": new_tokens, "one_token_s": one, "n_tokens_s": many,
            "token_ids": token_ids}


def batch_decode_rate(timings: dict, statistic=median_of) -> float:
    """Decode tokens/s of the whole batch (every sequence's tokens), prefill removed, from the
    `statistic` (median by default; `min` for best-of-repeats) of the 1-token and n-token times."""
    return timings["batch"] * decode_rate(statistic(timings["one_token_s"]), statistic(timings["n_tokens_s"]),
                                          timings["n_tokens"])


def decode_rate_spread(timings: dict) -> dict:
    """Per-repeat batch decode rates (repeat i's one-token run against its n-token run)."""
    rates = [timings["batch"] * (timings["n_tokens"] - 1) / (many - one)
             for one, many in zip(timings["one_token_s"], timings["n_tokens_s"], strict=True) if many > one]
    return spread(rates) if rates else {}


# --------------------------------------------------------------------------- machine

def cpu_flags() -> set[str]:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def machine_info() -> dict:
    import psutil

    from llmserve.course.session import _gpu_name, engine_versions
    cpu_model = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    flags = cpu_flags()
    return {"cpu": cpu_model or platform.machine(), "cores": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1), "gpu": _gpu_name(),
            "cpu_bf16": sorted(flags & {"avx512_bf16", "amx_bf16"}),
            "python": platform.python_version(), "platform": platform.platform(),
            "versions": engine_versions()}


# --------------------------------------------------------------------------- plots

def bar_plot(path: Path, labels: list[str], values: list[float], ylabel: str, title: str) -> str:
    """One bar per value, labelled with its figure; returns the file name."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    bars = ax.bar(labels, values, color=["#8da0cb", "#66c2a5", "#fc8d62", "#e78ac3"][:len(values)])
    ax.bar_label(bars, fmt=lambda v: f"{v:,.0f}" if v >= 1000 else f"{v:.3g}", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name
