"""Triton Lab 2.4 · 01 Ensemble Models: reference answers (spoilers)."""


def solutions(ns):
    # The review's prompt is longer than 40 tokens, so the chunking BLS sends one call per sentence:
    # "Great start." / "Then it drags." / "The ending is a mess, sadly, and the dialogue is flat and dull."
    return {"predicted_llm_calls": 3}


def wrong_answers(ns):
    return {"predicted_llm_calls": 1}  # as if the review fitted in one prompt
