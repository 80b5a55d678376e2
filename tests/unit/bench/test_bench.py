"""`make bench` bookkeeping: workloads, ratios, the settings plan and the result file, on fed-in data
(no engine starts and no timing is asserted here)."""
import json
import subprocess

import pytest

from llmserve.bench import (
    common,
    continuous_batching,
    cpu_levers,
    prefix_caching,
    roofline,
    run,
    speculative_ngram,
    speculative_teaching,
    throughput,
)
from llmserve.measure.hf_baseline import GenerationRun


def test_every_entry_has_its_module_with_a_plot():
    assert set(run.ALL) == {"roofline", "throughput", "continuous_batching", "prefix_caching", "speculative_ngram",
                            "speculative_teaching", "quantization", "cpu_levers"}
    for name, module in run.MODULES.items():
        assert module.NAME == name and callable(module.plot)
    for sizes in common.BENCH_SIZES.values():  # same keys in every profile
        assert sizes.keys() == common.BENCH_SIZES["ci"].keys()


def test_mixed_lengths_spread_and_static_batches():
    lengths = continuous_batching.mixed_output_lengths(16, 64)
    assert len(lengths) == 16 and min(lengths) == 8 and max(lengths) == 64
    groups = continuous_batching.static_batches(lengths, 4)
    assert [len(g) for g in groups] == [4, 4, 4, 4] and sum(groups, []) == lengths
    # every static batch of this mix mixes short and long requests: padding is really wasted
    assert all(max(g) > min(g) for g in groups)
    assert continuous_batching.static_batches([1, 2, 3], 2) == [[1, 2], [3]]
    with pytest.raises(ValueError):
        continuous_batching.static_batches([1], 0)
    with pytest.raises(ValueError):
        continuous_batching.mixed_output_lengths(4, 4)


def test_decode_rate_removes_prefill():
    # 1 token in 0.5 s (prefill + first token), 33 tokens in 2.1 s: 32 extra tokens in 1.6 s
    assert common.decode_rate(0.5, 2.1, 33) == pytest.approx(20.0)
    with pytest.raises(ValueError):
        common.decode_rate(0.5, 0.4, 33)


def test_batch_decode_rate_counts_every_sequence_and_best_of_repeats():
    timings = {"batch": 8, "n_tokens": 33, "one_token_s": [0.5, 0.9], "n_tokens_s": [2.1, 4.0]}
    # best of repeats: min(one) = 0.5, min(many) = 2.1 -> 8 sequences x 32 tokens / 1.6 s
    assert common.batch_decode_rate(timings, min) == pytest.approx(160.0)
    assert common.batch_decode_rate(timings) == pytest.approx(8 * 32 / (3.05 - 0.7))
    s = common.decode_rate_spread(timings)
    assert s["n"] == 2 and s["max"] == pytest.approx(160.0) and s["half_range_pct"] > 0


def test_spread_reports_half_range():
    s = common.spread([9.0, 10.0, 11.0])
    assert s["median"] == 10.0 and s["half_range_pct"] == pytest.approx(10.0)
    with pytest.raises(ValueError):
        common.spread([])


def test_shared_prefix_is_real_text_of_requested_length():
    text = common.shared_prefix_text(300)
    assert len(text.split()) >= 300 and "cache" in text


def _run(method, tokens, seconds, batch):
    return GenerationRun(method=method, batch_size=batch, num_requests=4, generated_tokens=tokens, seconds=seconds,
                         completion_s=(seconds,) * 4)


def test_throughput_entry_ratios_and_unequal_work_is_flagged():
    hf = {"naive": _run("naive", 128, 16.0, 1), "static": _run("static", 128, 4.0, 4), "threads": 2}
    vllm_run = {"seconds": 2.0, "generated_tokens": 128, "startup_s": 40.0}
    sizes = {"prompts": 4, "new_tokens": 32, "max_num_seqs": 4}
    entry = throughput.build(hf, vllm_run, sizes)
    assert entry.error is None
    assert entry.summary["vllm_over_naive"] == pytest.approx(8.0)
    assert entry.summary["vllm_over_static"] == pytest.approx(2.0)
    vllm_run["generated_tokens"] = 120
    assert "unequal work" in throughput.build(hf, vllm_run, sizes).error


def test_ngram_acceptance_counts_only_judged_draft_tokens():
    # 10 drafts of k=4: 30 accepted; 5 drafts were accepted in full, so 5 ended in a rejection.
    counters = {"vllm:spec_decode_num_drafts": 10, "vllm:spec_decode_num_draft_tokens": 40,
                "vllm:spec_decode_num_accepted_tokens": 30}
    out = speculative_ngram.acceptance_from_counters(counters, [9, 8, 8, 5], k=4)
    assert out["mean_acceptance_length"] == pytest.approx(4.0)
    assert out["per_token_acceptance"] == pytest.approx(30 / 35)
    assert out["accepted_over_drafted"] == pytest.approx(0.75)  # the biased figure, kept in raw only
    # without per-position counts the per-token rate is not guessed
    assert speculative_ngram.acceptance_from_counters(counters, None, k=4)["per_token_acceptance"] is None


