"""Entry `throughput`: vLLM vs the transformers naive loop vs transformers static batching.

Equal work: the same token ids, the same number of new tokens (greedy, EOS ignored). The HF runs
use the driver's shared transformers model, the vLLM run the shared course-default engine.
"""
from __future__ import annotations

from pathlib import Path

from llmserve.bench.common import Entry, bar_plot, generate_timed, ratio, tokens_prompts

NAME = "throughput"
DESCRIPTION = ("vLLM vs the HF naive loop and HF static batching: same token ids, same number of new tokens "
               "(greedy, EOS ignored), tokens/s.")


def measure_hf(model, tokenizer, prompt_ids: list[list[int]], sizes: dict) -> dict:
    """The naive loop (batch 1) and one static batch of all prompts."""
    import torch

    from llmserve.measure.hf_baseline import hf_generate
    n = sizes["new_tokens"]
    naive = hf_generate(model, tokenizer, prompt_ids, max_new_tokens=n, batch_size=1, progress=True)
    static = hf_generate(model, tokenizer, prompt_ids, max_new_tokens=n, batch_size=len(prompt_ids), progress=True)
    return {"naive": naive, "static": static, "threads": torch.get_num_threads()}


def measure_vllm(llm, prompt_ids: list[list[int]], sizes: dict) -> dict:
    """All prompts through the engine at once (max_num_seqs caps how many run together)."""
    from vllm import SamplingParams
    params = SamplingParams(temperature=0, max_tokens=sizes["new_tokens"], ignore_eos=True)
    seconds, outputs = generate_timed(llm, tokens_prompts(prompt_ids), params)
    return {"seconds": seconds, "generated_tokens": sum(len(o.outputs[0].token_ids) for o in outputs),
            "startup_s": llm.startup_seconds}


def build(hf: dict, vllm_run: dict, sizes: dict) -> Entry:
    naive, static = hf["naive"], hf["static"]
    v_tps = vllm_run["generated_tokens"] / vllm_run["seconds"]
    entry = Entry(NAME, DESCRIPTION)
    entry.summary = {"hf_naive_tok_s": naive.tokens_per_s, "hf_static_tok_s": static.tokens_per_s,
                     "vllm_tok_s": v_tps, "vllm_over_naive": ratio(v_tps, naive.tokens_per_s),
                     "vllm_over_static": ratio(v_tps, static.tokens_per_s)}
    entry.raw = {"prompts": sizes["prompts"], "new_tokens": sizes["new_tokens"],
                 "hf_threads": hf["threads"], "vllm_max_num_seqs": sizes["max_num_seqs"],
                 "hf_naive": {"seconds": naive.seconds, "tokens": naive.generated_tokens},
                 "hf_static": {"seconds": static.seconds, "tokens": static.generated_tokens,
                               "batch_size": static.batch_size},
                 "vllm": {k: vllm_run[k] for k in ("seconds", "generated_tokens")},
                 "vllm_startup_s": vllm_run.get("startup_s")}
    if not (naive.generated_tokens == static.generated_tokens == vllm_run["generated_tokens"]):
        entry.error = "unequal work: the three methods generated different token counts"
    return entry


def plot(entry: Entry, out_dir: Path) -> str | None:
    s = entry.summary
    return bar_plot(out_dir / f"{NAME}.png", ["HF naive loop", "HF static batch", "vLLM"],
                    [s["hf_naive_tok_s"], s["hf_static_tok_s"], s["vllm_tok_s"]], "generated tokens/s",
                    f"Equal work: vLLM {s['vllm_over_naive']:.1f}x the naive loop, "
                    f"{s['vllm_over_static']:.1f}x static batching")
