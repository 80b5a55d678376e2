"""tokenizer: step 1 of the sentiment pipeline (Triton Lab 2.4 · 01).

TEXT string [1] -> TOKEN_IDS int64 [n] of "Review: {text}\\nSentiment (positive or negative):", NUM_TOKENS int64 [1].
An empty TEXT, or TEXT that is not UTF-8, is a client error (HTTP 400). Logic: triton_course_models.pipeline.
"""
from triton_course_models.pipeline import PromptTokenizer


class TritonPythonModel(PromptTokenizer):
    pass
