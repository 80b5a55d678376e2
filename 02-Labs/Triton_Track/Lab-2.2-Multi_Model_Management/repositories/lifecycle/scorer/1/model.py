"""Scorer version 1 (stable): the residual MLP of triton_course_models.mlp, 4 layers of
(64 x 512) @ (512 x 512) per request (2 * 64 * 512 * 512 = 33.55 MFLOP each).

X fp32 [16] -> SCORE fp32 [1], VERSION int32 [1] (which version answered).
Non-finite X is a client error (HTTP 400).
"""
from triton_course_models.mlp import VersionedScorer


class TritonPythonModel(VersionedScorer):
    version = 1
    depth = 4
