"""scorer: triton_course_models.mlp.ResidualMLP with depth 2 (config.pbtxt), the model that Triton Lab 2.4 · 04 protects.

The lesson is in the server flags and the proxy in front, so the model is the course's plain residual MLP.
"""
from triton_course_models.mlp import ResidualMLP


class TritonPythonModel(ResidualMLP):
    """X fp32 [batch, 16] -> SCORE fp32 [batch, 1]; non-finite X is a client error (HTTP 400)."""
