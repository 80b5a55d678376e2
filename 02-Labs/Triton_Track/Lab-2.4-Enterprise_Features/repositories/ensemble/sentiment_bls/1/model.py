"""sentiment_bls: the sentiment pipeline as Business Logic Scripting (Triton Lab 2.4 · 01).

TEXT string [1] -> LABEL string [1], CONFIDENCE fp32 [1], by calling tokenizer -> lm -> postprocess with
pb_utils.InferenceRequest(...).exec() (names from config.pbtxt). A step's error is passed on with its code.
"""
from triton_course_models.pipeline import BLSPipeline


class TritonPythonModel(BLSPipeline):
    pass
