"""Version 2: Y = X * 2, so a response shows which version answered.

The same file stands in multiply_latest, multiply_all and multiply_specific on purpose: the three differ only in
the version_policy of their config.pbtxt, and Lab 2.1's models are self-contained (the interface is the lesson).
"""
import numpy as np
import triton_python_backend_utils as pb_utils

VERSION = 2


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "X").as_numpy()
            y = (x * VERSION).astype(np.float32)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("Y", y)]))
        return responses
