"""A BLS model that fans one request out into N sub-requests, serially or in parallel (Triton Lab 2.3 · 04).

X fp32 [n, 16] (n feature rows) -> SCORES fp32 [n, 1]: one sub-request per row to the model named by the
`worker` parameter (a ResidualMLP: real compute per row), then the scores gathered in order.

- `mode: serial`: `pb_utils.InferenceRequest(...).exec()` per row, each waiting for the previous one; the
  request takes the sum of the sub-requests' latencies.
- `mode: parallel`: every sub-request sent at once with `async_exec()` and awaited with `asyncio.gather`
  (`execute` is a coroutine, which the Python backend supports for BLS); the sub-requests overlap as far as the
  worker's instances (and its dynamic batcher) let them, so the request takes about the slowest wave.

X is checked here before any sub-request (not finite, not [n, 16], or more rows than `max_rows`: HTTP 400),
because a worker's INVALID_ARG reaches a BLS caller as INTERNAL in Triton 2.51 (see `pipeline.py`).
"""
from __future__ import annotations

import asyncio
import json

import numpy as np
import triton_python_backend_utils as pb_utils

from triton_course_models.common import ClientError, client_error, parameter, required_input, server_error

FEATURES = 16
MODES = ("serial", "parallel")


class WorkerFailed(Exception):
    """A sub-request came back with an error (the input was checked: the server's fault, HTTP 500)."""


class FanOutBLS:
    """TritonPythonModel (BLS): X [n, 16] -> SCORES [n, 1] through n sub-requests to `worker`."""

    def initialize(self, args):
        model_config = json.loads(args["model_config"])
        self.worker = parameter(model_config, "worker")
        self.mode = parameter(model_config, "mode")
        if self.mode not in MODES:
            raise pb_utils.TritonModelException(f"mode={self.mode!r}: config.pbtxt's `mode` is one of {MODES}")
        self.max_rows = int(parameter(model_config, "max_rows", "64"))

    def rows_of(self, request) -> np.ndarray:
        x = required_input(request, "X").as_numpy()
        if x.ndim != 2 or x.shape[1] != FEATURES or x.shape[0] < 1:
            raise ClientError(f"X has shape {list(x.shape)}: send [n, {FEATURES}] with 1 <= n <= {self.max_rows}")
        if x.shape[0] > self.max_rows:
            raise ClientError(f"X has {x.shape[0]} rows: this model fans out at most {self.max_rows} (max_rows)")
        if not np.all(np.isfinite(x)):
            raise ClientError("X holds NaN or infinite values: send finite features")
        return x.astype(np.float32, copy=False)

    def sub_request(self, row: np.ndarray):
        return pb_utils.InferenceRequest(model_name=self.worker, requested_output_names=["SCORE"],
                                         inputs=[pb_utils.Tensor("X", row.reshape(1, FEATURES))])

    def score_of(self, reply) -> np.ndarray:
        if reply.has_error():
            raise WorkerFailed(f"{self.worker}: {reply.error().message()}")
        return pb_utils.get_output_tensor_by_name(reply, "SCORE").as_numpy().reshape(1)

    async def scores(self, x: np.ndarray) -> np.ndarray:
        if self.mode == "serial":
            scores = [self.score_of(self.sub_request(row).exec()) for row in x]
        else:
            replies = await asyncio.gather(*(self.sub_request(row).async_exec() for row in x))
            scores = [self.score_of(reply) for reply in replies]
        return np.stack(scores).astype(np.float32)

    async def answer(self, request):
        try:
            scores = await self.scores(self.rows_of(request))
            return pb_utils.InferenceResponse([pb_utils.Tensor("SCORES", scores)])
        except ClientError as error:
            return client_error(str(error))
        except Exception as error:  # a failing worker fails this request only
            return server_error(f"{type(error).__name__}: {error}")

    async def execute(self, requests):
        return list(await asyncio.gather(*(self.answer(request) for request in requests)))
