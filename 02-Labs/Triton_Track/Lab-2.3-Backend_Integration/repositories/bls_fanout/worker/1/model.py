"""worker: X fp32 [batch, 16] -> SCORE fp32 [batch, 1], a residual MLP of `depth` layers (Triton Lab 2.3 · 04).

The sub-request target of fanout_serial and fanout_parallel. Non-finite X is HTTP 400.
Logic: triton_course_models.mlp.ResidualMLP.
"""
from triton_course_models.mlp import ResidualMLP


class TritonPythonModel(ResidualMLP):
    """The depth comes from config.pbtxt's `depth` parameter."""
