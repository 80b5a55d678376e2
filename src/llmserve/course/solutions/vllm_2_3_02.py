"""vLLM Lab 2.3 · 02 Async Processing: reference answers (spoilers)."""


def solutions(ns):
    return {
        # The work is pure Python: in the thread pool it holds the GIL the event loop needs; in a
        # process pool it runs on another interpreter, so /health stays fast.
        "answer_work_route": "process",
        # max_in_flight admits shed_limit at once; the rest of a simultaneous burst is refused with 503.
        "answer_burst_size": ns["shed_limit"] + 2,
        "answer_predicted_refused": 2,
    }


def wrong_answers(ns):
    return {"answer_work_route": "blocking", "answer_predicted_refused": 3}