def test_ngram_entry_counts_identical_outputs():
    base = {"seconds": [4.0, 4.2], "generated_tokens": 80, "token_ids": [[1, 2], [3, 4]]}
    spec = {"seconds": [2.0, 2.2], "generated_tokens": 80, "token_ids": [[1, 2], [3, 5]],
            "spec_counters": {"vllm:spec_decode_num_drafts": 10, "vllm:spec_decode_num_draft_tokens": 40,
                              "vllm:spec_decode_num_accepted_tokens": 30},
            "accepted_per_position": [9, 8, 8, 5]}
    entry = speculative_ngram.build(base, spec)
    assert entry.summary["identical_outputs"] == "1/2"
    assert entry.summary["acceptance_rate"] == pytest.approx(30 / 35)
    assert entry.summary["speedup"] == pytest.approx((80 / 2.1) / (80 / 4.1))


def test_call_timer_puts_the_first_call_of_each_prompt_apart():
    calls = []
    timer = speculative_teaching.CallTimer(lambda tokens, n: calls.append((len(tokens), n)) or "logits")
    for _ in range(2):
        timer.new_prompt()
        for step in range(3):
            assert timer([0] * (10 + step), 1) == "logits"
    assert len(timer.prefill_s) == 2 and len(timer.step_s) == 4 and len(calls) == 6


def _spec_run(prefill, step, draft_prefill, draft_step, steps=10):
    from llmserve.teach.speculative import SpeculativeStats
    stats = SpeculativeStats(gamma=4, steps=steps, drafted=4 * steps, accepted=2 * steps,
                             accepted_per_step=[2] * steps, drafted_per_step=[4] * steps)
    alone = {"seconds": prefill + 30 * step, "prefill_s": [prefill], "step_s": [step] * 30}
    spec = {"seconds": prefill + draft_prefill + steps * (step + 4 * draft_step), "stats": [stats],
            "target_prefill_s": [prefill], "verify_s": [step] * (steps - 1),
            "draft_prefill_s": [draft_prefill], "draft_step_s": [draft_step] * (4 * steps - 1)}
    return alone, spec


def test_cost_ratio_c_comes_from_decode_steps_only():
    # A prefill 40x a step must not move c: c = draft step / target step = 0.5.
    runs = [_spec_run(prefill=2.0, step=0.05, draft_prefill=1.4, draft_step=0.025)] * 2
    figures = speculative_teaching._draft_summary(runs)
    assert figures["c"] == pytest.approx(0.5)
    assert figures["verify_over_step"] == pytest.approx(1.0)
    assert figures["c_half_range_pct"] == pytest.approx(0.0)
    # decode only: 30 target steps (1.5 s) vs 10 speculative steps (10 x (0.05 + 0.1) = 1.5 s)
    assert figures["decode_speedup"] == pytest.approx(1.0)
    assert figures["speedup"] < 1.0  # end to end, the draft's prefill costs extra
    assert 0 < figures["prefill_share"] < 1


def test_plan_skips_bf16_without_cpu_support_and_tcmalloc_when_missing():
    settings, skipped = cpu_levers.plan("ci", flags={"avx2", "avx512f"}, tcmalloc=None, cores=2)
    assert [s.key for s in settings] == [cpu_levers.DEFAULT, "multi_process"]
    assert "avx512_bf16" in skipped["bf16"] and "libtcmalloc-minimal4" in skipped["tcmalloc"]
    assert "cpu profile" in skipped["kv_4gib"]
    settings, _ = cpu_levers.plan("ci", flags={"avx512_bf16"}, tcmalloc="/lib/libtcmalloc_minimal.so.4", cores=2)
    assert [s.key for s in settings] == [cpu_levers.DEFAULT, "multi_process", "bf16", "tcmalloc"]
    settings, skipped = cpu_levers.plan("cpu", flags={"avx512_bf16"}, tcmalloc="/lib/libtcmalloc_minimal.so.4",
                                        cores=2)
    keys = [s.key for s in settings]
    assert {"bf16", "tcmalloc", "bf16_tcmalloc", "multi_process_nobind", "omp_bind", "kv_4gib"} <= set(keys)
    assert not skipped and keys[-1] == "default_again"
    bind = next(s for s in settings if s.key == "multi_process_bind_all")
    assert bind.env == {"VLLM_CPU_OMP_THREADS_BIND": "0-1"} and not bind.in_process
    assert cpu_levers.plan("gpu", flags=set(), tcmalloc=None)[0] == []
    # the default is exactly offline_engine()'s defaults on CPU
    default = settings[0]
    assert (default.in_process, default.dtype, default.kv_cache_gib, default.env, default.tcmalloc) == (
        True, "float32", 1, {}, False)


