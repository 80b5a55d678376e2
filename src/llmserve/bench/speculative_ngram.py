"""Entry `speculative_ngram`: vLLM's n-gram (prompt lookup) speculative decoding against the same
engine settings without it, on an input-grounded task (repeat a passage), greedy.

The baseline runs on the driver's shared engine; the speculative run needs an engine of its own.
Acceptance is read from vLLM's own counters: the mean acceptance length (tokens per verify step)
is 1 + accepted / drafts; the per-token acceptance rate counts only draft tokens that were judged
(accepted / (accepted + drafts that ended in a rejection)), not those after the first rejection.
"""
from __future__ import annotations

from pathlib import Path

from llmserve.bench.common import Entry, bar_plot, generate_timed, grounded_prompts, median_of, ratio

NAME = "speculative_ngram"
DESCRIPTION = ("vLLM n-gram (prompt lookup) speculative decoding on an input-grounded task (repeat a passage), "
               "greedy, against the same engine settings without it.")
SPEC_CONFIG = {"method": "ngram", "num_speculative_tokens": 4, "prompt_lookup_max": 4, "prompt_lookup_min": 2}


def grounded_run(llm, sizes: dict) -> dict:
    from vllm import SamplingParams
    prompts = grounded_prompts(llm.get_tokenizer())
    params = SamplingParams(temperature=0, max_tokens=sizes["spec_tokens"], ignore_eos=True)
    times, outputs = [], None
    for _ in range(sizes["repeats"]):
        seconds, outputs = generate_timed(llm, prompts, params)
        times.append(seconds)
    return {"seconds": times, "generated_tokens": sum(len(o.outputs[0].token_ids) for o in outputs),
            "token_ids": [list(o.outputs[0].token_ids) for o in outputs]}


def measure_baseline(llm, sizes: dict) -> dict:
    """The grounded workload on the shared engine (no speculation)."""
    return grounded_run(llm, sizes)


def run_spec_engine(sizes: dict) -> dict:
    """A second engine with n-gram speculative decoding, same grounded workload, vLLM's counters."""
    from llmserve.servers import offline_engine
    with offline_engine(max_num_seqs=sizes["max_num_seqs"], speculative_config=SPEC_CONFIG,
                        disable_log_stats=False) as llm:
        run = grounded_run(llm, sizes)
        counters, per_position = {}, None
        for metric in llm.get_metrics():
            if metric.name == "vllm:spec_decode_num_accepted_tokens_per_pos" and hasattr(metric, "values"):
                per_position = list(metric.values)
            elif metric.name.startswith("vllm:spec_decode_num") and hasattr(metric, "value"):
                counters[metric.name] = metric.value
        run["spec_counters"] = counters
        run["accepted_per_position"] = per_position
        run["config"] = SPEC_CONFIG
        run["startup_s"] = llm.startup_seconds
    return run


def acceptance_from_counters(counters: dict, per_position: list[int] | None, k: int) -> dict:
    """Mean acceptance length and the per-token acceptance rate from vLLM's spec-decode counters.

    The per-token rate needs the drafts that were accepted in full (the last position's count)
    and drafts of full length k; otherwise it is None.
    """
    drafts = counters.get("vllm:spec_decode_num_drafts")
    drafted = counters.get("vllm:spec_decode_num_draft_tokens")
    accepted = counters.get("vllm:spec_decode_num_accepted_tokens")
    out = {"drafts": drafts, "drafted": drafted, "accepted": accepted,
           "accepted_over_drafted": ratio(accepted, drafted), "mean_acceptance_length": None,
           "per_token_acceptance": None}
    if drafts and accepted is not None:
        out["mean_acceptance_length"] = 1 + accepted / drafts
        if per_position and len(per_position) == k and drafted == drafts * k:
            rejected_steps = drafts - per_position[-1]
            judged = accepted + rejected_steps
            out["per_token_acceptance"] = accepted / judged if judged else None
    return out


def build(baseline: dict, spec: dict) -> Entry:
    base_tps = baseline["generated_tokens"] / median_of(baseline["seconds"])
    spec_tps = spec["generated_tokens"] / median_of(spec["seconds"])
    same = sum(a == b for a, b in zip(baseline["token_ids"], spec["token_ids"], strict=True))
    k = spec.get("config", SPEC_CONFIG)["num_speculative_tokens"]
    acceptance = acceptance_from_counters(spec["spec_counters"], spec.get("accepted_per_position"), k)
    entry = Entry(NAME, DESCRIPTION)
    entry.summary = {"baseline_tok_s": base_tps, "ngram_tok_s": spec_tps, "speedup": ratio(spec_tps, base_tps),
                     "acceptance_rate": acceptance["per_token_acceptance"],
                     "mean_acceptance_length": acceptance["mean_acceptance_length"],
                     "identical_outputs": f"{same}/{len(spec['token_ids'])}"}
    entry.raw = {"baseline": {k: v for k, v in baseline.items() if k != "token_ids"},
                 "ngram": {k: v for k, v in spec.items() if k != "token_ids"}, "acceptance": acceptance}
    return entry


def plot(entry: Entry, out_dir: Path) -> str | None:
    s = entry.summary
    acc, length = s["acceptance_rate"], s["mean_acceptance_length"]
    return bar_plot(out_dir / f"{NAME}.png", ["no speculation", "n-gram speculation"],
                    [s["baseline_tok_s"], s["ngram_tok_s"]], "generated tokens/s",
                    f"Copy task: speedup {s['speedup']:.2f}x"
                    + (f", {length:.2f} tokens per verify" if length is not None else "")
                    + (f", per-token acceptance {acc:.0%}" if acc is not None else ""))
