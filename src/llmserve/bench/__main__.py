"""`make bench`: the course's headline ratios, measured side by side in one run on the course model.

    python -m llmserve.bench                 # everything, profile from COURSE_PROFILE / auto-detect
    python -m llmserve.bench --only roofline throughput
    python -m llmserve.bench --out /tmp/bench

Writes `<out>/results.json` (machine, profile, versions, every raw timing) and one PNG per
benchmark. Ratios only mean something within one run: every method in a ratio is measured in the
same process, on the same prompts, one after the other, never against a number from elsewhere.
This is a benchmark, not a test: nothing here asserts a speed.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from llmserve.course.config import REPO_ROOT, config

# Sizes per profile (the code path never changes). `prompts` x `new_tokens` is the equal work of
# the throughput comparison (vLLM may run all prompts at once: max_num_seqs = prompts, as the one
# static HF batch does); `mixed_requests` requests through `max_num_seqs` slots make continuous
# batching visible; `prefix_words` sizes the shared system prompt.
BENCH_SIZES: dict[str, dict[str, int]] = {
    "ci": {"prompts": 8, "new_tokens": 32, "mixed_requests": 16, "max_num_seqs": 8, "prefix_words": 600,
           "repeats": 2, "bandwidth_mib": 256, "spec_tokens": 64},
    "cpu": {"prompts": 16, "new_tokens": 64, "mixed_requests": 32, "max_num_seqs": 16, "prefix_words": 900,
            "repeats": 3, "bandwidth_mib": 1024, "spec_tokens": 128},
    "gpu": {"prompts": 64, "new_tokens": 128, "mixed_requests": 192, "max_num_seqs": 64, "prefix_words": 1500,
            "repeats": 5, "bandwidth_mib": 2048, "spec_tokens": 256},
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


def mixed_output_lengths(count: int, longest: int) -> list[int]:
    """A deterministic spread of output lengths (1/8 .. 1/1 of `longest`), the mix that makes
    static batching wait for its longest member while continuous batching refills freed slots."""
    if count < 1 or longest < 8:
        raise ValueError("need count >= 1 and longest >= 8")
    pattern = [1, 8, 2, 4, 1, 6, 3, 8]  # eighths of `longest`
    return [max(1, longest * pattern[i % len(pattern)] // 8) for i in range(count)]


def static_batches(items: list, batch_size: int) -> list[list]:
    """Consecutive groups of `batch_size` (the last may be shorter)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    return [items[i:i + batch_size] for i in range(0, len(items), batch_size)]


def shared_prefix_text(words: int) -> str:
    """A long, real system prompt: the first `words` words of the course's theory file 2.1."""
    text = (REPO_ROOT / "01-Theory" / "2.1-Inference_Engines.md").read_text(encoding="utf-8")
    chosen = text.split()[:words]
    if len(chosen) < words:
        raise ValueError(f"the theory file has only {len(chosen)} words")
    return "Answer questions about the following course notes.\n\n" + " ".join(chosen)


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def median_of(timings: list[float]) -> float:
    return statistics.median(timings)


def decode_rate(seconds_one_token: float, seconds_n_tokens: float, n_tokens: int) -> float:
    """Decode tokens/s with the prefill taken out: (n - 1) extra tokens in the extra time."""
    extra = seconds_n_tokens - seconds_one_token
    if n_tokens < 2 or extra <= 0:
        raise ValueError("need n_tokens >= 2 and a longer run for n tokens than for one")
    return (n_tokens - 1) / extra


def machine_info() -> dict:
    import psutil

    from llmserve.course.session import _gpu_name, engine_versions
    cpu_model = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {"cpu": cpu_model or platform.machine(), "cores": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1), "gpu": _gpu_name(),
            "python": platform.python_version(), "platform": platform.platform(),
            "versions": engine_versions()}


# --------------------------------------------------------------------------- measurements

