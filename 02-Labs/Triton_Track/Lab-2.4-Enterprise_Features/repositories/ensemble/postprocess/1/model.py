"""postprocess: step 3 of the sentiment pipeline (Triton Lab 2.4 · 01).

LOGITS fp32 [49152] -> LABEL string [1] ("positive" / "negative"), CONFIDENCE fp32 [1].
LOGITS of another length is a client error (HTTP 400). Logic: triton_course_models.pipeline.
"""
from triton_course_models.pipeline import LabelPostprocess


class TritonPythonModel(LabelPostprocess):
    pass
