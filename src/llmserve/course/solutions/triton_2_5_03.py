"""Triton Lab 2.5 · 03 Monitoring and Alerting: reference answers (spoilers)."""
import yaml

TIMEOUT_RATIO = ('sum(rate(nv_inference_request_failure{model="scorer",reason="REJECTED"}[10s])) '
                 '/ (sum(rate(nv_inference_request_success{model="scorer"}[10s])) '
                 '+ sum(rate(nv_inference_request_failure{model="scorer"}[10s])))')


def _waits(ns):
    for_s = float(ns["alert_rules"]["TritonModelRejectingRequests"]["for"].rstrip("s"))
    group_wait_s = float(yaml.safe_load(ns["alertmanager_yml"])["route"]["group_wait"].rstrip("s"))
    return for_s, group_wait_s


def solutions(ns):
    for_s, group_wait_s = _waits(ns)
    # the condition must hold for `for:`, then Alertmanager waits group_wait before the first notification
    return {"answer_shortest_page_s": for_s + group_wait_s, "answer_timeout_ratio_query": TIMEOUT_RATIO}


def wrong_answers(ns):
    for_s, _ = _waits(ns)
    return {"answer_shortest_page_s": for_s,  # forgets Alertmanager's group_wait
            "answer_timeout_ratio_query": f"100 * {TIMEOUT_RATIO}"}  # a percentage where a ratio is asked
