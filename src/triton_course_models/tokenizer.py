"""The course LLM's tokenizer as a Triton model, for Triton Lab 2.2's `tokenizer`.

Input TEXT string [1] -> TOKEN_IDS int64 [n], NUM_TOKENS int64 [1]. The versions differ in what
they tokenize (`encode`). An empty TEXT is tokenized like any other (version 1 gives no token);
TEXT that is not UTF-8 is a client error (HTTP 400).
"""
from __future__ import annotations

import numpy as np
import triton_python_backend_utils as pb_utils
from transformers import AutoTokenizer

from triton_course_models.common import course_model_dir, respond, text_input


class TextTokenizer:
    """TritonPythonModel base; a subclass defines `encode(text)` -> token ids."""

    def initialize(self, args):
        self.tokenizer = AutoTokenizer.from_pretrained(course_model_dir())

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def answer(self, request) -> list:
        ids = np.array(self.encode(text_input(request, "TEXT", allow_empty=True)), dtype=np.int64)
        return [pb_utils.Tensor("TOKEN_IDS", ids), pb_utils.Tensor("NUM_TOKENS", np.array([ids.size], dtype=np.int64))]

    def execute(self, requests):
        return respond(requests, self.answer)
