"""mlp: the model behind Triton Lab 2.4 · 02's batcher sweep.

X fp32 [batch, 16] -> SCORE fp32 [batch, 1]; one torch forward pass per execution over all batched rows
(width and depth from config.pbtxt). Non-finite X is a client error (HTTP 400) for that request only.
Logic: triton_course_models.batching.BatchedMLP.
"""
from triton_course_models.batching import BatchedMLP


class TritonPythonModel(BatchedMLP):
    pass
