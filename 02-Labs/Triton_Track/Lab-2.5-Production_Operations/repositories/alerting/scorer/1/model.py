"""scorer: an admission-limited MLP for Triton Lab 2.5 · 03 (alerts fired by real overload).

X fp32 [batch, 16] -> SCORE fp32 [batch, 1], one torch forward pass per execution (width and depth from
config.pbtxt; the queue limit is in config.pbtxt too). Logic: triton_course_models.batching.BatchedMLP.
"""
from triton_course_models.batching import BatchedMLP


class TritonPythonModel(BatchedMLP):
    pass
