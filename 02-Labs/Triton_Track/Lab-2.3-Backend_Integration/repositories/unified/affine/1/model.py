"""Triton Python-backend model: Y = 2 X + 1 (FP32 [-1, 4]), the model both v2 servers of Triton Lab 2.3 · 03 serve.

Triton checks names, datatypes and shapes against config.pbtxt before `execute` runs; this model only refuses
values JSON cannot carry honestly (NaN, infinity), with a 400.
"""
import numpy as np
import triton_python_backend_utils as pb_utils

from triton_course_models.common import ClientError, required_input, respond


class TritonPythonModel:
    def answer(self, request):
        x = required_input(request, "X").as_numpy()
        if not np.all(np.isfinite(x)):
            raise ClientError("X holds NaN or infinite values: send finite numbers")
        return [pb_utils.Tensor("Y", (2 * x + 1).astype(np.float32))]

    def execute(self, requests):
        return respond(requests, self.answer)
