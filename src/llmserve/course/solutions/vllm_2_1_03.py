"""vLLM Lab 2.1 · 03 Advanced Features: reference answers (spoilers)."""


def solutions(ns):
    return {"answer_idle_slot_steps": sum(len(g) * max(g) - sum(g) for g in ns["groups"]),
            "answer_cached_tokens": sum(r["cached"] for r in ns["prefix_rows"])}


def wrong_answers(ns):
    return {"answer_idle_slot_steps": sum(len(g) * max(g) - sum(g) for g in ns["groups"]) + 1,
            "answer_cached_tokens": sum(r["cached"] for r in ns["prefix_rows"]) + 1}