def measure_bandwidth(size_mib: int, repeats: int = 5) -> dict:
    """Read bandwidth (bytes/s) of summing a tensor much larger than the caches, best of `repeats`,
    with one thread and with all threads torch uses."""
    import torch

    x = torch.ones(size_mib * 2**20 // 4, dtype=torch.float32)
    result = {"bytes": x.numel() * 4}
    threads_before = torch.get_num_threads()
    try:
        for label, threads in (("one_thread", 1), ("all_threads", threads_before)):
            torch.set_num_threads(threads)
            x.sum()  # warm-up
            times = []
            for _ in range(repeats):
                began = time.perf_counter()
                x.sum()
                times.append(time.perf_counter() - began)
            result[label] = {"threads": threads, "seconds": times, "bytes_per_s": result["bytes"] / min(times)}
    finally:
        torch.set_num_threads(threads_before)
    return result


def run_hf(sizes: dict) -> dict:
    """HF naive loop, HF static batching and HF batch-1 decode rate on the bench prompts."""
    import torch

    from llmserve.measure.hf_baseline import chat_prompt_ids, hf_generate, load_model
    model, tokenizer = load_model()
    try:
        ids = chat_prompt_ids(tokenizer, [QUESTIONS[i % len(QUESTIONS)] for i in range(sizes["prompts"])])
        n = sizes["new_tokens"]
        hf_generate(model, tokenizer, ids[:1], max_new_tokens=2)  # warm-up
        naive = hf_generate(model, tokenizer, ids, max_new_tokens=n, batch_size=1, progress=True)
        static = hf_generate(model, tokenizer, ids, max_new_tokens=n, batch_size=len(ids), progress=True)
        one, many = [], []
        for _ in range(sizes["repeats"]):
            one.append(hf_generate(model, tokenizer, ids[:1], max_new_tokens=1).seconds)
            many.append(hf_generate(model, tokenizer, ids[:1], max_new_tokens=n).seconds)
        params = sum(p.numel() for p in model.parameters())
        weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        return {"prompt_ids": ids, "naive": naive, "static": static, "one_token_s": one, "n_tokens_s": many,
                "threads": torch.get_num_threads(), "params": params, "weight_bytes": weight_bytes}
    finally:
        del model
        gc.collect()


def _generate_timed(llm, prompts, params) -> tuple[float, list]:
    began = time.perf_counter()
    outputs = llm.generate(prompts, params, use_tqdm=False)
    return time.perf_counter() - began, outputs


def _tokens_prompts(ids):
    return [{"prompt_token_ids": list(x)} for x in ids]


def run_vllm_main(sizes: dict, prompt_ids: list[list[int]]) -> dict:
    """One engine: equal-work throughput, batch-1 decode, continuous vs static batching, prefix caching."""
    from vllm import SamplingParams

    from llmserve.servers import kv_cache_report, offline_engine
    n, repeats = sizes["new_tokens"], sizes["repeats"]
    out: dict = {}
    with offline_engine(max_num_seqs=sizes["max_num_seqs"], enable_prefix_caching=True) as llm:
        out["startup_s"] = llm.startup_seconds
        out["kv_cache_tokens"] = kv_cache_report(llm).capacity_tokens
        equal = SamplingParams(temperature=0, max_tokens=n, ignore_eos=True)
        prompts = _tokens_prompts(prompt_ids)
        _generate_timed(llm, prompts[:1], SamplingParams(temperature=0, max_tokens=2))  # warm-up
        # Equal work with the HF runs: same token ids, same new tokens. max_num_seqs caps how many
        # run at once, so the comparison with one static HF batch of all prompts is stated in the JSON.
        seconds, outputs = _generate_timed(llm, prompts, equal)
        out["throughput"] = {"seconds": seconds, "generated_tokens": sum(len(o.outputs[0].token_ids) for o in outputs)}
        # Batch-1 decode rate: one prompt, one token vs n tokens.
        one, many = [], []
        for _ in range(repeats):
            one.append(_generate_timed(llm, prompts[:1], SamplingParams(temperature=0, max_tokens=1,
                                                                         ignore_eos=True))[0])
            many.append(_generate_timed(llm, prompts[:1], equal)[0])
        out["decode"] = {"one_token_s": one, "n_tokens_s": many, "n_tokens": n}
        # Continuous vs static batching on the same engine: mixed output lengths, max_num_seqs slots.
        lengths = mixed_output_lengths(sizes["mixed_requests"], 2 * n)
        mixed_prompts = [prompts[i % len(prompts)] for i in range(len(lengths))]
        mixed_params = [SamplingParams(temperature=0, max_tokens=m, ignore_eos=True) for m in lengths]
        cont, stat = [], []
        for _ in range(repeats):
            cont.append(_generate_timed(llm, mixed_prompts, mixed_params)[0])
            began = time.perf_counter()
            for group_p, group_s in zip(static_batches(mixed_prompts, sizes["max_num_seqs"]),
                                        static_batches(mixed_params, sizes["max_num_seqs"]), strict=True):
                # A static batch: everyone gets the longest member's length, as a padded batch would.
                longest = max(s.max_tokens for s in group_s)
                llm.generate(group_p, SamplingParams(temperature=0, max_tokens=longest, ignore_eos=True),
                             use_tqdm=False)
            stat.append(time.perf_counter() - began)
        out["continuous"] = {"lengths": lengths, "slots": sizes["max_num_seqs"], "continuous_s": cont,
                             "static_s": stat}
        # Prefix caching: time to first token (max_tokens=1) with a long shared system prompt.
        tokenizer = llm.get_tokenizer()
        system = shared_prefix_text(sizes["prefix_words"])

        def chat_ids(question):
            return {"prompt_token_ids": list(tokenizer.apply_chat_template(
                [{"role": "system", "content": system}, {"role": "user", "content": question}],
                tokenize=True, add_generation_prompt=True, return_dict=False))}
        first_token = SamplingParams(temperature=0, max_tokens=1)
        cold, warm = [], []
        for r in range(repeats):
            llm.reset_prefix_cache()
            cold.append(_generate_timed(llm, [chat_ids(f"Question {r}: what is the KV cache?")], first_token)[0])
            warm.append(_generate_timed(llm, [chat_ids(f"Question {r}: what is decode?")], first_token)[0])
        out["prefix"] = {"prompt_tokens": len(chat_ids("x")["prompt_token_ids"]), "cold_s": cold, "warm_s": warm}
        # Baseline for n-gram speculative decoding: an input-grounded task (copy a passage).
        out["grounded"] = _grounded_run(llm, tokenizer, sizes)
    return out


def _grounded_prompts(tokenizer, sizes) -> list[dict]:
    text = (REPO_ROOT / "01-Theory" / "2.2-Serving_and_Optimization.md").read_text(encoding="utf-8").split()
    prompts = []
    for i in range(4):
        passage = " ".join(text[200 + 150 * i: 200 + 150 * i + 120])
        prompts.append({"prompt_token_ids": list(tokenizer.apply_chat_template(
            [{"role": "user", "content": f"Repeat the following passage word for word.\n\n{passage}"}],
            tokenize=True, add_generation_prompt=True, return_dict=False))})
    return prompts


def _grounded_run(llm, tokenizer, sizes) -> dict:
    from vllm import SamplingParams
    prompts = _grounded_prompts(tokenizer, sizes)
    params = SamplingParams(temperature=0, max_tokens=sizes["spec_tokens"], ignore_eos=True)
    times, outputs = [], None
    for _ in range(sizes["repeats"]):
        seconds, outputs = _generate_timed(llm, prompts, params)
        times.append(seconds)
    return {"seconds": times, "generated_tokens": sum(len(o.outputs[0].token_ids) for o in outputs),
            "token_ids": [list(o.outputs[0].token_ids) for o in outputs]}


def run_vllm_ngram(sizes: dict, num_speculative_tokens: int = 4) -> dict:
    """A second engine with n-gram (prompt-lookup) speculative decoding, same grounded workload."""
    from llmserve.measure.prometheus_text import metric_total  # noqa: F401  (names documented in metrics.py)
    from llmserve.servers import offline_engine
    spec = {"method": "ngram", "num_speculative_tokens": num_speculative_tokens,
            "prompt_lookup_max": 4, "prompt_lookup_min": 2}
    with offline_engine(max_num_seqs=sizes["max_num_seqs"], speculative_config=spec,
                        disable_log_stats=False) as llm:
        run = _grounded_run(llm, llm.get_tokenizer(), sizes)
        counters = {}
        for metric in llm.get_metrics():
            if metric.name.startswith("vllm:spec_decode_num") and hasattr(metric, "value"):
                counters[metric.name] = metric.value
        run["spec_counters"] = counters
        run["config"] = spec
        run["startup_s"] = llm.startup_seconds
    return run


# --------------------------------------------------------------------------- assembling entries

def throughput_entry(hf: dict, vllm_run: dict, sizes: dict) -> Entry:
    naive, static = hf["naive"], hf["static"]
    v = vllm_run["throughput"]
    v_tps = v["generated_tokens"] / v["seconds"]
    entry = Entry("throughput", "vLLM vs the HF naive loop and HF static batching: same token ids, "
                  "same number of new tokens (greedy, EOS ignored), tokens/s.")
    entry.summary = {"hf_naive_tok_s": naive.tokens_per_s, "hf_static_tok_s": static.tokens_per_s,
                     "vllm_tok_s": v_tps, "vllm_over_naive": ratio(v_tps, naive.tokens_per_s),
                     "vllm_over_static": ratio(v_tps, static.tokens_per_s)}
    entry.raw = {"prompts": sizes["prompts"], "new_tokens": sizes["new_tokens"],
                 "hf_threads": hf["threads"], "vllm_max_num_seqs": sizes["max_num_seqs"],
                 "hf_naive": {"seconds": naive.seconds, "tokens": naive.generated_tokens},
                 "hf_static": {"seconds": static.seconds, "tokens": static.generated_tokens,
                               "batch_size": static.batch_size},
                 "vllm": v, "vllm_startup_s": vllm_run["startup_s"]}
    if not (naive.generated_tokens == static.generated_tokens == v["generated_tokens"]):
        entry.error = "unequal work: the three methods generated different token counts"
    return entry


def continuous_entry(vllm_run: dict) -> Entry:
    c = vllm_run["continuous"]
    from llmserve.teach.formulas import static_batch_padding_waste
    waste = [static_batch_padding_waste(g) for g in static_batches(c["lengths"], c["slots"])]
    entry = Entry("continuous_batching", "One engine, mixed output lengths, the same number of slots: all "
                  "requests at once (continuous batching refills a slot when a request finishes) vs static "
                  "batches that each run as long as their longest member.")
    entry.summary = {"continuous_s": median_of(c["continuous_s"]), "static_s": median_of(c["static_s"]),
                     "gain": ratio(median_of(c["static_s"]), median_of(c["continuous_s"])),
                     "static_padding_waste": statistics.mean(waste)}
    entry.raw = c
    return entry


def prefix_entry(vllm_run: dict) -> Entry:
    p = vllm_run["prefix"]
    entry = Entry("prefix_caching", "Time to first token (max_tokens=1) of a chat request with a long shared "
                  "system prompt: cache reset (cold) vs the same prefix already cached (warm).")
    entry.summary = {"prompt_tokens": p["prompt_tokens"], "ttft_cold_s": median_of(p["cold_s"]),
                     "ttft_warm_s": median_of(p["warm_s"]),
                     "cold_over_warm": ratio(median_of(p["cold_s"]), median_of(p["warm_s"]))}
    entry.raw = p
    return entry


def ngram_entry(baseline: dict, spec: dict) -> Entry:
    base_tps = baseline["generated_tokens"] / median_of(baseline["seconds"])
    spec_tps = spec["generated_tokens"] / median_of(spec["seconds"])
    same = sum(a == b for a, b in zip(baseline["token_ids"], spec["token_ids"], strict=True))
    counters = spec["spec_counters"]
    drafted = counters.get("vllm:spec_decode_num_draft_tokens")
    accepted = counters.get("vllm:spec_decode_num_accepted_tokens")
    entry = Entry("speculative_ngram", "vLLM n-gram (prompt lookup) speculative decoding on an input-grounded "
                  "task (repeat a passage), greedy, against the same engine settings without it.")
    entry.summary = {"baseline_tok_s": base_tps, "ngram_tok_s": spec_tps, "speedup": ratio(spec_tps, base_tps),
                     "acceptance_rate": ratio(accepted, drafted) if drafted else None,
                     "identical_outputs": f"{same}/{len(spec['token_ids'])}"}
    entry.raw = {"baseline": {k: v for k, v in baseline.items() if k != "token_ids"},
                 "ngram": {k: v for k, v in spec.items() if k != "token_ids"}}
    return entry


def roofline_entry(bandwidth: dict, hf: dict, vllm_run: dict) -> Entry:
    from llmserve.teach.formulas import decode_tokens_per_s_upper_bound
    n = vllm_run["decode"]["n_tokens"]
    hf_rate = decode_rate(median_of(hf["one_token_s"]), median_of(hf["n_tokens_s"]), n)
    v_rate = decode_rate(median_of(vllm_run["decode"]["one_token_s"]),
                         median_of(vllm_run["decode"]["n_tokens_s"]), n)
    # Bytes read per decode step at batch 1: every weight once (the tied embedding matrix is read
    # in full by the output projection). The KV cache adds 46 kB per context token: negligible here.
    step_bytes = hf["weight_bytes"]
    best = max(bandwidth["one_thread"]["bytes_per_s"], bandwidth["all_threads"]["bytes_per_s"])
    bound = decode_tokens_per_s_upper_bound(best, step_bytes)
    entry = Entry("roofline", "Batch-1 decode tokens/s against the memory-bandwidth ceiling of this machine: "
                  "measured read bandwidth (best of one thread and all threads) / bytes of weights read "
                  "per generated token.")
    entry.summary = {"bandwidth_gb_s": best / 1e9, "bytes_per_token": step_bytes, "bound_tok_s": bound,
                     "hf_decode_tok_s": hf_rate, "vllm_decode_tok_s": v_rate,
                     "hf_fraction_of_bound": hf_rate / bound, "vllm_fraction_of_bound": v_rate / bound}
    entry.raw = {"bandwidth": bandwidth, "hf": {"one_token_s": hf["one_token_s"], "n_tokens_s": hf["n_tokens_s"],
                                                "threads": hf["threads"]},
                 "vllm": vllm_run["decode"], "params": hf["params"]}
    return entry


# --------------------------------------------------------------------------- plots

def plot_entry(entry: Entry, out_dir: Path) -> str | None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = entry.summary
    if entry.error or not s:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    if entry.name == "throughput":
        labels, values = ["HF naive loop", "HF static batch", "vLLM"], [s["hf_naive_tok_s"], s["hf_static_tok_s"],
                                                                         s["vllm_tok_s"]]
        ax.set_ylabel("generated tokens/s")
        ax.set_title(f"Equal work: vLLM {s['vllm_over_naive']:.1f}x the naive loop, "
                     f"{s['vllm_over_static']:.1f}x static batching", fontsize=10)
    elif entry.name == "continuous_batching":
        labels, values = ["static batches", "continuous"], [s["static_s"], s["continuous_s"]]
        ax.set_ylabel("seconds to finish all requests")
        ax.set_title(f"Mixed output lengths: continuous batching {s['gain']:.2f}x faster", fontsize=10)
    elif entry.name == "prefix_caching":
        labels, values = ["cold (cache reset)", "warm (prefix cached)"], [s["ttft_cold_s"] * 1000,
                                                                          s["ttft_warm_s"] * 1000]
        ax.set_ylabel("time to first token (ms)")
        ax.set_title(f"{s['prompt_tokens']}-token prompt: prefix caching cuts TTFT "
                     f"{s['cold_over_warm']:.1f}x", fontsize=10)
    elif entry.name == "speculative_ngram":
        labels, values = ["no speculation", "n-gram speculation"], [s["baseline_tok_s"], s["ngram_tok_s"]]
        ax.set_ylabel("generated tokens/s")
        acc = s["acceptance_rate"]
        ax.set_title(f"Copy task: speedup {s['speedup']:.2f}x"
                     + (f", acceptance {acc:.0%}" if acc is not None else ""), fontsize=10)
    elif entry.name == "roofline":
        labels = ["bandwidth ceiling", "HF decode", "vLLM decode"]
        values = [s["bound_tok_s"], s["hf_decode_tok_s"], s["vllm_decode_tok_s"]]
        ax.set_ylabel("batch-1 decode tokens/s")
        ax.set_title(f"Batch-1 decode vs the ceiling: {s['bandwidth_gb_s']:.1f} GB/s / "
                     f"{s['bytes_per_token'] / 1e6:.0f} MB per token", fontsize=10)
    elif entry.name == "speculative_teaching":
        plt.close(fig)
        return _plot_speculative_teaching(entry, out_dir)
    elif entry.name == "quantization":
        plt.close(fig)
        return _plot_quantization(entry, out_dir)
    else:
        plt.close(fig)
        return None
    bars = ax.bar(labels, values, color=["#8da0cb", "#66c2a5", "#fc8d62", "#e78ac3"][:len(values)])
    ax.bar_label(bars, fmt=lambda v: f"{v:,.0f}" if v >= 1000 else f"{v:.3g}", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    path = out_dir / f"{entry.name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name




# --------------------------------------------------------------------------- driver

ALL = ("roofline", "throughput", "continuous_batching", "prefix_caching", "speculative_ngram",
       "speculative_teaching", "quantization")


def _guard(entries: list[Entry], name: str, description: str, fn: Callable[[], Entry | None]) -> None:
    began = time.perf_counter()
    try:
        entry = fn()
    except Exception as exc:  # one failing benchmark must not hide the others
        entry = Entry(name, description, error=f"{type(exc).__name__}: {exc}")
        traceback.print_exc()
    if entry is not None:
        entry.seconds = time.perf_counter() - began
        entries.append(entry)


def run(selected: tuple[str, ...] = ALL, out_dir: Path | None = None) -> dict:
    cfg = config()
    sizes = BENCH_SIZES[cfg.profile]
    out_dir = Path(out_dir or REPO_ROOT / "bench")
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    entries: list[Entry] = []
    print(f"make bench: profile {cfg.profile}, sizes {sizes}", flush=True)

    need_vllm = {"throughput", "continuous_batching", "prefix_caching", "roofline", "speculative_ngram"} & set(selected)
    need_hf = {"throughput", "roofline"} & set(selected)
    state: dict = {}
    # Order: quiet measurements first (bandwidth, HF), then engines, one at a time.
    if "roofline" in selected:
        print("· memory bandwidth", flush=True)
        state["bandwidth"] = measure_bandwidth(sizes["bandwidth_mib"])
    if need_hf:
        print("· transformers baselines", flush=True)
        _guard(entries, "hf", "HF baselines", lambda: state.update(hf=run_hf(sizes)))
    for name in ("speculative_teaching", "quantization"):
        if name in selected and name in PLUGINS:
            print(f"· {name}", flush=True)
            _guard(entries, name, name, lambda name=name: PLUGINS[name](sizes))
    if need_vllm:
        print("· vLLM engine (baseline settings)", flush=True)
        ids = state["hf"]["prompt_ids"] if "hf" in state else None
        if ids is None:
            from transformers import AutoTokenizer

            from llmserve.course.assets import model_path
            from llmserve.measure.hf_baseline import chat_prompt_ids
            ids = chat_prompt_ids(AutoTokenizer.from_pretrained(model_path()),
                                  [QUESTIONS[i % len(QUESTIONS)] for i in range(sizes["prompts"])])
        _guard(entries, "vllm", "vLLM main engine", lambda: state.update(vllm=run_vllm_main(sizes, ids)))
    if "vllm" in state:
        if "throughput" in selected and "hf" in state:
            _guard(entries, "throughput", "", lambda: throughput_entry(state["hf"], state["vllm"], sizes))
        if "continuous_batching" in selected:
            _guard(entries, "continuous_batching", "", lambda: continuous_entry(state["vllm"]))
        if "prefix_caching" in selected:
            _guard(entries, "prefix_caching", "", lambda: prefix_entry(state["vllm"]))
        if "roofline" in selected and "hf" in state:
            _guard(entries, "roofline", "", lambda: roofline_entry(state["bandwidth"], state["hf"], state["vllm"]))
        if "speculative_ngram" in selected:
            print("· vLLM engine with n-gram speculative decoding", flush=True)
            _guard(entries, "speculative_ngram", "vLLM n-gram speculative decoding",
                   lambda: ngram_entry(state["vllm"]["grounded"], run_vllm_ngram(sizes)))

    for entry in entries:
        with contextlib.suppress(Exception):
            entry.plot = plot_entry(entry, out_dir)
    results = {"meta": {"profile": cfg.profile, "sizes": sizes, "machine": machine_info(),
                        "model": str(cfg.model_dir), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z",
                                                                              time.localtime(started)),
                        "seconds": time.time() - started},
               "benchmarks": {e.name: {"description": e.description, "summary": e.summary, "raw": e.raw,
                                       "seconds": e.seconds, "error": e.error, "plot": e.plot}
                              for e in entries}}
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, default=_jsonable), encoding="utf-8")
    return results


