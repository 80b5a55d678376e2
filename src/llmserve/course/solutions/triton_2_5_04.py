"""Triton Lab 2.5 · 04 Troubleshooting: reference answers (spoilers)."""


def _verdicts(ns):
    return {row["fault"]: row["ready"] != 200 for row in ns["runbook"] if row["ready"] is not None}


def solutions(ns):
    readiness = ns["PROBES"]["readiness"]
    return {"taken_out_of_service": _verdicts(ns),  # only a non-200 readiness answer takes the pod out
            "seconds_until_out_of_service": readiness["periodSeconds"] * readiness["failureThreshold"]}


def wrong_answers(ns):
    return {"taken_out_of_service": {fault: not out for fault, out in _verdicts(ns).items()},
            "seconds_until_out_of_service": ns["PROBES"]["readiness"]["periodSeconds"]}  # one failure is not enough
