"""vLLM Lab 2.4 · 04 Cost Optimization: reference answers (spoilers)."""
import math
import statistics


def _fleet(ns):
    goodput = ns["best"]["goodput_rps"]
    replicas = math.ceil(ns["PEAK_RPS"] / goodput) if goodput > 0 else 1
    return replicas, replicas * ns["VCPUS_PER_REPLICA"] * ns["EXAMPLE_PRICE_PER_VCPU_HOUR_USD"]


def solutions(ns):
    a_usd = statistics.mean(r["usd_per_1m"] for r in ns["dtype_runs"]["A"])
    replicas = math.ceil(3 * 10 / ns["target_waiting"])  # replicas x metric / target, rounded up ...
    replicas = min(max(replicas, ns["min_replicas"]), ns["max_replicas"])  # ... then clamped
    fleet_replicas, fleet_usd = _fleet(ns)
    return {"answer_b_usd_per_1m": a_usd / ns["dtype_ratio"],  # same price per hour, ratio times the tokens
            "answer_replicas": replicas,
            "answer_fleet_replicas": fleet_replicas, "answer_fleet_usd_per_hour": fleet_usd}


def wrong_answers(ns):
    right = solutions(ns)
    a_usd = statistics.mean(r["usd_per_1m"] for r in ns["dtype_runs"]["A"])
    return {"answer_b_usd_per_1m": a_usd * ns["dtype_ratio"],  # multiplied where it should divide
            "answer_replicas": right["answer_replicas"] + 1,
            "answer_fleet_replicas": right["answer_fleet_replicas"] + 1}