def _jsonable(value):
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict
        return asdict(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def run_speculative_teaching(sizes: dict) -> Entry:
    """The course's draft-then-verify implementation (llmserve.teach.speculative) with transformers: the
    target alone vs speculative decoding with an early-exit draft and with prompt lookup, greedy, on
    the copy-the-passage prompts; every speculative output must equal the target's."""
    from llmserve.measure.hf_baseline import load_model
    from llmserve.teach.formulas import speculative_speedup
    from llmserve.teach.speculative import (
        CausalLMScorer,
        PromptLookupDraft,
        autoregressive_generate,
        first_layers_draft,
        speculative_generate,
    )
    gamma, new_tokens = 4, sizes["new_tokens"]
    model, tokenizer = load_model()
    try:
        prompts = [p["prompt_token_ids"] for p in _grounded_prompts(tokenizer, sizes)][:2]
        eos = tokenizer.eos_token_id
        target = CausalLMScorer(model)
        autoregressive_generate(target, prompts[0], 4)  # warm-up

        def target_alone() -> tuple[float, list[list[int]]]:
            began = time.perf_counter()
            out = [autoregressive_generate(target, ids, new_tokens, eos_token_id=eos) for ids in prompts]
            return time.perf_counter() - began, out

        target_s, reference = target_alone()
        layers = model.config.num_hidden_layers
        drafts = {f"early exit ({2 * layers // 3} of {layers} layers)":
                  CausalLMScorer(first_layers_draft(model, 2 * layers // 3)),
                  "prompt lookup": PromptLookupDraft(model.config.vocab_size, min_ngram=2, max_ngram=4)}
        entry = Entry("speculative_teaching", "llmserve.teach.speculative (draft, then verify with the target) on "
                      f"transformers, greedy, gamma={gamma}, copy-the-passage prompts: target alone vs two drafts, "
                      "each draft timed right after a fresh target-alone run (side by side).")
        entry.raw = {"gamma": gamma, "prompts": len(prompts), "new_tokens": new_tokens,
                     "target_tokens": sum(map(len, reference)), "drafts": {}}
        for name, draft in drafts.items():
            target_s, reference = target_alone()
            step_s = target_s / sum(map(len, reference))
            began = time.perf_counter()
            results = [speculative_generate(target, draft, ids, new_tokens, gamma, eos_token_id=eos)
                       for ids in prompts]
            seconds = time.perf_counter() - began
            identical = sum(tokens == want for (tokens, _), want in zip(results, reference, strict=True))
            drafted = sum(st.drafted for _, st in results)
            accepted = sum(st.accepted for _, st in results)
            draft_s = sum(st.draft_seconds for _, st in results)
            alpha = accepted / drafted if drafted else 0.0
            c = (draft_s / drafted) / step_s if drafted else 0.0
            entry.raw["drafts"][name] = {"target_alone_s": target_s, "seconds": seconds, "drafted": drafted,
                                         "accepted": accepted,
                                         "draft_seconds": draft_s, "identical_outputs": identical}
            key = "early_exit" if name.startswith("early") else "prompt_lookup"
            entry.summary[f"{key}_alpha"] = alpha
            entry.summary[f"{key}_speedup"] = target_s / seconds
            entry.summary[f"{key}_theory_speedup"] = speculative_speedup(min(alpha, 0.999999), gamma, c)
            if identical != len(prompts):
                entry.error = f"{name}: only {identical}/{len(prompts)} outputs equal the target's greedy output"
        return entry
    finally:
        del model
        gc.collect()


def run_quantization(sizes: dict) -> Entry:
    """fp32 vs LLM.int8 vs NF4 with bitsandbytes: model memory, perplexity on the shipped text, batch-1
    decode tokens/s (llmserve.measure.quantization)."""
    from transformers import AutoTokenizer

    from llmserve.course.assets import model_path
    from llmserve.measure.quantization import (
        decode_tokens_per_s,
        encode_text,
        load_variant,
        perplexity,
        read_eval_text,
    )
    tokenizer = AutoTokenizer.from_pretrained(model_path())
    ids = encode_text(tokenizer, read_eval_text())[:4 * sizes["prefix_words"] // 3]
    prompt = encode_text(tokenizer, "The history of the printing press")
    entry = Entry("quantization", "The course model in fp32, LLM.int8 and NF4 (bitsandbytes): memory footprint, "
                  f"perplexity on {len(ids)} tokens of the shipped public-domain text (windows of 256, stride 128), "
                  "batch-1 decode tokens/s.")
    for variant in ("fp32", "int8", "nf4"):
        loaded = load_variant(variant)
        try:
            ppl = perplexity(loaded.model, ids, max_length=256, stride=128)
            speed = decode_tokens_per_s(loaded.model, tokenizer, prompt, sizes["new_tokens"])
            entry.raw[variant] = {"footprint_bytes": loaded.footprint_bytes, "rss_delta_bytes": loaded.rss_delta_bytes,
                                  "load_seconds": loaded.load_seconds, "nll_sum": ppl.nll_sum,
                                  "scored_tokens": ppl.scored_tokens, "perplexity_seconds": ppl.seconds,
                                  "decode_tok_s": speed, "layer_types": loaded.layer_types}
            entry.summary[f"{variant}_footprint_mib"] = loaded.footprint_mib
            entry.summary[f"{variant}_perplexity"] = ppl.perplexity
            entry.summary[f"{variant}_decode_tok_s"] = speed
        finally:
            del loaded
            gc.collect()
    for variant in ("int8", "nf4"):
        entry.summary[f"{variant}_memory_ratio"] = (entry.summary[f"{variant}_footprint_mib"]
                                                    / entry.summary["fp32_footprint_mib"])
        entry.summary[f"{variant}_perplexity_delta"] = (entry.summary[f"{variant}_perplexity"]
                                                        - entry.summary["fp32_perplexity"])
    return entry


def _plot_speculative_teaching(entry: Entry, out_dir: Path) -> str:
    import matplotlib.pyplot as plt
    s = entry.summary
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    names = ["early exit", "prompt lookup"]
    measured = [s["early_exit_speedup"], s["prompt_lookup_speedup"]]
    theory = [s["early_exit_theory_speedup"], s["prompt_lookup_theory_speedup"]]
    xs = range(len(names))
    b1 = ax.bar([x - 0.2 for x in xs], measured, 0.4, label="measured", color="#66c2a5")
    b2 = ax.bar([x + 0.2 for x in xs], theory, 0.4, label="theory (measured alpha, c)", color="#8da0cb")
    ax.bar_label(b1, fmt="%.2f", fontsize=8)
    ax.bar_label(b2, fmt="%.2f", fontsize=8)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xticks(list(xs), [f"{n}\nalpha={s[k + '_alpha']:.2f}" for n, k in
                             zip(names, ["early_exit", "prompt_lookup"], strict=True)])
    ax.set_ylabel("speedup over the target alone")
    ax.set_title(f"Draft-then-verify, gamma={entry.raw['gamma']} (greedy, copy task)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "speculative_teaching.png", dpi=110)
    plt.close(fig)
    return "speculative_teaching.png"


def _plot_quantization(entry: Entry, out_dir: Path) -> str:
    import matplotlib.pyplot as plt
    s = entry.summary
    variants = ["fp32", "int8", "nf4"]
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.4))
    for ax, key, label in zip(axes, ["footprint_mib", "perplexity", "decode_tok_s"],
                              ["model memory (MiB)", "perplexity (lower is better)", "batch-1 decode tokens/s"],
                              strict=True):
        bars = ax.bar(variants, [s[f"{v}_{key}"] for v in variants], color=["#8da0cb", "#66c2a5", "#fc8d62"])
        ax.bar_label(bars, fmt="%.3g", fontsize=8)
        ax.set_title(label, fontsize=9)
    fig.suptitle("Quantization with bitsandbytes on this machine", fontsize=10)
    fig.tight_layout()
    fig.savefig(out_dir / "quantization.png", dpi=110)
    plt.close(fig)
    return "quantization.png"


PLUGINS: dict[str, Callable[[dict], Entry]] = {"speculative_teaching": run_speculative_teaching,
                                               "quantization": run_quantization}


def format_summary(results: dict) -> str:
    lines = [f"profile {results['meta']['profile']}, {results['meta']['seconds']:.0f} s"]
    for name, b in results["benchmarks"].items():
        if b["error"]:
            lines.append(f"  {name:22s} ERROR {b['error']}")
            continue
        figures = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in b["summary"].items())
        lines.append(f"  {name:22s} {figures}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=ALL, default=list(ALL))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    results = run(tuple(args.only), args.out)
    print(format_summary(results))
    print(f"written: {(args.out or REPO_ROOT / 'bench') / 'results.json'}")
    return 1 if any(b["error"] for b in results["benchmarks"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
