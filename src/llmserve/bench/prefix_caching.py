"""Entry `prefix_caching`: time to first token with a long shared system prompt, cache reset (cold)
vs the same prefix already cached (warm), on the driver's shared engine (prefix caching on)."""
from __future__ import annotations

from pathlib import Path

from llmserve.bench.common import Entry, bar_plot, generate_timed, median_of, ratio, shared_prefix_text

NAME = "prefix_caching"
DESCRIPTION = ("Time to first token (max_tokens=1) of a chat request with a long shared system prompt: cache "
               "reset (cold) vs the same prefix already cached (warm).")


def measure_vllm(llm, sizes: dict) -> dict:
    from vllm import SamplingParams
    tokenizer = llm.get_tokenizer()
    system = shared_prefix_text(sizes["prefix_words"])

    def chat_ids(question):
        return {"prompt_token_ids": list(tokenizer.apply_chat_template(
            [{"role": "system", "content": system}, {"role": "user", "content": question}],
            tokenize=True, add_generation_prompt=True, return_dict=False))}
    first_token = SamplingParams(temperature=0, max_tokens=1)
    cold, warm = [], []
    for r in range(sizes["repeats"]):
        llm.reset_prefix_cache()
        cold.append(generate_timed(llm, [chat_ids(f"Question {r}: what is the KV cache?")], first_token)[0])
        warm.append(generate_timed(llm, [chat_ids(f"Question {r}: what is decode?")], first_token)[0])
    return {"prompt_tokens": len(chat_ids("x")["prompt_token_ids"]), "cold_s": cold, "warm_s": warm}


def build(p: dict) -> Entry:
    entry = Entry(NAME, DESCRIPTION)
    entry.summary = {"prompt_tokens": p["prompt_tokens"], "ttft_cold_s": median_of(p["cold_s"]),
                     "ttft_warm_s": median_of(p["warm_s"]),
                     "cold_over_warm": ratio(median_of(p["cold_s"]), median_of(p["warm_s"]))}
    entry.raw = p
    return entry


def plot(entry: Entry, out_dir: Path) -> str | None:
    s = entry.summary
    return bar_plot(out_dir / f"{NAME}.png", ["cold (cache reset)", "warm (prefix cached)"],
                    [s["ttft_cold_s"] * 1000, s["ttft_warm_s"] * 1000], "time to first token (ms)",
                    f"{s['prompt_tokens']}-token prompt: prefix caching cuts TTFT {s['cold_over_warm']:.1f}x")
