"""Embedder version 1: mean of the last hidden states over all tokens, L2-normalised.

Input TOKEN_IDS int64 [n] (from the tokenizer model) -> EMBEDDING fp32 [576].
The weights are the course LLM's (triton_course_models.embedder loads them without the LM head).
"""
import torch

from triton_course_models.embedder import HiddenStateEmbedder


class TritonPythonModel(HiddenStateEmbedder):
    def pool(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden.mean(dim=0)
