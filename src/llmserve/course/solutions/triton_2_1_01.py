"""Triton Lab 2.1 · 01 Setup and Installation: reference answers (spoilers)."""


def solutions(ns):
    return {"answer_tokens": len(ns["ask_http"]("Bonjour tout le monde"))}


def wrong_answers(ns):
    return {"answer_tokens": len("Bonjour tout le monde".split())}  # words are not tokens
