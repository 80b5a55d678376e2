"""Triton Lab 2.1 · 04 Monitoring Integration: reference answers (spoilers)."""


def solutions(ns):
    executions_and_ns = ns["executions_and_ns"]
    before, after = executions_and_ns(ns["stats_before"]), executions_and_ns(ns["stats_after"])
    return {"my_ms_per_execution": (after[1] - before[1]) / (after[0] - before[0]) / 1e6}


def wrong_answers(ns):
    return {"my_ms_per_execution": 2 * solutions(ns)["my_ms_per_execution"]}
