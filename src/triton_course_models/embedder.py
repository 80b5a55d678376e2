"""Sentence embeddings from the course LLM's last hidden layer, for Triton Lab 2.2's `embedder`.

Input TOKEN_IDS int64 [n] (from the tokenizer model) -> EMBEDDING fp32 [576], L2-normalised.
The weights are the course LLM's (COURSE_MODEL_DIR), loaded without the LM head. The versions differ
in how the hidden states of the n tokens are pooled into one vector (`pool`). No token, or an id
outside the vocabulary, is a client error (HTTP 400).
"""
from __future__ import annotations

import numpy as np
import torch
import triton_python_backend_utils as pb_utils
from transformers import AutoModel

from triton_course_models.common import course_model_dir, respond, token_ids_input


class HiddenStateEmbedder:
    """TritonPythonModel base; a subclass defines `pool(hidden)`: [n, 576] -> [576]."""

    def initialize(self, args):
        torch.set_num_threads(1)  # one core per model instance; several models share the machine
        self.model = AutoModel.from_pretrained(course_model_dir(), dtype=torch.float32).eval()
        self.vocab_size = int(self.model.config.vocab_size)

    def pool(self, hidden: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.inference_mode()
    def embed(self, ids: np.ndarray) -> np.ndarray:
        hidden = self.model(input_ids=torch.from_numpy(ids.reshape(1, -1))).last_hidden_state[0]
        return torch.nn.functional.normalize(self.pool(hidden), dim=0).numpy().astype(np.float32)

    def answer(self, request) -> list:
        ids = token_ids_input(request, "TOKEN_IDS", self.vocab_size)
        return [pb_utils.Tensor("EMBEDDING", self.embed(ids))]

    def execute(self, requests):
        return respond(requests, self.answer)
