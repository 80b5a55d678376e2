"""Entry `speculative_teaching`: the course's draft-then-verify implementation (llmserve.teach.speculative)
on transformers, greedy, copy-the-passage prompts: the target alone vs two drafts (an early-exit
draft made of the target's first layers, and prompt lookup).

Every model call is timed. The first call of each prompt carries the whole prompt (the prefill:
the target's first verify call, the draft's first proposal), so it is reported on its own and left
out of the step costs: the draft/target cost ratio c compares one draft decode step with one
target decode step, as Leviathan et al.'s speedup formula assumes. The verify call (gamma + 1
tokens) is compared with a plain target step too: the formula assumes they cost the same.
Each draft is timed right after a fresh target-alone run, `repeats` times; the spread over the
repeats says how noisy the speedups are.
"""
from __future__ import annotations

import functools
import gc
import statistics
import time
from pathlib import Path

from llmserve.bench.common import Entry, grounded_prompts, median_of, spread
from llmserve.teach.speculative import CallTimer

NAME = "speculative_teaching"
GAMMA = 4


def _alpha_estimator() -> str:
    from llmserve.teach.speculative import SpeculativeStats
    doc = SpeculativeStats.acceptance_rate.__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else "SpeculativeStats.acceptance_rate"


def run(sizes: dict) -> Entry:
    from llmserve.measure.hf_baseline import load_model
    from llmserve.teach.formulas import speculative_expected_tokens, speculative_speedup
    from llmserve.teach.speculative import (
        CausalLMScorer,
        PromptLookupDraft,
        autoregressive_generate,
        first_layers_draft,
        speculative_generate,
    )
    new_tokens, repeats = sizes["teach_tokens"], sizes["repeats"]
    model, tokenizer = load_model()
    try:
        prompts = [p["prompt_token_ids"] for p in grounded_prompts(tokenizer, max(4, sizes["teach_prompts"]))]
        prompts = prompts[:sizes["teach_prompts"]]
        eos = tokenizer.eos_token_id
        scorer = CausalLMScorer(model)
        autoregressive_generate(scorer, prompts[0], 4)  # warm-up

        def target_alone() -> dict:
            timer = CallTimer(scorer)
            began = time.perf_counter()
            out = []
            for ids in prompts:
                timer.new_prompt()
                out.append(autoregressive_generate(timer, ids, new_tokens, eos_token_id=eos))
            return {"seconds": time.perf_counter() - began, "tokens": out, "prefill_s": timer.prefill_s,
                    "step_s": timer.step_s}

        def speculative(draft_model) -> dict:
            target, draft = CallTimer(scorer), CallTimer(draft_model)
            began = time.perf_counter()
            results = []
            for ids in prompts:
                target.new_prompt()
                draft.new_prompt()
                results.append(speculative_generate(target, draft, ids, new_tokens, GAMMA, eos_token_id=eos))
            return {"seconds": time.perf_counter() - began, "tokens": [t for t, _ in results],
                    "stats": [st for _, st in results], "target_prefill_s": target.prefill_s,
                    "verify_s": target.step_s, "draft_prefill_s": draft.prefill_s, "draft_step_s": draft.step_s}

        layers = model.config.num_hidden_layers
        drafts = {"early_exit": (f"early exit ({2 * layers // 3} of {layers} layers)",
                                 CausalLMScorer(first_layers_draft(model, 2 * layers // 3))),
                  "prompt_lookup": ("prompt lookup",
                                    PromptLookupDraft(model.config.vocab_size, min_ngram=2, max_ngram=4))}
        entry = Entry(NAME, "llmserve.teach.speculative (draft, then verify with the target) on transformers, "
                      f"greedy, gamma={GAMMA}, {len(prompts)} copy-the-passage prompts x {new_tokens} new tokens: the "
                      f"target alone vs two drafts, each draft timed right after a fresh target-alone run, {repeats} "
                      "times. Step costs and c exclude the prefill (the first call of each prompt).")
        entry.raw = {"gamma": GAMMA, "prompts": len(prompts), "prompt_tokens": [len(p) for p in prompts],
                     "new_tokens": new_tokens, "repeats": repeats, "alpha_estimator": _alpha_estimator(),
                     "drafts": {}}
        for key, (label, draft_model) in drafts.items():
            runs = []
            for _ in range(repeats):
                alone = target_alone()
                spec = speculative(draft_model)
                runs.append((alone, spec))
            entry.raw["drafts"][key] = _draft_raw(label, runs)
            figures = _draft_summary(runs)
            alpha = figures["alpha"]
            figures["expected_tokens_per_step"] = speculative_expected_tokens(min(alpha, 0.999999), GAMMA)
            figures["theory_speedup"] = speculative_speedup(min(alpha, 0.999999), GAMMA, figures["c"])
            for name, value in figures.items():
                entry.summary[f"{key}_{name}"] = value
            identical = sum(a == b for alone, spec in runs for a, b in zip(spec["tokens"], alone["tokens"],
                                                                            strict=True))
            if identical != len(prompts) * repeats:
                entry.error = (f"{label}: only {identical}/{len(prompts) * repeats} outputs equal the target's "
                               "greedy output")
        entry.summary["target_prefill_ms"] = 1000 * median_of(
            [s for alone, _ in _all_runs(entry.raw) for s in alone["prefill_s"]])
        entry.summary["target_step_ms"] = 1000 * median_of(
            [s for alone, _ in _all_runs(entry.raw) for s in alone["step_s"]])
        return entry
    finally:
        del model
        gc.collect()


def _all_runs(raw: dict) -> list:
    return [(r["target_alone"], r["speculative"]) for d in raw["drafts"].values() for r in d["runs"]]


def _draft_raw(label: str, runs: list) -> dict:
    return {"label": label, "runs": [
        {"target_alone": {"seconds": a["seconds"], "prefill_s": a["prefill_s"], "step_s": a["step_s"],
                          "generated_tokens": sum(map(len, a["tokens"]))},
         "speculative": {"seconds": s["seconds"], "target_prefill_s": s["target_prefill_s"], "verify_s": s["verify_s"],
                         "draft_prefill_s": s["draft_prefill_s"], "draft_step_s": s["draft_step_s"],
                         "steps": sum(st.steps for st in s["stats"]), "drafted": sum(st.drafted for st in s["stats"]),
                         "accepted": sum(st.accepted for st in s["stats"]),
                         "accepted_per_step": [n for st in s["stats"] for n in st.accepted_per_step],
                         "drafted_per_step": [n for st in s["stats"] for n in st.drafted_per_step]}}
        for a, s in runs]}


def _draft_summary(runs: list) -> dict:
    """Acceptance, step costs without prefill, c, and the speedups (end to end and decode only)."""
    stats = functools.reduce(lambda x, y: x.merge(y), [st for _, s in runs for st in s["stats"]])
    target_step = median_of([x for a, _ in runs for x in a["step_s"]])
    draft_step = median_of([x for _, s in runs for x in s["draft_step_s"]])
    verify = median_of([x for _, s in runs for x in s["verify_s"]])
    per_repeat_c = [median_of(s["draft_step_s"]) / median_of(a["step_s"]) for a, s in runs]
    end_to_end = [a["seconds"] / s["seconds"] for a, s in runs]
    decode_only = [(a["seconds"] - sum(a["prefill_s"]))
                   / (s["seconds"] - sum(s["target_prefill_s"]) - sum(s["draft_prefill_s"])) for a, s in runs]
    return {"alpha": stats.acceptance_rate, "tokens_per_step": stats.tokens_per_step,
            "accepted_over_drafted": stats.accepted / stats.drafted if stats.drafted else None,
            "c": draft_step / target_step, "c_half_range_pct": spread(per_repeat_c)["half_range_pct"],
            "verify_over_step": verify / target_step,
            "prefill_share": statistics.mean(sum(a["prefill_s"]) / a["seconds"] for a, _ in runs),
            "speedup": median_of(end_to_end), "decode_speedup": median_of(decode_only),
            "decode_speedup_half_range_pct": spread(decode_only)["half_range_pct"],
            "draft_step_ms": 1000 * draft_step, "verify_ms": 1000 * verify}


def plot(entry: Entry, out_dir: Path) -> str | None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    s = entry.summary
    keys = ["early_exit", "prompt_lookup"]
    labels = [entry.raw["drafts"][k]["label"] for k in keys]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"width_ratios": [3, 2]})
    xs = range(len(keys))
    for offset, (field, name, color) in zip((-0.27, 0, 0.27), [
            ("speedup", "measured, end to end", "#a6d854"), ("decode_speedup", "measured, decode only", "#66c2a5"),
            ("theory_speedup", "theory (measured alpha, c)", "#8da0cb")], strict=True):
        bars = left.bar([x + offset for x in xs], [s[f"{k}_{field}"] for k in keys], 0.27, label=name, color=color)
        left.bar_label(bars, fmt="%.2f", fontsize=7)
    left.axhline(1.0, color="grey", lw=0.8, ls="--")
    left.set_xticks(list(xs), [f"{lab}\nalpha={s[k + '_alpha']:.2f}, c={s[k + '_c']:.2f}"
                               for lab, k in zip(labels, keys, strict=True)], fontsize=8)
    left.set_ylabel("speedup over the target alone")
    left.set_title(f"Draft-then-verify, gamma={entry.raw['gamma']}, greedy copy task "
                   f"(decode-only spread +/-{max(s[k + '_decode_speedup_half_range_pct'] for k in keys):.0f}%)",
                   fontsize=9)
    left.legend(fontsize=7)
    names = ["target step", "verify (EE)", "draft step (EE)", "verify (PL)", "draft step (PL)"]
    values = [s["target_step_ms"], s["early_exit_verify_ms"], s["early_exit_draft_step_ms"],
              s["prompt_lookup_verify_ms"], s["prompt_lookup_draft_step_ms"]]
    bars = right.bar(names, values, color=["#8da0cb", "#66c2a5", "#fc8d62", "#66c2a5", "#fc8d62"])
    right.bar_label(bars, fmt="%.3g", fontsize=7)
    right.tick_params(axis="x", labelsize=7, rotation=20)
    right.set_ylabel("ms per call (median, prefill excluded)")
    right.set_title(f"Prefill (first call) {s['target_prefill_ms']:.0f} ms, left out", fontsize=9)
    fig.tight_layout()
    fig.savefig(out_dir / f"{NAME}.png", dpi=110)
    plt.close(fig)
    return f"{NAME}.png"

