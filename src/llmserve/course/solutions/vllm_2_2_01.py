"""vLLM Lab 2.2 · 01 KV Cache Optimization: reference answers (spoilers)."""

GIB = 2**30


def solutions(ns):
    per_token = 2 * 32 * 8 * 128 * 2  # K and V x layers x KV heads x head_dim x fp16 bytes
    return {"answer_llama3_tokens_per_gib": GIB // per_token, "answer_blocks_3gib": ns["vllm_plan"](3 * GIB)[0]}


def wrong_answers(ns):
    return {"answer_llama3_tokens_per_gib": GIB // (2 * 32 * 32 * 128 * 2),  # 32 query heads: as if there were no GQA
            "answer_blocks_3gib": ns["vllm_plan"](3 * GIB)[0] + 1}
