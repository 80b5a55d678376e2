"""Scorer version 1 (stable, in production): the residual MLP of triton_course_models.mlp with 4 layers.

X fp32 [16] -> SCORE fp32 [1], VERSION int32 [1]. Non-finite X is a client error (HTTP 400).
"""
from triton_course_models.mlp import VersionedScorer


class TritonPythonModel(VersionedScorer):
    version = 1
    depth = 4
