"""Scorer version 2: a DELIBERATELY REGRESSED canary, for the rollout lesson of notebook 03.

Two real regressions, both on purpose: it runs 16 layers instead of 4 (about 4x the work, so its
latency really is higher), and its preprocess() raises on inputs with X[0] > 1.0 (a real error rate).
Those inputs are valid by the model's contract, so the failure is the model's fault: the client gets
HTTP 500 (INTERNAL), not 400.
"""
import numpy as np

from triton_course_models.mlp import VersionedScorer


class TritonPythonModel(VersionedScorer):
    version = 2
    depth = 16  # version 1: 4

    def preprocess(self, x: np.ndarray) -> np.ndarray:
        # DELIBERATE REGRESSION (for the canary lesson): a new "validation" step that rejects any
        # feature vector whose first value is above 1.0 -- about 16% of standard-normal inputs.
        if x[0] > 1.0:
            raise ValueError(f"version 2: feature 0 out of range ({x[0]:.2f} > 1.0)")
        return x
