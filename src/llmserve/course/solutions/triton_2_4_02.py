"""Triton Lab 2.4 · 02 Dynamic Batching: reference answers (spoilers)."""


def solutions(ns):
    batches = ns["at_top"]["delay 2 ms"]["batches"]  # batch size -> {"executions": ..., "ns": ...}
    executions = sum(b["executions"] for b in batches.values())
    return {"mean_batch_delay_2ms": sum(size * b["executions"] for size, b in batches.items()) / executions}


def wrong_answers(ns):
    # the largest batch size seen, as if every execution had been full; +1 in case all were the same size
    return {"mean_batch_delay_2ms": max(ns["at_top"]["delay 2 ms"]["batches"]) + 1}
