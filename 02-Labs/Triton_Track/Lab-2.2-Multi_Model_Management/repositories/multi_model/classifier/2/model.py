"""Classifier version 2: a plain completion prompt ("Review: ... Sentiment (positive or negative):").

Zero-shot sentiment with the course LLM (triton_course_models.sentiment): the prompt below around
TEXT, no chat template; one forward pass; the more likely of the next tokens "positive" / "negative".

Input TEXT string [1] -> LABEL string [1] ("positive" / "negative"),
                         SCORES fp32 [2] (log-probabilities of the two label words).
"""
from triton_course_models.sentiment import ZeroShotSentiment


class TritonPythonModel(ZeroShotSentiment):
    prompt_template = "Review: {text}\nSentiment (positive or negative):"
