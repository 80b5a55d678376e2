"""vLLM Lab 2.1 · 04 Production Deployment: reference answers (spoilers)."""


def solutions(ns):
    goodputs, capacity = ns["goodputs"], ns["capacity"]
    return {"answer_p90_e2e_ms": round(ns["summary"]["p90_ms"]),
            "answer_generated": int(ns["delta"]["vllm:generation_tokens_total"]),
            "answer_peak_goodput_rate": max(goodputs, key=goodputs.get) * capacity}


def wrong_answers(ns):
    right = solutions(ns)
    return {"answer_p90_e2e_ms": round(ns["summary"]["p90_ms"]) + 10,
            "answer_generated": right["answer_generated"] + 1,
            "answer_peak_goodput_rate": right["answer_peak_goodput_rate"] + 1}