def test_child_env_strips_inherited_preload_and_sets_tcmalloc():
    base = {"PATH": "/bin", "LD_PRELOAD": "/torch/lib/libgomp.so.1"}
    plain = cpu_levers.Setting("default", "d")
    assert "LD_PRELOAD" not in cpu_levers.child_env(plain, "/lib/t.so", base)
    bound = cpu_levers.Setting("omp_bind", "b", process_env=cpu_levers.IN_PROCESS_BIND)
    assert cpu_levers.child_env(bound, None, base)["OMP_PROC_BIND"] == "close"
    preload = cpu_levers.Setting("tcmalloc", "t", tcmalloc=True)
    assert cpu_levers.child_env(preload, "/lib/t.so", base)["LD_PRELOAD"] == "/lib/t.so"
    with pytest.raises(ValueError):
        cpu_levers.child_env(preload, None, base)


def test_find_tcmalloc_reads_the_linker_cache(monkeypatch, tmp_path):
    lib = tmp_path / "libtcmalloc_minimal.so.4"
    lib.write_bytes(b"")
    listing = (f"\tlibtcmalloc_minimal.so.4 (libc6) => /nonexistent/32bit.so\n"
               f"\tlibtcmalloc_minimal.so.4 (libc6,x86-64) => {lib}\n\tlibc.so.6 (libc6,x86-64) => /lib/libc.so.6\n")
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout=listing))
    assert cpu_levers.find_tcmalloc() == str(lib)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout=""))
    assert cpu_levers.find_tcmalloc() is None


def _levers_result(start, b1_many, b8_many, dtype="float32", tokens=None):
    # 1 token in 0.1 s, 33 tokens in b1_many s -> 32 / (b1_many - 0.1) tok/s
    return {"startup_s": start, "ready_after_launch_s": start + 15, "engine_dtype": dtype,
            "others_cpu_share_start": 0.0, "others_cpu_share_decode": 0.05,
            "b1": {"batch": 1, "n_tokens": 33, "one_token_s": [0.1, 0.1], "n_tokens_s": [b1_many, b1_many + 0.1],
                   "token_ids": tokens or [[1, 2, 3]]},
            "b8": {"batch": 8, "n_tokens": 33, "one_token_s": [0.3, 0.3], "n_tokens_s": [b8_many, b8_many],
                   "token_ids": [[1, 2, 3]] * 8}}


def _levers_raw():
    settings = {"default": ("course default: in-process, fp32, KV 1 GiB", _levers_result(8.0, 1.7, 2.3)),
                "multi_process": ("multi-process", _levers_result(40.0, 3.3, 3.5)),
                "bf16": ("in-process, bf16", _levers_result(8.0, 0.9, 1.3, "bfloat16", tokens=[[1, 2, 4]])),
                "tcmalloc": ("in-process, tcmalloc preload", None)}
    raw = {"settings": {}, "skipped": {"multi_process_nobind": "ci profile"}, "batch": 8, "new_tokens": 33,
           "repeats": 2}
    for key, (label, result) in settings.items():
        raw["settings"][key] = {"setting": {"key": key, "label": label}, **(result or {"error": "boom"})}
    return raw


def test_cpu_levers_rows_ratios_best_and_table(tmp_path):
    raw = _levers_raw()
    rows = {r["key"]: r for r in cpu_levers.rows(raw)}
    assert rows["default"]["b1_tok_s"] == pytest.approx(20.0) and rows["default"]["b1_ratio"] == pytest.approx(1.0)
    assert rows["default"]["b8_tok_s"] == pytest.approx(8 * 32 / 2.0)
    assert rows["multi_process"]["start_ratio"] == pytest.approx(5.0)
    assert rows["multi_process"]["b1_ratio"] == pytest.approx(32 / 3.2 / 20.0)
    assert rows["bf16"]["b1_ratio"] == pytest.approx(2.0) and rows["bf16"]["same_greedy_b1"] is False
    assert rows["tcmalloc"]["error"] == "boom"
    assert cpu_levers.best(raw)["key"] == "bf16"
    entry = cpu_levers.build(raw)
    assert "tcmalloc: boom" in entry.error  # a failed setting is reported, the others still count
    assert entry.summary["best_b1"] == "bf16" and entry.summary["fastest_start"] == "default"
    table = cpu_levers.markdown_table(entry)
    assert "| in-process, bf16 | bfloat16 |" in table and "ERROR: boom" in table and "skipped" in table
    assert cpu_levers.plot(entry, tmp_path) == "cpu_levers.png"
    assert (tmp_path / "cpu_levers.png").stat().st_size > 1000
    del raw["settings"]["default"]
    assert "default setting did not run" in cpu_levers.build(raw).error


