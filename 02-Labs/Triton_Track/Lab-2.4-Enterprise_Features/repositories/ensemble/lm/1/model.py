"""lm: step 2 of the sentiment pipeline (Triton Lab 2.4 · 01).

TOKEN_IDS int64 [n] -> LOGITS fp32 [49152]: the course LLM's logits for the token after the prompt.
An id outside the vocabulary is a client error (HTTP 400). Logic: triton_course_models.pipeline.
"""
from triton_course_models.pipeline import NextTokenLogits


class TritonPythonModel(NextTokenLogits):
    pass
