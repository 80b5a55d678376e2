"""Embedder version 1: mean of the last hidden states over all tokens, L2-normalised.

Input TOKEN_IDS int64 [n] (from the tokenizer model) -> EMBEDDING fp32 [576].
The weights are the course LLM's (COURSE_MODEL_DIR), loaded without the LM head.
"""
import os

import numpy as np
import torch
import triton_python_backend_utils as pb_utils
from transformers import AutoModel


class TritonPythonModel:
    def initialize(self, args):
        model_dir = os.environ.get("COURSE_MODEL_DIR")
        if not model_dir or not os.path.isdir(model_dir):
            raise pb_utils.TritonModelException(
                f"COURSE_MODEL_DIR={model_dir!r} is not a model folder: start Triton with llmserve's TritonServer")
        torch.set_num_threads(1)  # one core per model instance; several models share the machine
        self.model = AutoModel.from_pretrained(model_dir, dtype=torch.float32).eval()

    @torch.inference_mode()
    def embed(self, ids: np.ndarray) -> np.ndarray:
        if ids.size == 0:
            raise pb_utils.TritonModelException("TOKEN_IDS is empty")
        hidden = self.model(input_ids=torch.from_numpy(ids.reshape(1, -1))).last_hidden_state[0]
        pooled = hidden.mean(dim=0)
        return torch.nn.functional.normalize(pooled, dim=0).numpy().astype(np.float32)

    def execute(self, requests):
        responses = []
        for request in requests:
            ids = pb_utils.get_input_tensor_by_name(request, "TOKEN_IDS").as_numpy().astype(np.int64)
            try:
                tensors = [pb_utils.Tensor("EMBEDDING", self.embed(ids))]
                responses.append(pb_utils.InferenceResponse(tensors))
            except pb_utils.TritonModelException as error:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(error))))
        return responses
