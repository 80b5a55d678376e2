"""Scorer version 2 (the candidate under review): the same computation as version 1, a new version number.

The pipeline lets it replace version 1 only when lint, tests, smoke test and canary gate all pass.
"""
from triton_course_models.mlp import VersionedScorer


class TritonPythonModel(VersionedScorer):
    version = 2
    depth = 4
