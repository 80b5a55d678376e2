"""vLLM Lab 2.4 · 02 Kubernetes Deployment: reference answers (spoilers)."""
import math


def solutions(ns):
    return {"answer_failure_threshold": math.ceil(1.5 * 140 / 10)}  # periods of 10 s that cover 1.5 x 140 s


def wrong_answers(ns):
    return {"answer_failure_threshold": math.ceil(140 / 10)}  # no margin
