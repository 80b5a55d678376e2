"""The Python-backend model of Triton Lab 2.3: one classifier, the runtime chosen by config.pbtxt.

    parameters: { key: "runtime", value: { string_value: "onnxruntime" } }
    parameters: { key: "intra_op_threads", value: { string_value: "1" } }

X fp32 [batch, 16] -> LOGITS fp32 [batch, 4] and CLASS int64 [batch, 1] (the arg-max). `initialize`
loads the runtime's artefact from the model's version folder (`triton_course_models.runtimes`) and logs
how long that took; `execute` stacks the rows of every request Triton handed over (several, with
dynamic batching) and runs the runtime ONCE on all of them. A request with non-finite X is a client
error (HTTP 400) and only that request fails.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from triton_course_models.common import answer_rows, finite_rows, parameter
from triton_course_models.runtimes import load_runtime


class RuntimeClassifier:
    """TritonPythonModel: the classifier on the runtime named in config.pbtxt, once per execution."""

    def initialize(self, args):
        model_config = json.loads(args["model_config"])
        self.runtime = parameter(model_config, "runtime")
        threads = int(parameter(model_config, "intra_op_threads", "1"))
        version_dir = Path(args["model_repository"]) / args["model_version"]
        began = time.perf_counter()
        self.run = load_runtime(self.runtime, version_dir, threads)
        self.run(np.zeros((1, 16), np.float32))  # first call: allocations, kernel selection
        pb_utils.Logger.log_info(f"{args['model_instance_name']}: {self.runtime} with {threads} intra-op "
                                 f"thread(s) ready in {time.perf_counter() - began:.2f} s")

    def execute(self, requests):
        rows, errors = finite_rows(requests, "X")
        if rows:  # one call of the runtime over all the rows of all the valid requests
            logits = self.run(np.ascontiguousarray(np.concatenate([x for _, x in rows])))
            decisions = logits.argmax(axis=1).astype(np.int64)[:, None]
        return answer_rows(len(requests), rows, errors, lambda start, end: [
            pb_utils.Tensor("LOGITS", logits[start:end]), pb_utils.Tensor("CLASS", decisions[start:end])])
