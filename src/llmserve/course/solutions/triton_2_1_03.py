"""Triton Lab 2.1 · 03 PyTorch Backend Deploy: reference answers (spoilers)."""


def solutions(ns):
    text, _, _ = ns["generate"]("What is the capital of France?", max_tokens=5)
    return {"five_token_answer": text, "libtorch_names": ["ids__0", "mask__1", "logits__0"]}


def wrong_answers(ns):
    text, _, _ = ns["generate"]("What is the capital of France?", max_tokens=6)  # six tokens, not five
    return {"five_token_answer": text,
            "libtorch_names": ["ids__0", "mask__1", "logits__2"]}  # outputs count from 0 on their own
