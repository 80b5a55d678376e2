"""Triton Lab 2.4 · 03 Model Warmup: reference answers (spoilers)."""
import math


def solutions(ns):
    return {"failure_threshold": math.ceil(2 * ns["warm"]["ready_s"] / 5)}


def wrong_answers(ns):
    return {"failure_threshold": math.ceil(2 * ns["warm"]["ready_s"] / 5) + 1}  # not the smallest
