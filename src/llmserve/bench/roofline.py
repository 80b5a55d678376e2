"""Entry `roofline`: batch-1 decode tokens/s against this machine's memory-bandwidth ceiling.

The ceiling is the measured read bandwidth / bytes read per generated token. At batch 1 a decode
step reads every weight once (the tied embedding matrix in full, by the output projection), so the
bytes per token are parameters x bytes per parameter of the dtype the engine runs: bf16 halves
them and doubles the ceiling. The KV cache adds ~46 kB per context token in fp32: negligible here.
The entry reports transformers (fp32), vLLM with the course's default settings, and the fastest
batch-1 setting the `cpu_levers` entry measured, each against the ceiling of its own dtype.
"""
from __future__ import annotations

import time
from pathlib import Path

from llmserve.bench.common import Entry, decode_rate, decode_timings, median_of, tokens_prompts

NAME = "roofline"
DESCRIPTION = ("Batch-1 decode tokens/s against the memory-bandwidth ceiling of this machine: measured read "
               "bandwidth (best of one thread and all threads) / bytes of weights read per generated token, "
               "for the dtype each engine runs (fp32: 4 bytes per parameter, bf16: 2).")


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


def measure_hf(model, tokenizer, prompt_ids: list[list[int]], sizes: dict) -> dict:
    """transformers batch-1: 1 token vs `new_tokens` tokens, `repeats` times; parameter count."""
    import torch

    from llmserve.measure.hf_baseline import hf_generate
    one, many = [], []
    for _ in range(sizes["repeats"]):
        one.append(hf_generate(model, tokenizer, prompt_ids[:1], max_new_tokens=1).seconds)
        many.append(hf_generate(model, tokenizer, prompt_ids[:1], max_new_tokens=sizes["new_tokens"]).seconds)
    return {"one_token_s": one, "n_tokens_s": many, "n_tokens": sizes["new_tokens"],
            "threads": torch.get_num_threads(), "params": sum(p.numel() for p in model.parameters()),
            "weight_bytes": sum(p.numel() * p.element_size() for p in model.parameters()),
            "dtype": str(next(model.parameters()).dtype).removeprefix("torch.")}


def measure_vllm(llm, prompt_ids: list[list[int]], sizes: dict) -> dict:
    """Batch-1 decode timings on the driver's shared engine (the course's default settings)."""
    timings = decode_timings(llm, tokens_prompts(prompt_ids[:1]), sizes["new_tokens"], sizes["repeats"])
    timings.pop("token_ids")
    timings["dtype"] = str(llm.llm_engine.vllm_config.model_config.dtype).removeprefix("torch.")
    return timings


def _bytes_per_param(dtype: str) -> float:
    from llmserve.teach.formulas import DTYPE_BYTES
    return DTYPE_BYTES[dtype.lower()]


def build(bandwidth: dict, hf: dict, vllm_decode: dict | None = None, levers: dict | None = None) -> Entry:
    """`vllm_decode`: timings of the shared engine (measure_vllm); `levers`: the cpu_levers raw
    results. The default row comes from cpu_levers when it ran (its default setting, a fresh
    engine), else from the shared engine."""
    from llmserve.bench import cpu_levers
    from llmserve.teach.formulas import decode_tokens_per_s_upper_bound
    best_bw = max(bandwidth["one_thread"]["bytes_per_s"], bandwidth["all_threads"]["bytes_per_s"])
    params = hf["params"]

    def against_ceiling(label: str, dtype: str, rate: float) -> dict:
        step_bytes = params * _bytes_per_param(dtype)
        bound = decode_tokens_per_s_upper_bound(best_bw, step_bytes)
        return {"label": label, "dtype": dtype, "bytes_per_token": step_bytes, "bound_tok_s": bound,
                "decode_tok_s": rate, "fraction_of_bound": rate / bound}

    rows = {"hf": against_ceiling("transformers", hf["dtype"],
                                  decode_rate(median_of(hf["one_token_s"]), median_of(hf["n_tokens_s"]),
                                              hf["n_tokens"]))}
    source = None
    if levers is not None:
        table = {r["key"]: r for r in cpu_levers.rows(levers) if not r["error"]}
        if cpu_levers.DEFAULT in table:
            d = table[cpu_levers.DEFAULT]
            rows["default"] = against_ceiling(f"vLLM, {d['label'].removeprefix('course default: ')}", d["dtype"],
                                              d["b1_tok_s"])
            source = "cpu_levers (best of repeats, fresh engine per setting)"
            top = cpu_levers.best(levers, "b1_tok_s")
            rows["best"] = against_ceiling(f"vLLM best: {top['label']}", top["dtype"], top["b1_tok_s"])
            rows["best"]["setting"] = top["key"]
    if "default" not in rows and vllm_decode is not None:
        rows["default"] = against_ceiling("vLLM, course default", vllm_decode["dtype"],
                                          decode_rate(median_of(vllm_decode["one_token_s"]),
                                                      median_of(vllm_decode["n_tokens_s"]), vllm_decode["n_tokens"]))
        source = "the shared engine (median of repeats); run cpu_levers too for the best setting"
    entry = Entry(NAME, DESCRIPTION)
    entry.summary = {"bandwidth_gb_s": best_bw / 1e9, "params": params}
    for key, row in rows.items():
        entry.summary[f"{key}_dtype"] = row["dtype"]
        entry.summary[f"{key}_bound_tok_s"] = row["bound_tok_s"]
        entry.summary[f"{key}_decode_tok_s"] = row["decode_tok_s"]
        entry.summary[f"{key}_fraction_of_bound"] = row["fraction_of_bound"]
    if "best" in rows:
        entry.summary["best_setting"] = rows["best"]["setting"]
    entry.raw = {"bandwidth": bandwidth, "rows": rows, "vllm_source": source,
                 "hf": {k: hf[k] for k in ("one_token_s", "n_tokens_s", "n_tokens", "threads")},
                 "vllm_shared_engine": vllm_decode}
    if "default" not in rows:
        entry.error = "no vLLM decode measurement (needs the shared engine or cpu_levers)"
    return entry


def plot(entry: Entry, out_dir: Path) -> str | None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = list(entry.raw["rows"].values())
    fig, ax = plt.subplots(figsize=(7.2, 3.8))
    xs = range(len(rows))
    ceiling = ax.bar([x - 0.2 for x in xs], [r["bound_tok_s"] for r in rows], 0.4, color="#d9d9d9",
                     label="ceiling for the dtype (bandwidth / bytes per token)")
    measured = ax.bar([x + 0.2 for x in xs], [r["decode_tok_s"] for r in rows], 0.4,
                      color=["#8da0cb", "#fc8d62", "#66c2a5"][:len(rows)], label="measured batch-1 decode")
    ax.bar_label(ceiling, fmt="%.0f", fontsize=8)
    ax.bar_label(measured, labels=[f"{r['decode_tok_s']:.1f} ({r['fraction_of_bound']:.0%})" for r in rows],
                 fontsize=8)
    ax.set_xticks(list(xs), [f"{r['label']}\n{r['dtype']}, {r['bytes_per_token'] / 1e6:.0f} MB/token"
                             for r in rows], fontsize=7)
    ax.set_ylim(0, 1.3 * max(max(r["bound_tok_s"], r["decode_tok_s"]) for r in rows))
    ax.set_ylabel("batch-1 decode tokens/s")
    ax.set_title(f"Batch-1 decode vs the memory-bandwidth ceiling ({entry.summary['bandwidth_gb_s']:.1f} GB/s "
                 "read)", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / f"{NAME}.png", dpi=110)
    plt.close(fig)
    return f"{NAME}.png"
