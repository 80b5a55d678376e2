"""A/B variant A (version 1): the sentiment classifier in fp32 - the control.

Zero-shot sentiment with the course LLM (triton_course_models.sentiment): the prompt below around
TEXT, one forward pass, the more likely of the next tokens "positive" / "negative". The same prompt
and weights as multi_model/classifier version 2.

Input TEXT string [1] -> LABEL string [1] ("positive" / "negative"),
                         SCORES fp32 [2] (log-probabilities of the two label words).
"""
from triton_course_models.sentiment import ZeroShotSentiment


class TritonPythonModel(ZeroShotSentiment):
    prompt_template = "Review: {text}\nSentiment (positive or negative):"
    quantize_int8 = False
