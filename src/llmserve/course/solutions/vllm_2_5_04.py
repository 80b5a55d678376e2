"""vLLM Lab 2.5 · 04 Alerting and Optimization: reference answers (spoilers)."""


def solutions(ns):
    long_s, _, burn, budget = ns["burn_condition"]("LatencySLOFastBurn")
    return {"answer_long_window_s": burn * budget * long_s,  # the share of the window the slow requests must fill
            # the bad share over the budget (1 - 0.99) is the burn rate
            "answer_burn_rate_query": "gateway:ttft_over_1s:ratio_rate60s / (1 - 0.99)"}


def wrong_answers(ns):
    long_s, _, burn, _ = ns["burn_condition"]("LatencySLOFastBurn")
    return {"answer_long_window_s": burn * long_s / 100 + 1,
            "answer_burn_rate_query": "gateway:ttft_over_1s:ratio_rate60s"}  # the share itself, not its burn rate
