"""`make bench`: the course's headline ratios, measured side by side in one run on the course model.

    python -m llmserve.bench                 # everything, profile from COURSE_PROFILE / auto-detect
    python -m llmserve.bench --only roofline throughput
    python -m llmserve.bench --out /tmp/bench

Writes `<out>/results.json` (machine, profile, versions, every raw timing) and one PNG per
benchmark. Ratios only mean something within one run: every method in a ratio is measured on the
same machine, on the same prompts, one after the other, never against a number from elsewhere.
This is a benchmark, not a test: nothing here asserts a speed.

One module per entry (`llmserve.bench.<entry>`) holds its measurement, its figures (`build`) and
its plot. This driver only orders the work: quiet measurements first (memory bandwidth,
transformers), then the entries with their own models or processes, then ONE shared vLLM engine
with the course's default settings that feeds throughput, continuous batching, prefix caching,
the roofline and the n-gram baseline, then the n-gram engine.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from llmserve.bench import (
    continuous_batching,
    cpu_levers,
    prefix_caching,
    quantization,
    roofline,
    speculative_ngram,
    speculative_teaching,
    throughput,
)
from llmserve.bench.common import BENCH_SIZES, Entry, chat_ids, machine_info, question_prompts
from llmserve.course.config import REPO_ROOT, config

MODULES = {m.NAME: m for m in (roofline, throughput, continuous_batching, prefix_caching, speculative_ngram,
                               speculative_teaching, quantization, cpu_levers)}
ALL = tuple(MODULES)
SHARED_ENGINE_USERS = {"throughput", "continuous_batching", "prefix_caching", "speculative_ngram"}


def _guard(entries: list[Entry], name: str, fn: Callable[[], Entry | None], steps: dict | None = None) -> None:
    """Run one step; an exception becomes an entry with the error, so the other entries still run.
    `steps` collects the seconds of each measurement step (they go to meta.steps_s)."""
    began = time.perf_counter()
    try:
        entry = fn()
    except Exception as exc:  # one failing benchmark must not hide the others
        entry = Entry(name, name, error=f"{type(exc).__name__}: {exc}")
        traceback.print_exc()
    seconds = time.perf_counter() - began
    if steps is not None:
        steps[name] = seconds
    if entry is not None:
        entry.seconds = seconds
        entries.append(entry)


def _hf_runs(sizes: dict, selected: set[str]) -> dict:
    """One transformers model for the HF baselines of throughput and roofline."""
    from llmserve.measure.hf_baseline import chat_prompt_ids, hf_generate, load_model
    model, tokenizer = load_model()
    try:
        ids = chat_prompt_ids(tokenizer, question_prompts(sizes["prompts"]))
        hf_generate(model, tokenizer, ids[:1], max_new_tokens=2)  # warm-up
        out = {"prompt_ids": ids}
        if "throughput" in selected:
            out["throughput"] = throughput.measure_hf(model, tokenizer, ids, sizes)
        if "roofline" in selected:
            out["roofline"] = roofline.measure_hf(model, tokenizer, ids, sizes)
        return out
    finally:
        del model
        gc.collect()


def _shared_engine_runs(sizes: dict, prompt_ids: list[list[int]], selected: set[str]) -> dict:
    """One engine with the course's default settings (plus prefix caching) for several entries."""
    from vllm import SamplingParams

    from llmserve.bench.common import generate_timed, tokens_prompts
    from llmserve.servers import kv_cache_report, offline_engine
    out: dict = {}
    with offline_engine(max_num_seqs=sizes["max_num_seqs"], enable_prefix_caching=True) as llm:
        out["startup_s"] = llm.startup_seconds
        out["kv_cache_tokens"] = kv_cache_report(llm).capacity_tokens
        generate_timed(llm, tokens_prompts(prompt_ids[:1]), SamplingParams(temperature=0, max_tokens=2))  # warm-up
        if "throughput" in selected:
            out["throughput"] = throughput.measure_vllm(llm, prompt_ids, sizes)
        if "roofline" in selected:
            out["roofline"] = roofline.measure_vllm(llm, prompt_ids, sizes)
        if "continuous_batching" in selected:
            out["continuous_batching"] = continuous_batching.measure_vllm(llm, prompt_ids, sizes)
        if "prefix_caching" in selected:
            out["prefix_caching"] = prefix_caching.measure_vllm(llm, sizes)
        if "speculative_ngram" in selected:
            out["speculative_ngram"] = speculative_ngram.measure_baseline(llm, sizes)
    return out


