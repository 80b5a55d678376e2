"""`make bench` bookkeeping: workloads, ratios and the result file (no timing is asserted here)."""
import json

import pytest

from llmserve.bench import __main__ as bench
from llmserve.measure.hf_baseline import GenerationRun


def test_mixed_lengths_spread_and_static_batches():
    lengths = bench.mixed_output_lengths(16, 64)
    assert len(lengths) == 16 and min(lengths) == 8 and max(lengths) == 64
    groups = bench.static_batches(lengths, 4)
    assert [len(g) for g in groups] == [4, 4, 4, 4] and sum(groups, []) == lengths
    # every static batch of this mix mixes short and long requests: padding is really wasted
    assert all(max(g) > min(g) for g in groups)
    assert bench.static_batches([1, 2, 3], 2) == [[1, 2], [3]]
    with pytest.raises(ValueError):
        bench.static_batches([1], 0)
    with pytest.raises(ValueError):
        bench.mixed_output_lengths(4, 4)


def test_decode_rate_removes_prefill():
    # 1 token in 0.5 s (prefill + first token), 33 tokens in 2.1 s: 32 extra tokens in 1.6 s
    assert bench.decode_rate(0.5, 2.1, 33) == pytest.approx(20.0)
    with pytest.raises(ValueError):
        bench.decode_rate(0.5, 0.4, 33)


def test_shared_prefix_is_real_text_of_requested_length():
    text = bench.shared_prefix_text(300)
    assert len(text.split()) >= 300 and "cache" in text


def _run(method, tokens, seconds, batch):
    return GenerationRun(method=method, batch_size=batch, num_requests=4, generated_tokens=tokens, seconds=seconds,
                         completion_s=(seconds,) * 4)


def test_throughput_entry_ratios_and_unequal_work_is_flagged():
    hf = {"naive": _run("naive", 128, 16.0, 1), "static": _run("static", 128, 4.0, 4), "threads": 2}
    vllm_run = {"throughput": {"seconds": 2.0, "generated_tokens": 128}, "startup_s": 40.0}
    sizes = {"prompts": 4, "new_tokens": 32, "max_num_seqs": 4}
    entry = bench.throughput_entry(hf, vllm_run, sizes)
    assert entry.error is None
    assert entry.summary["vllm_over_naive"] == pytest.approx(8.0)
    assert entry.summary["vllm_over_static"] == pytest.approx(2.0)
    vllm_run["throughput"]["generated_tokens"] = 120
    assert "unequal work" in bench.throughput_entry(hf, vllm_run, sizes).error


def test_ngram_entry_counts_identical_outputs_and_acceptance():
    base = {"seconds": [4.0, 4.2], "generated_tokens": 80, "token_ids": [[1, 2], [3, 4]]}
    spec = {"seconds": [2.0, 2.2], "generated_tokens": 80, "token_ids": [[1, 2], [3, 5]],
            "spec_counters": {"vllm:spec_decode_num_draft_tokens": 40,
                              "vllm:spec_decode_num_accepted_tokens": 30}}
    entry = bench.ngram_entry(base, spec)
    assert entry.summary["identical_outputs"] == "1/2"
    assert entry.summary["acceptance_rate"] == pytest.approx(0.75)
    assert entry.summary["speedup"] == pytest.approx((80 / 2.1) / (80 / 4.1))


def test_plot_and_summary_written(tmp_path):
    entry = bench.Entry("prefix_caching", "d", summary={"prompt_tokens": 900, "ttft_cold_s": 2.0,
                                                          "ttft_warm_s": 0.25, "cold_over_warm": 8.0})
    assert bench.plot_entry(entry, tmp_path) == "prefix_caching.png"
    assert (tmp_path / "prefix_caching.png").stat().st_size > 1000
    assert bench.plot_entry(bench.Entry("x", "d", error="boom"), tmp_path) is None
    results = {"meta": {"profile": "ci", "seconds": 3.0},
               "benchmarks": {"prefix_caching": {"summary": entry.summary, "error": None},
                              "throughput": {"summary": {}, "error": "unequal work"}}}
    text = bench.format_summary(results)
    assert "cold_over_warm=8" in text and "ERROR unequal work" in text
    json.dumps(results)
