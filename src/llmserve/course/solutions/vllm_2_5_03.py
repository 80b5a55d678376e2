"""vLLM Lab 2.5 · 03 Performance Analysis: reference answers (spoilers)."""


def solutions(ns):
    c = ns["checks"][ns["loads"][-1]]
    return {"answer_mean_time_s": c["server_L"] / c["lambda"]}  # Little's law, W = L / λ


def wrong_answers(ns):
    c = ns["checks"][ns["loads"][-1]]
    return {"answer_mean_time_s": 2 * c["server_L"] / c["lambda"] + 1}
