"""vLLM Lab 2.4 · 01 Deployment Architecture: reference answers (spoilers)."""


def solutions(ns):
    return {"answer_detection_s": 3 * (5 + 2),  # three failed checks in a row, each 5 s apart plus its 2 s timeout
            "answer_policy": "consistent_hash"}


def wrong_answers(ns):
    return {"answer_detection_s": 3 * 5,  # forgets that a hung replica makes each check wait for its timeout
            "answer_policy": "round_robin"}
