"""scorer: triton_course_models.mlp.ResidualMLP (depth from config.pbtxt), the healthy model that Triton Lab 2.5 · 04 breaks.

The faults of the notebook arrive as changes to this folder's files (its neighbours scorer_bad_config and
scorer_import_error hold them), so the model itself stays the course's plain residual MLP.
"""
from triton_course_models.mlp import ResidualMLP


class TritonPythonModel(ResidualMLP):
    """X fp32 [batch, 16] -> SCORE fp32 [batch, 1]; non-finite X is a client error (HTTP 400)."""
