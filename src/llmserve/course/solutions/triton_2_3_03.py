"""Triton Lab 2.3 · 03 Unified API Design: reference answers (spoilers)."""


def solutions(ns):
    fp64 = {"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP64", "data": [1.0, 2.0, 3.0, 4.0]}]}
    refused = [name for name, base in ns["V2_SERVERS"].items() if 400 <= ns["v2_post"](base, "affine", fp64)[0] < 500]
    triton = ns["overhead"]["Triton"]
    return {"answer_fp64_refused_by": refused,
            "answer_v2_body": {"inputs": [{"name": "X", "shape": [2, 4], "datatype": "FP32",
                                           "data": [[0, 0, 0, 0], [1, 1, 1, 1]]}]},
            "answer_overhead_share": triton["median_ms"] / triton["median_direct_ms"]}


def wrong_answers(ns):
    triton = ns["overhead"]["Triton"]
    return {"answer_fp64_refused_by": list(ns["V2_SERVERS"]) + ["nobody"],  # not every server checks datatypes
            "answer_v2_body": {"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [0, 0, 0, 0]}]},
            "answer_overhead_share": triton["median_facade_ms"] / triton["median_direct_ms"]}  # a ratio, not a share
