"""OUTPUT0 = INPUT0 + 1. The code is fine: what breaks this model is its config.pbtxt.

The four broken models with inputs INPUT0/OUTPUT0 share this file on purpose: only their config.pbtxt differs.
"""
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", (x + 1).astype(np.float32))]))
        return responses
