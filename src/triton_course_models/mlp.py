"""A fixed residual MLP: real CPU work per request, with NumPy (one BLAS thread per model instance).

Each request row is one feature vector X[16]. It is expanded to a 64 x 512 activation and passed
through `depth` residual layers of (64 x 512) @ (512 x 512), i.e. 2 * 64 * 512 * 512 = 33.55 MFLOP
per layer by the 2mnk convention of theory 2.1 (see `LAYER_FLOPS`), then pooled to one score.
The weights come from a fixed seed: every instance and every version computes the same function
for the same depth.

Served by Triton Lab 2.2's `advanced/mlp_*` models (depth from config.pbtxt) and by the versions
of `lifecycle/scorer` (depth and version in model.py, and a VERSION output).
"""
from __future__ import annotations

import ctypes
import glob
import json
import os

import numpy as np
import triton_python_backend_utils as pb_utils

from triton_course_models.common import ClientError, required_input, respond

FEATURES, ROWS, WIDTH = 16, 64, 512
LAYER_FLOPS = 2 * ROWS * WIDTH * WIDTH  # one (ROWS x WIDTH) @ (WIDTH x WIDTH) product


def single_threaded_blas() -> None:
    """One BLAS thread per instance, so that one model instance uses one CPU core."""
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "libopenblas*"))
    for path in libs:
        lib = ctypes.CDLL(path)
        for symbol in ("openblas_set_num_threads64_", "openblas_set_num_threads"):
            if hasattr(lib, symbol):
                getattr(lib, symbol)(1)
                return


class ResidualMLP:
    """TritonPythonModel base: X fp32 [batch, 16] -> SCORE fp32 [batch, 1].

    `depth` = number of residual layers; None reads it from config.pbtxt
    (`parameters: { key: "depth", value: { string_value: "8" } }`). Non-finite inputs are a
    client error (HTTP 400).
    """

    depth: int | None = None

    def initialize(self, args):
        single_threaded_blas()
        if self.depth is None:
            parameters = json.loads(args["model_config"]).get("parameters", {})
            if "depth" not in parameters:
                raise pb_utils.TritonModelException("config.pbtxt needs a `depth` parameter (residual layers)")
            self.depth = int(parameters["depth"]["string_value"])
        rng = np.random.default_rng(0)  # fixed weights: the same answer on every instance and version
        self.expand = (rng.standard_normal((FEATURES, ROWS * WIDTH)) / 4).astype(np.float32)
        self.layers = [(rng.standard_normal((WIDTH, WIDTH)) / 22.6).astype(np.float32) for _ in range(self.depth)]
        self.head = (rng.standard_normal((WIDTH, 1)) / 22.6).astype(np.float32)

    def preprocess(self, x: np.ndarray) -> np.ndarray:
        """One feature vector before the layers (a version may change it)."""
        return x

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: [16] -> one score."""
        h = (self.preprocess(x) @ self.expand).reshape(ROWS, WIDTH)
        for weight in self.layers:
            h = np.maximum(h @ weight, 0.0) + h
            h /= np.linalg.norm(h, axis=1, keepdims=True) + 1e-6
        return (h.mean(axis=0) @ self.head).astype(np.float32)

    def outputs(self, scores: np.ndarray) -> list:
        return [pb_utils.Tensor("SCORE", scores)]

    def answer(self, request) -> list:
        x = required_input(request, "X").as_numpy()  # [batch, 16]
        if not np.all(np.isfinite(x)):
            raise ClientError("X holds NaN or infinite values: send finite features")
        return self.outputs(np.stack([self.forward(row) for row in x]))

    def execute(self, requests):
        return respond(requests, self.answer)


class VersionedScorer(ResidualMLP):
    """The lifecycle `scorer`: a ResidualMLP whose answer also says which version computed it.

    Outputs SCORE fp32 [batch, 1] and VERSION int32 [batch, 1]; a subclass sets `version` and `depth`.
    """

    version: int = 0

    def outputs(self, scores: np.ndarray) -> list:
        version = np.full((len(scores), 1), self.version, dtype=np.int32)
        return [pb_utils.Tensor("SCORE", scores), pb_utils.Tensor("VERSION", version)]
