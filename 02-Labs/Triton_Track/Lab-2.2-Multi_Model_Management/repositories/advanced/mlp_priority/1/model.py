"""A fixed residual MLP: real CPU work per request, sized by the `depth` parameter of config.pbtxt.

Every model of this repository runs this same file; only config.pbtxt differs (instances, queueing,
rate limiter, cache). Each request is one feature vector X[16]; it is expanded to a 64 x 512
activation and passed through `depth` layers of (64 x 512) @ (512 x 512): ~17 MFLOP per layer.
"""
import ctypes
import glob
import json
import os

import numpy as np
import triton_python_backend_utils as pb_utils


def single_threaded_blas() -> None:
    """One BLAS thread per instance, so that one model instance uses one CPU core."""
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "libopenblas*"))
    for path in libs:
        lib = ctypes.CDLL(path)
        for symbol in ("openblas_set_num_threads64_", "openblas_set_num_threads"):
            if hasattr(lib, symbol):
                getattr(lib, symbol)(1)
                return


class TritonPythonModel:
    def initialize(self, args):
        single_threaded_blas()
        config = json.loads(args["model_config"])
        self.depth = int(config["parameters"]["depth"]["string_value"])
        rng = np.random.default_rng(0)  # fixed weights: the same answer on every instance
        self.expand = (rng.standard_normal((16, 64 * 512)) / 4).astype(np.float32)
        self.layers = [(rng.standard_normal((512, 512)) / 22.6).astype(np.float32) for _ in range(self.depth)]
        self.head = (rng.standard_normal((512, 1)) / 22.6).astype(np.float32)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: [16] -> one score."""
        h = (x @ self.expand).reshape(64, 512)
        for weight in self.layers:
            h = np.maximum(h @ weight, 0.0) + h
            h /= np.linalg.norm(h, axis=1, keepdims=True) + 1e-6
        return (h.mean(axis=0) @ self.head).astype(np.float32)

    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "X").as_numpy()  # [batch, 16]
            scores = np.stack([self.forward(row) for row in x])
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("SCORE", scores)]))
        return responses
