"""Embedder version 2: the last token's final hidden state, L2-normalised.

In a causal model only the last token has attended to the whole text, so it is a natural
summary; whether it embeds better than the mean is what notebook 01 compares.

Input TOKEN_IDS int64 [n] (from the tokenizer model) -> EMBEDDING fp32 [576].
The weights are the course LLM's (triton_course_models.embedder loads them without the LM head).
"""
import torch

from triton_course_models.embedder import HiddenStateEmbedder


class TritonPythonModel(HiddenStateEmbedder):
    def pool(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden[-1]  # version 1: hidden.mean(dim=0)
