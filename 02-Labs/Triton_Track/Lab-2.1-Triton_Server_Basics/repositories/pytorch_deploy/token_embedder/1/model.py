"""Triton Python-backend model: a PyTorch module (eager) served by the Python backend.

Input  TOKEN_IDS  int64  [batch, tokens]
Output EMBEDDING  fp32   [batch, 576]   mean-pooled, L2-normalised token embeddings

`max_batch_size` > 0 and dynamic batching: the server may hand `execute` several
requests at once; we stack those with the same number of tokens into one tensor and run
the module once per group (one forward pass for many requests is the point of batching).
COURSE_MODEL_DIR (set by llmserve.servers.TritonServer) says where the course LLM lives.

A request with no token or with an id outside the vocabulary is the client's mistake: it alone
is answered with TritonError(..., INVALID_ARG), i.e. HTTP 400; the rest of the batch still runs.
"""
import os
import sys
from pathlib import Path

import numpy as np
import torch
import triton_python_backend_utils as pb_utils

sys.path.insert(0, str(Path(__file__).resolve().parent))
from embedding_module import load_from_course_model  # noqa: E402  (next to this file)


class TritonPythonModel:
    def initialize(self, args):
        model_dir = os.environ.get("COURSE_MODEL_DIR")
        if not model_dir or not os.path.isdir(model_dir):
            raise pb_utils.TritonModelException(
                f"COURSE_MODEL_DIR={model_dir!r} is not a model folder: start Triton with llmserve's TritonServer")
        self.module = load_from_course_model(model_dir)
        self.vocab_size = self.module.embed.num_embeddings

    def check(self, ids: np.ndarray) -> str | None:
        """What is wrong with one request's TOKEN_IDS [rows, tokens], or None."""
        if ids.shape[1] == 0:
            return "TOKEN_IDS has no token: send at least one token id per row"
        if ids.min() < 0 or ids.max() >= self.vocab_size:
            return f"TOKEN_IDS must lie in [0, {self.vocab_size}), got {ids.min()}..{ids.max()}"
        return None

    def execute(self, requests):
        ids = [pb_utils.get_input_tensor_by_name(r, "TOKEN_IDS").as_numpy() for r in requests]
        errors = [self.check(array) for array in ids]
        outputs = [None] * len(requests)
        groups = {}  # valid requests with the same number of tokens run as one batch
        for index, array in enumerate(ids):
            if errors[index] is None:
                groups.setdefault(array.shape[1], []).append(index)
        with torch.inference_mode():
            for members in groups.values():
                batch = torch.from_numpy(np.concatenate([ids[i] for i in members]))
                result = self.module(batch).numpy()
                start = 0
                for i in members:
                    rows = ids[i].shape[0]
                    outputs[i] = result[start:start + rows]
                    start += rows
        return [pb_utils.InferenceResponse([pb_utils.Tensor("EMBEDDING", out.astype(np.float32))]) if error is None
                else pb_utils.InferenceResponse(error=pb_utils.TritonError(error, pb_utils.TritonError.INVALID_ARG))
                for out, error in zip(outputs, errors, strict=True)]
