"""vLLM Lab 2.1 · 01 Setup and Installation: reference answers (spoilers)."""


def solutions(ns):
    shape, config, report = ns["shape"], ns["model_config"], ns["report"]
    bf16 = 2 * shape["num_layers"] * shape["num_kv_heads"] * shape["head_dim"] * 2
    mha_per_token = 2 * shape["num_layers"] * config["num_attention_heads"] * shape["head_dim"] * ns["dtype_bytes"]
    blocks = report.cache_bytes // (mha_per_token * report.block_size)
    return {"answer_bf16": bf16, "answer_mha_tokens": blocks * report.block_size}


def wrong_answers(ns):
    return {"answer_bf16": ns["per_token"],  # the float32 figure: bfloat16 halves it
            "answer_mha_tokens": ns["report"].capacity_tokens}  # the GQA capacity
