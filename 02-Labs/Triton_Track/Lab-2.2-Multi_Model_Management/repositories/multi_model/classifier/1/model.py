"""Classifier version 1: the question asked in the chat format (a first attempt).

Zero-shot sentiment with the course LLM (triton_course_models.sentiment): the prompt below around
TEXT, wrapped in the chat template as one user turn; one forward pass; the more likely of the next
tokens "positive" / "negative".

Input TEXT string [1] -> LABEL string [1] ("positive" / "negative"),
                         SCORES fp32 [2] (log-probabilities of the two label words).
"""
from triton_course_models.sentiment import ZeroShotSentiment


class TritonPythonModel(ZeroShotSentiment):
    prompt_template = ("Is the sentiment of this review positive or negative?\nReview: {text}\n"
                       "Answer with one word: positive or negative.")
    chat_format = True
