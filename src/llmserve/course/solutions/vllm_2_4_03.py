"""vLLM Lab 2.4 · 03 Security and Monitoring: reference answers (spoilers)."""


def solutions(ns):
    limit = ns["limits"]["batch"]
    failures = ns["FAILURE_LIMIT"]
    return {
        # One counter in Redis for both gateways: the first `limit` requests of the window pass, the rest get 429.
        "answer_burst": limit + 4,
        "answer_allowed": limit,
        # Behind nginx the gateway counts the guesser's real address (nginx overwrites X-Forwarded-For), so the
        # first FAILURE_LIMIT wrong keys get 401 and the rest 429, whatever the header claimed.
        "answer_attempts": failures + 3,
        "answer_401": failures,
    }


def wrong_answers(ns):
    # "the limit is per process" / "a spoofed header gives every guess a fresh address"
    return {"answer_allowed": ns["limits"]["batch"] + 4, "answer_401": ns["FAILURE_LIMIT"] + 3}
