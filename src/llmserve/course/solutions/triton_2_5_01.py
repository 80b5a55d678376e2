"""Triton Lab 2.5 · 01 Kubernetes Deployment: reference answers (spoilers)."""
import math

POD = '{pod="triton-server-0"}'


def solutions(ns):
    hpa = ns["hpa"]["spec"]
    desired = math.ceil(3 * 45_000 / ns["target_us"])  # replicas x metric / target, rounded up ...
    desired = min(max(desired, hpa["minReplicas"]), hpa["maxReplicas"])  # ... then clamped
    return {"answer_replicas": desired,
            "answer_compute_query": f"sum(rate(nv_inference_compute_infer_duration_us{POD}[1m])) "
                                    f"/ sum(rate(nv_inference_request_success{POD}[1m]))"}


def wrong_answers(ns):
    return {"answer_replicas": solutions(ns)["answer_replicas"] + 1,
            # compute microseconds per second, not per request
            "answer_compute_query": f"sum(rate(nv_inference_compute_infer_duration_us{POD}[1m]))"}
