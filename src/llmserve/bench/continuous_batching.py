"""Entry `continuous_batching`: one engine, mixed output lengths through the same number of slots.

All requests at once (continuous batching refills a slot as soon as a request finishes) against
static batches of `max_num_seqs` requests that each run as long as their longest member, as a
padded batch would. Runs on the driver's shared course-default engine.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

from llmserve.bench.common import Entry, bar_plot, generate_timed, median_of, ratio, tokens_prompts

NAME = "continuous_batching"
DESCRIPTION = ("One engine, mixed output lengths, the same number of slots: all requests at once (continuous "
               "batching refills a slot when a request finishes) vs static batches that each run as long as "
               "their longest member.")


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


def measure_vllm(llm, prompt_ids: list[list[int]], sizes: dict) -> dict:
    from vllm import SamplingParams
    prompts = tokens_prompts(prompt_ids)
    lengths = mixed_output_lengths(sizes["mixed_requests"], 2 * sizes["new_tokens"])
    mixed_prompts = [prompts[i % len(prompts)] for i in range(len(lengths))]
    mixed_params = [SamplingParams(temperature=0, max_tokens=m, ignore_eos=True) for m in lengths]
    cont, stat = [], []
    for _ in range(sizes["repeats"]):
        cont.append(generate_timed(llm, mixed_prompts, mixed_params)[0])
        began = time.perf_counter()
        for group_p, group_s in zip(static_batches(mixed_prompts, sizes["max_num_seqs"]),
                                    static_batches(mixed_params, sizes["max_num_seqs"]), strict=True):
            # A static batch: everyone gets the longest member's length, as a padded batch would.
            longest = max(s.max_tokens for s in group_s)
            llm.generate(group_p, SamplingParams(temperature=0, max_tokens=longest, ignore_eos=True),
                         use_tqdm=False)
        stat.append(time.perf_counter() - began)
    return {"lengths": lengths, "slots": sizes["max_num_seqs"], "continuous_s": cont, "static_s": stat}


def build(c: dict) -> Entry:
    from llmserve.teach.formulas import static_batch_padding_waste
    waste = [static_batch_padding_waste(g) for g in static_batches(c["lengths"], c["slots"])]
    entry = Entry(NAME, DESCRIPTION)
    entry.summary = {"continuous_s": median_of(c["continuous_s"]), "static_s": median_of(c["static_s"]),
                     "gain": ratio(median_of(c["static_s"]), median_of(c["continuous_s"])),
                     "static_padding_waste": statistics.mean(waste)}
    entry.raw = c
    return entry


def plot(entry: Entry, out_dir: Path) -> str | None:
    s = entry.summary
    return bar_plot(out_dir / f"{NAME}.png", ["static batches", "continuous"], [s["static_s"], s["continuous_s"]],
                    "seconds to finish all requests",
                    f"Mixed output lengths: continuous batching {s['gain']:.2f}x faster")
