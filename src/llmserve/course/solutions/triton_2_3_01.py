"""Triton Lab 2.3 · 01 Multi-Backend Setup: reference answers (spoilers)."""


def solutions(ns):
    return {"lightest_stub": ns["lightest"],  # the smallest 'stub RSS MiB' of this run's table
            "why_lightest": "library",
            "onnx_threads_line": 'parameters: { key: "intra_op_thread_count", value: { string_value: "2" } }'}


def wrong_answers(ns):
    return {"why_lightest": "weights",  # every stub holds the same ~8 MiB of weights
            "onnx_threads_line": 'parameters: { key: "intra_op_thread_count", value: { int_value: 2 } }'}
