"""Scorer version 2: a DELIBERATELY REGRESSED canary, for the rollout lesson of notebook 03.

Two real regressions, both on purpose: it runs 16 layers instead of 4 (about 4x the work, so its
latency really is higher), and its preprocess() raises on inputs with X[0] > 1.0 (a real error rate).
"""
import ctypes
import glob
import os

import numpy as np
import triton_python_backend_utils as pb_utils

VERSION = 2
DEPTH = 16  # version 1: 4


def single_threaded_blas() -> None:
    """One BLAS thread per instance, so that one model instance uses one CPU core."""
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "libopenblas*"))
    for path in libs:
        lib = ctypes.CDLL(path)
        for symbol in ("openblas_set_num_threads64_", "openblas_set_num_threads"):
            if hasattr(lib, symbol):
                getattr(lib, symbol)(1)
                return


def preprocess(x: np.ndarray) -> np.ndarray:
    # DELIBERATE REGRESSION (for the canary lesson): a new "validation" step that rejects any
    # feature vector whose first value is above 1.0 -- about 16% of standard-normal inputs.
    if x[0] > 1.0:
        raise ValueError(f"feature 0 out of range ({x[0]:.2f} > 1.0)")
    return x


class TritonPythonModel:
    def initialize(self, args):
        single_threaded_blas()
        rng = np.random.default_rng(0)  # the same weights in every version
        self.expand = (rng.standard_normal((16, 64 * 512)) / 4).astype(np.float32)
        self.layers = [(rng.standard_normal((512, 512)) / 22.6).astype(np.float32) for _ in range(DEPTH)]
        self.head = (rng.standard_normal((512, 1)) / 22.6).astype(np.float32)

    def forward(self, x: np.ndarray) -> np.ndarray:
        h = (preprocess(x) @ self.expand).reshape(64, 512)
        for weight in self.layers:
            h = np.maximum(h @ weight, 0.0) + h
            h /= np.linalg.norm(h, axis=1, keepdims=True) + 1e-6
        return (h.mean(axis=0) @ self.head).astype(np.float32)

    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "X").as_numpy()  # [batch, 16]
            try:
                scores = np.stack([self.forward(row) for row in x])
            except ValueError as error:  # a failing request gets an error response; the others go on
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"version {VERSION}: {error}")))
                continue
            version = np.full((len(x), 1), VERSION, dtype=np.int32)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("SCORE", scores),
                                                         pb_utils.Tensor("VERSION", version)]))
        return responses
