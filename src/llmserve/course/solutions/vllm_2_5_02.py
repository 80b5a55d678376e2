"""vLLM Lab 2.5 · 02 Real-Time Metrics: reference answers (spoilers)."""


def _fast_fraction(at: float) -> str:
    bucket = 'sum(vllm:time_to_first_token_seconds_bucket{le="0.5"})'
    count = "sum(vllm:time_to_first_token_seconds_count)"
    return (f"({bucket} - {bucket.replace(')', f' @ {at:.3f})')}) "
            f"/ ({count} - {count.replace(')', f' @ {at:.3f})')})")


def solutions(ns):
    # the peak usage Prometheus recorded in the last phase (the formula of the check says why it is that)
    return {"answer_kv_peak": ns["phase_reading"](ns["phases"][-1], "job:vllm_kv_cache_usage_perc:max"),
            # the increase since the load started, of the le="0.5" bucket over the increase of the count
            "answer_fast_fraction_query": _fast_fraction(ns["load_started"])}


def wrong_answers(ns):
    blocks = int(ns["cache_info"]["num_gpu_blocks"]) - 1
    bucket = 'sum(vllm:time_to_first_token_seconds_bucket{le="0.5"})'
    return {"answer_kv_peak": solutions(ns)["answer_kv_peak"] + 2 / blocks,  # two blocks too many
            # since the server started, so the warm-up requests count too, and the bucket is not divided by anything
            "answer_fast_fraction_query": bucket}
