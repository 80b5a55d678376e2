"""Triton Python-backend model: the course LLM's tokenizer.

Input  TEXT        string  [1]
Output TOKEN_IDS   int64   [n]   the token ids of TEXT (no special tokens added)
       NUM_TOKENS  int64   [1]

The course launcher (llmserve.servers.TritonServer) tells the model where the course
LLM lives through the COURSE_MODEL_DIR environment variable, so config.pbtxt holds no
machine-specific path. TEXT that is not UTF-8 is the client's mistake: it is answered with
TritonError(..., INVALID_ARG), which the client receives as HTTP 400 (an empty TEXT is
tokenized like any other: no tokens).
"""
import os

import numpy as np
import triton_python_backend_utils as pb_utils
from transformers import AutoTokenizer


class TritonPythonModel:
    def initialize(self, args):
        model_dir = os.environ.get("COURSE_MODEL_DIR")
        if not model_dir or not os.path.isdir(model_dir):
            raise pb_utils.TritonModelException(
                f"COURSE_MODEL_DIR={model_dir!r} is not a model folder: start Triton with llmserve's TritonServer")
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)

    def execute(self, requests):
        responses = []
        for request in requests:
            raw = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy().reshape(-1)[0]
            try:
                text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
            except UnicodeDecodeError:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(
                    "TEXT is not valid UTF-8 text", pb_utils.TritonError.INVALID_ARG)))
                continue
            ids = np.array(self.tokenizer.encode(text, add_special_tokens=False), dtype=np.int64)
            responses.append(pb_utils.InferenceResponse([
                pb_utils.Tensor("TOKEN_IDS", ids),
                pb_utils.Tensor("NUM_TOKENS", np.array([ids.size], dtype=np.int64)),
            ]))
        return responses
