"""bls_error_code: what a BLS model sees when a step fails (Triton Lab 2.4 · 01).

TEXT string [1] -> CODE string [1] (the code of the tokenizer's error as the BLS caller receives it, or "OK"),
MESSAGE string [1]. The tokenizer answers an empty TEXT with INVALID_ARG (HTTP 400 to a client).
"""
import triton_python_backend_utils as pb_utils

from triton_course_models.common import string_tensor


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            reply = pb_utils.InferenceRequest(model_name="tokenizer", requested_output_names=["TOKEN_IDS"],
                                              inputs=[pb_utils.get_input_tensor_by_name(request, "TEXT")]).exec()
            code, message = ("OK", "") if not reply.has_error() else (
                str(reply.error().code()).rsplit(".", 1)[-1], reply.error().message())  # "__ErrorCode.X" -> "X"
            responses.append(pb_utils.InferenceResponse([string_tensor("CODE", [code]), string_tensor("MESSAGE", [message])]))
        return responses
