"""vLLM Lab 2.3 · 04 Monitoring and Deploy: reference answers (spoilers)."""


def solutions(ns):
    return {
        # both counters count every token since their process started, so their ratio is the share
        "answer_gateway_share_query": "sum(gateway_generation_tokens_total) / sum(vllm:generation_tokens_total)",
        # the cumulative buckets, summed over every label but le, interpolated at 0.9
        "answer_e2e_p90_query": "histogram_quantile(0.9, sum by (le) (gateway_e2e_request_latency_seconds_bucket))",
    }


def wrong_answers(ns):
    return {
        "answer_gateway_share_query": "sum(gateway_generation_tokens_total)",  # a count, not a share
        # the classic unit slip: milliseconds where the histogram is in seconds
        "answer_e2e_p90_query": "1000 * histogram_quantile(0.9, sum by (le) (gateway_e2e_request_latency_seconds_bucket))",
    }
