"""vLLM Lab 2.5 · 01 Monitoring Setup: reference answers (spoilers)."""

HIT_RATE = "sum(rate(vllm:prefix_cache_hits_total[10s])) / sum(rate(vllm:prefix_cache_queries_total[10s]))"


def solutions(ns):
    return {"answer_vllm_samples_per_day": ns["cost"]["vllm"]["samples"] * 86400 / 15,  # series x scrapes per day
            "answer_prefix_hit_rate_query": HIT_RATE}


def wrong_answers(ns):
    return {"answer_vllm_samples_per_day": ns["cost"]["vllm"]["samples"] * 86400,  # a scrape per second, not per 15 s
            "answer_prefix_hit_rate_query": "sum(rate(vllm:prefix_cache_hits_total[10s]))"}  # hits, not a rate of hits
