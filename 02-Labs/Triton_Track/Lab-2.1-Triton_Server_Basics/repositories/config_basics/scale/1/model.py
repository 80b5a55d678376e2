"""Y = X * FACTOR, per batch item. A complete config.pbtxt describes this model."""
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "X").as_numpy()
            factor = pb_utils.get_input_tensor_by_name(request, "FACTOR").as_numpy()
            y = (x * factor).astype(np.float32)  # FACTOR has shape [batch, 1]: broadcasts over X
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("Y", y)]))
        return responses