def run(selected: tuple[str, ...] = ALL, out_dir: Path | None = None) -> dict:
    cfg = config()
    sizes = BENCH_SIZES[cfg.profile]
    chosen = set(selected)
    out_dir = Path(out_dir or REPO_ROOT / "bench")
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    entries: list[Entry] = []
    steps: dict[str, float] = {}
    with contextlib.suppress(FileNotFoundError):
        (out_dir / "cpu_levers.md").unlink()  # never leave an older run's table beside this run's JSON
    state: dict = {}
    print(f"make bench: profile {cfg.profile}, sizes {sizes}", flush=True)

    # Quiet measurements first: bandwidth, transformers.
    if "roofline" in chosen:
        print("· memory bandwidth", flush=True)
        began = time.perf_counter()
        state["bandwidth"] = roofline.measure_bandwidth(sizes["bandwidth_mib"])
        steps["bandwidth"] = time.perf_counter() - began
    if chosen & {"throughput", "roofline"}:
        print("· transformers baselines", flush=True)
        _guard(entries, "hf", lambda: state.update(hf=_hf_runs(sizes, chosen)), steps)
    # Entries with models or processes of their own. cpu_levers starts one process per setting
    # and runs before this process starts any engine (vLLM edits this process's LD_PRELOAD).
    if "cpu_levers" in chosen:
        print("· cpu_levers: one fresh process and engine per setting", flush=True)
        checkpoint = out_dir / "cpu_levers.partial.json"
        _guard(entries, "cpu_levers", lambda: state.update(levers=cpu_levers.measure(
            sizes, cfg.profile, lambda line: print(line, flush=True), checkpoint)), steps)
        checkpoint.unlink(missing_ok=True)  # complete: results.json has it all
    for module in (speculative_teaching, quantization):
        if module.NAME in chosen:
            print(f"· {module.NAME}", flush=True)
            _guard(entries, module.NAME, lambda module=module: module.run(sizes), steps)
    # The shared engine (the roofline takes its default row from cpu_levers when that ran).
    users = chosen & (SHARED_ENGINE_USERS | ({"roofline"} if "cpu_levers" not in chosen else set()))
    if users:
        print("· vLLM engine (course default settings, prefix caching on)", flush=True)
        ids = state["hf"]["prompt_ids"] if "hf" in state else chat_ids(question_prompts(sizes["prompts"]))
        _guard(entries, "vllm", lambda: state.update(vllm=_shared_engine_runs(sizes, ids, users)), steps)
    if "speculative_ngram" in chosen and "speculative_ngram" in state.get("vllm", {}):
        print("· vLLM engine with n-gram speculative decoding", flush=True)
        _guard(entries, "speculative_ngram_engine",
               lambda: state.update(ngram=speculative_ngram.run_spec_engine(sizes)), steps)

    # Figures, from what was measured.
    hf, shared = state.get("hf", {}), state.get("vllm", {})
    if "levers" in state:
        _guard(entries, "cpu_levers", lambda: cpu_levers.build(state["levers"]))
        entries[-1].seconds = state["levers"]["measured_s"]  # the measurement, not the bookkeeping
    if "roofline" in chosen and "roofline" in hf and ("levers" in state or "roofline" in shared):
        _guard(entries, "roofline", lambda: roofline.build(state["bandwidth"], hf["roofline"],
                                                           shared.get("roofline"), state.get("levers")))
    if "throughput" in hf and "throughput" in shared:
        _guard(entries, "throughput", lambda: throughput.build(hf["throughput"], shared["throughput"], sizes))
    if "continuous_batching" in shared:
        _guard(entries, "continuous_batching", lambda: continuous_batching.build(shared["continuous_batching"]))
    if "prefix_caching" in shared:
        _guard(entries, "prefix_caching", lambda: prefix_caching.build(shared["prefix_caching"]))
    if "ngram" in state:
        _guard(entries, "speculative_ngram", lambda: speculative_ngram.build(shared["speculative_ngram"],
                                                                             state["ngram"]))

    for entry in entries:
        entry.plot = plot_entry(entry, out_dir)
    levers_entry = next((e for e in entries if e.name == "cpu_levers" and e.raw.get("rows")), None)
    if levers_entry is not None:
        (out_dir / "cpu_levers.md").write_text(cpu_levers.markdown_table(levers_entry) + "\n", encoding="utf-8")
    results = {"meta": {"profile": cfg.profile, "sizes": sizes, "machine": machine_info(),
                        "model": str(cfg.model_dir), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z",
                                                                              time.localtime(started)),
                        "seconds": time.time() - started, "steps_s": steps},
               "benchmarks": {e.name: {"description": e.description, "summary": e.summary, "raw": e.raw,
                                       "seconds": e.seconds, "error": e.error, "plot": e.plot}
                              for e in entries}}
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, default=_jsonable), encoding="utf-8")
    return results


def plot_entry(entry: Entry, out_dir: Path) -> str | None:
    """The entry's plot (its module's `plot`), or None: no figures, no module, or a broken plot."""
    if not entry.summary or entry.name not in MODULES:
        return None
    try:
        return MODULES[entry.name].plot(entry, out_dir)
    except Exception:  # a broken plot must not lose the measurements
        traceback.print_exc()
        return None


def _jsonable(value):
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict
        return asdict(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def format_summary(results: dict) -> str:
    lines = [f"profile {results['meta']['profile']}, {results['meta']['seconds']:.0f} s"]
    for name, b in results["benchmarks"].items():
        if b["error"]:
            lines.append(f"  {name:22s} ERROR {b['error']}")
        if not b["summary"]:
            continue
        figures = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in b["summary"].items())
        lines.append(f"  {name:22s} {figures}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=ALL, default=list(ALL))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    out_dir = args.out or REPO_ROOT / "bench"
    results = run(tuple(args.only), out_dir)
    print(format_summary(results))
    if (out_dir / "cpu_levers.md").exists() and "cpu_levers" in results["benchmarks"]:
        print((out_dir / "cpu_levers.md").read_text())
    print(f"written: {out_dir / 'results.json'}")
    return 1 if any(b["error"] for b in results["benchmarks"].values()) else 0
