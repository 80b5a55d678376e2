"""Tokenizer version 1: the token ids of TEXT as written (no special tokens, no chat format).

Input TEXT string [1] -> TOKEN_IDS int64 [n], NUM_TOKENS int64 [1]. The course LLM folder
comes from the COURSE_MODEL_DIR environment variable (set by llmserve's TritonServer).
"""
import os

import numpy as np
import triton_python_backend_utils as pb_utils
from transformers import AutoTokenizer


def course_model_dir() -> str:
    model_dir = os.environ.get("COURSE_MODEL_DIR")
    if not model_dir or not os.path.isdir(model_dir):
        raise pb_utils.TritonModelException(
            f"COURSE_MODEL_DIR={model_dir!r} is not a model folder: start Triton with llmserve's TritonServer")
    return model_dir


class TritonPythonModel:
    def initialize(self, args):
        self.tokenizer = AutoTokenizer.from_pretrained(course_model_dir())

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def execute(self, requests):
        responses = []
        for request in requests:
            raw = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy().reshape(-1)[0]
            text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
            ids = np.array(self.encode(text), dtype=np.int64)
            responses.append(pb_utils.InferenceResponse([
                pb_utils.Tensor("TOKEN_IDS", ids),
                pb_utils.Tensor("NUM_TOKENS", np.array([ids.size], dtype=np.int64)),
            ]))
        return responses
