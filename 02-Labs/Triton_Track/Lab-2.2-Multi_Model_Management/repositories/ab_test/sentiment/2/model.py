"""A/B variant B (version 2): the same classifier with dynamic int8 Linear layers - the candidate.

Zero-shot sentiment with the course LLM (triton_course_models.sentiment): the same prompt as
version 1; only the weights differ (Linear layers stored as int8, activations quantized on the fly).

Input TEXT string [1] -> LABEL string [1] ("positive" / "negative"),
                         SCORES fp32 [2] (log-probabilities of the two label words).
"""
from triton_course_models.sentiment import ZeroShotSentiment


class TritonPythonModel(ZeroShotSentiment):
    prompt_template = "Review: {text}\nSentiment (positive or negative):"
    quantize_int8 = True  # version 1: False
