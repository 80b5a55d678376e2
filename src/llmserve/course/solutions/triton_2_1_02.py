"""Triton Lab 2.1 · 02 Model Repository Design: reference answers (spoilers)."""


def solutions(ns):
    return {
        # the models whose load error in the API is only "failed to poll": the parser's message is in the log
        "log_only": set(ns["poll_failures"]),
        "my_policy": {"specific": {"versions": [2]}},
    }


def wrong_answers(ns):
    return {"log_only": set(ns["poll_failures"]) | {"scale"},   # scale loads fine
            "my_policy": {"newest": {"num_versions": 1}}}      # not a version policy at all
