"""Entry `quantization`: the course model in fp32, LLM.int8 and NF4 (bitsandbytes), one after the other:
model memory, perplexity on the shipped text and batch-1 decode tokens/s (llmserve.measure.quantization)."""
from __future__ import annotations

import gc
from pathlib import Path

from llmserve.bench.common import Entry

NAME = "quantization"
VARIANTS = ("fp32", "int8", "nf4")


def run(sizes: dict) -> Entry:
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
    entry = Entry(NAME, "The course model in fp32, LLM.int8 and NF4 (bitsandbytes): memory footprint, "
                  f"perplexity on {len(ids)} tokens of the shipped public-domain text (windows of 256, stride 128), "
                  "batch-1 decode tokens/s.")
    for variant in VARIANTS:
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
    for variant in VARIANTS[1:]:
        entry.summary[f"{variant}_memory_ratio"] = (entry.summary[f"{variant}_footprint_mib"]
                                                    / entry.summary["fp32_footprint_mib"])
        entry.summary[f"{variant}_perplexity_delta"] = (entry.summary[f"{variant}_perplexity"]
                                                        - entry.summary["fp32_perplexity"])
    return entry


def plot(entry: Entry, out_dir: Path) -> str | None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    s = entry.summary
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.4))
    for ax, key, label in zip(axes, ["footprint_mib", "perplexity", "decode_tok_s"],
                              ["model memory (MiB)", "perplexity (lower is better)", "batch-1 decode tokens/s"],
                              strict=True):
        bars = ax.bar(VARIANTS, [s[f"{v}_{key}"] for v in VARIANTS], color=["#8da0cb", "#66c2a5", "#fc8d62"])
        ax.bar_label(bars, fmt="%.3g", fontsize=8)
        ax.set_title(label, fontsize=9)
    fig.suptitle("Quantization with bitsandbytes on this machine", fontsize=10)
    fig.tight_layout()
    fig.savefig(out_dir / f"{NAME}.png", dpi=110)
    plt.close(fig)
    return f"{NAME}.png"
