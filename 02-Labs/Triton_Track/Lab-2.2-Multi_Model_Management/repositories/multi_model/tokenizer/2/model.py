"""Tokenizer version 2: the token ids of TEXT wrapped in the chat template as one user turn
(what an instruction-tuned model sees). Same inputs and outputs as version 1.
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
        chat = self.tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                  add_generation_prompt=True)
        return self.tokenizer.encode(chat, add_special_tokens=False)

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