def test_foreign_load_is_the_busy_time_outside_this_process_tree(monkeypatch):
    samples = iter([(0.0, 100.0, 10.0), (2.0, 103.0, 11.0)])  # (wall, machine busy, own tree) seconds
    monkeypatch.setattr(cpu_levers.ForeignLoad, "_sample", staticmethod(lambda: next(samples)))
    monkeypatch.setattr(cpu_levers.os, "cpu_count", lambda: 2)
    # 3 s busy, 1 s of it ours, over 2 s x 2 cores: others took half the machine
    assert cpu_levers.ForeignLoad().share() == pytest.approx(0.5)


def test_foreign_load_sample_counts_this_process_inside_the_machine():
    _, busy, own = cpu_levers.ForeignLoad._sample()
    assert busy >= own > 0


def test_binding_log_keeps_vllms_binding_report():
    log = ("INFO 12-02 [ompmultiprocessing.py:180] OpenMP thread binding info: \n"
           "\tVLLM_CPU_OMP_THREADS_BIND='auto', auto_setup=True, skip_setup=False\n\tlocal_rank=0, core ids=[0]\n"
           "\treserved_cpus=[1]\nINFO loading weights took 0.5 s\n")
    kept = cpu_levers.binding_log(log)
    assert len(kept) == 4 and kept[2] == "local_rank=0, core ids=[0]" and "weights" not in " ".join(kept)


def _bandwidth(bytes_per_s):
    return {"one_thread": {"bytes_per_s": bytes_per_s / 2}, "all_threads": {"bytes_per_s": bytes_per_s}}


def _hf_decode():
    return {"one_token_s": [0.2], "n_tokens_s": [3.4], "n_tokens": 33, "threads": 2, "params": 100_000_000,
            "dtype": "float32"}


def test_roofline_puts_each_setting_against_the_ceiling_of_its_dtype(tmp_path):
    entry = roofline.build(_bandwidth(8e9), _hf_decode(), None, _levers_raw())
    s = entry.summary
    assert entry.error is None and s["best_setting"] == "bf16"
    assert s["default_bound_tok_s"] == pytest.approx(8e9 / 4e8)  # fp32: 4 bytes per parameter
    assert s["best_bound_tok_s"] == pytest.approx(2 * s["default_bound_tok_s"])  # bf16 halves the bytes
    assert s["hf_decode_tok_s"] == pytest.approx(10.0)
    assert s["default_fraction_of_bound"] == pytest.approx(20.0 / 20.0)
    assert roofline.plot(entry, tmp_path) == "roofline.png"
    shared = {"one_token_s": [0.1], "n_tokens_s": [1.7], "n_tokens": 33, "dtype": "float32"}
    alone = roofline.build(_bandwidth(8e9), _hf_decode(), shared, None)
    assert "best_setting" not in alone.summary and alone.summary["default_decode_tok_s"] == pytest.approx(20.0)
    assert "no vLLM decode" in roofline.build(_bandwidth(8e9), _hf_decode(), None, None).error


def test_plot_and_summary_written(tmp_path):
    entry = common.Entry("prefix_caching", "d", summary={"prompt_tokens": 900, "ttft_cold_s": 2.0,
                                                         "ttft_warm_s": 0.25, "cold_over_warm": 8.0})
    assert run.plot_entry(entry, tmp_path) == "prefix_caching.png"
    assert (tmp_path / "prefix_caching.png").stat().st_size > 1000
    assert prefix_caching.build({"prompt_tokens": 9, "cold_s": [2.0], "warm_s": [0.5]}).summary["cold_over_warm"] == 4
    assert run.plot_entry(common.Entry("x", "d", error="boom"), tmp_path) is None
    results = {"meta": {"profile": "ci", "seconds": 3.0},
               "benchmarks": {"prefix_caching": {"summary": entry.summary, "error": None},
                              "throughput": {"summary": {}, "error": "unequal work"}}}
    text = run.format_summary(results)
    assert "cold_over_warm=8" in text and "ERROR unequal work" in text
    json.dumps(results)


def test_sigterm_during_the_settings_unwinds_so_the_child_group_is_killed():
    import os
    import signal
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stopped, cpu_levers._terminate_raises():
        os.kill(os.getpid(), signal.SIGTERM)
    assert stopped.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == before
