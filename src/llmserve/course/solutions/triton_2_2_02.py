"""Triton Lab 2.2 · 02 A/B Testing Framework: reference answers (spoilers)."""


def solutions(ns):
    abtest, table = ns["abtest"], ns["table"]
    size = (abtest.sample_size_mcnemar(table.discordant / table.n, table.difference, 0.05, 0.9)
            if table.difference else 0)
    canary = abtest.TrafficSplit({"A": 0.9, "B": 0.1}, salt="exercise").counts(f"user-{n}" for n in range(1000))
    return {"answer_sample_size": size, "answer_canary_b": canary["B"]}


def wrong_answers(ns):
    right = solutions(ns)
    return {"answer_sample_size": right["answer_sample_size"] + 1,
            "answer_canary_b": 100 if right["answer_canary_b"] != 100 else 99}  # 10 % of 1000 is not what hashing gives
