"""A model whose request size is up to the client: the sum of a tensor of any length (Triton Lab 2.5 · 04).

What it computes hardly matters; what matters is that every input tensor travels from the server to the
stub through the Python backend's shared-memory pool in /dev/shm, so a client that sends 2 MiB needs a
pool that can grow by 2 MiB.
"""
from __future__ import annotations

import numpy as np
import triton_python_backend_utils as pb_utils

from triton_course_models.common import ClientError, required_input, respond


class TensorSum:
    """TritonPythonModel: DATA fp32 [n] -> SUM fp32 [1] (summed in float64). Non-finite DATA is a client error."""

    def initialize(self, args):
        pass

    def answer(self, request) -> list:
        data = required_input(request, "DATA").as_numpy()
        if not np.all(np.isfinite(data)):
            raise ClientError("DATA holds NaN or infinite values: send finite numbers")
        return [pb_utils.Tensor("SUM", np.array([data.sum(dtype=np.float64)], dtype=np.float32))]

    def execute(self, requests):
        return respond(requests, self.answer)
