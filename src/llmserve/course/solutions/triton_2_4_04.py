"""Triton Lab 2.4 · 04 Security and Auth: reference answers (spoilers)."""


def solutions(ns):
    return {"reached_triton": ns["codes"].count(200)}  # 401 and 429 are nginx's own answers


def wrong_answers(ns):
    return {"reached_triton": len(ns["codes"])}
