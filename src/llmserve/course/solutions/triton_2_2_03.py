"""Triton Lab 2.2 · 03 Model Lifecycle: reference answers (spoilers)."""


def _failed(ns):
    last = ns["rollout_a"].decisions[-1]
    return {name for name in ("error rate", "p95")
            if any(reason.startswith(name) and not reason.endswith("ok") for reason in last.reasons)}


def solutions(ns):
    return {"rolled_back_by": _failed(ns)}


def wrong_answers(ns):
    return {"rolled_back_by": {"error rate", "p95"} - _failed(ns) or {"latency"}}
