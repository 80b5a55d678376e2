"""A model that gains from batching, and a stateful sequence model, for Triton Lab 2.4 · 02.

- `BatchedMLP`: X fp32 [batch, 16] -> SCORE fp32 [batch, 1]. A fixed torch MLP (16 -> `width`, then
  `depth` layers of width x width, config parameters) on one thread, run ONCE per execution on all the rows
  of all the requests Triton batched together. On a CPU a batch of 16 rows costs a few times one row, not
  16 times (the weights are read once per execution, and the stub's per-execution overhead is paid once),
  which is what the dynamic batcher exploits. A request with non-finite X is a client error (HTTP 400)
  and only that request fails.
- `RunningSum`: a sequence-batched model. VALUE int32 [1] -> SUM int64 [1] (the running sum of the
  sequence's values so far), STEP int32 [1] (how many requests the sequence has had), HELD int32 [1] (how
  many sequences the model holds state for). The sequence batcher's control inputs START, END and CORRID
  (config.pbtxt) say which sequence a request belongs to and where it starts and ends. Triton does not tell
  a model that a sequence went idle (max_sequence_idle_microseconds): it frees the sequence's slot and
  refuses a later request without START; the model drops the state of a sequence idle for that long itself.
"""
from __future__ import annotations

import json
import time

import numpy as np
import triton_python_backend_utils as pb_utils

from triton_course_models.common import (
    ClientError,
    answer_rows,
    client_error,
    finite_rows,
    parameter,
    required_input,
    server_error,
)

FEATURES = 16


class BatchedMLP:
    """TritonPythonModel: one forward pass per execution over every row of every request in it."""

    def initialize(self, args):
        import torch
        model_config = json.loads(args["model_config"])
        width, depth = int(parameter(model_config, "width", "1024")), int(parameter(model_config, "depth", "6"))
        torch.set_num_threads(1)  # one core per instance: the load generator needs the other one
        generator = torch.Generator().manual_seed(0)  # fixed weights: the same function on every load
        layers = [torch.nn.Linear(FEATURES, width)]
        layers += [torch.nn.Linear(width, width) for _ in range(depth)]
        for linear in layers:
            with torch.no_grad():
                linear.weight.copy_(torch.randn(linear.out_features, linear.in_features, generator=generator)
                                    / linear.in_features ** 0.5)
                linear.bias.zero_()
        self.torch = torch
        self.body = torch.nn.Sequential(*[m for layer in layers for m in (layer, torch.nn.ReLU())]).eval()
        self.head = torch.randn(width, 1, generator=generator) / width ** 0.5

    def execute(self, requests):
        rows, errors = finite_rows(requests, "X")
        if rows:  # one forward pass over all the rows of all the valid requests
            batch = self.torch.from_numpy(np.ascontiguousarray(np.concatenate([x for _, x in rows])))
            with self.torch.inference_mode():
                scores = (self.body(batch) @ self.head).numpy()
        return answer_rows(len(requests), rows, errors,
                           lambda start, end: [pb_utils.Tensor("SCORE", scores[start:end])])


class RunningSum:
    """TritonPythonModel: the running sum of each sequence, keyed by the CORRID control input."""

    def initialize(self, args):
        model_config = json.loads(args["model_config"])
        idle_us = int(model_config.get("sequence_batching", {}).get("max_sequence_idle_microseconds", 1_000_000))
        self.idle_s = idle_us / 1e6
        self.states: dict[int, list] = {}  # correlation id -> [sum, step, last seen (monotonic s)]

    def answer(self, request, now: float) -> list:
        value = int(required_input(request, "VALUE").as_numpy().reshape(-1)[0])
        start = bool(required_input(request, "START").as_numpy().reshape(-1)[0])
        end = bool(required_input(request, "END").as_numpy().reshape(-1)[0])
        corrid = int(required_input(request, "CORRID").as_numpy().reshape(-1)[0])
        if start or corrid not in self.states:
            # Triton sends a request without START only for a sequence it has open; a state that is missing
            # here was dropped as idle (or the model was reloaded), so the sequence starts again from zero.
            self.states[corrid] = [0, 0, now]
        state = self.states[corrid]
        state[0] += value
        state[1] += 1
        state[2] = now
        total, step = state[0], state[1]
        if end:
            del self.states[corrid]
        return [pb_utils.Tensor("SUM", np.array([[total]], np.int64)),
                pb_utils.Tensor("STEP", np.array([[step]], np.int32)),
                pb_utils.Tensor("HELD", np.array([[len(self.states)]], np.int32))]

    def execute(self, requests):
        now = time.monotonic()
        for corrid in [c for c, state in self.states.items() if now - state[2] > self.idle_s]:
            del self.states[corrid]  # idle longer than Triton keeps the sequence: Triton has freed it too
        responses = []
        for request in requests:
            try:
                responses.append(pb_utils.InferenceResponse(self.answer(request, now)))
            except ClientError as error:
                responses.append(client_error(str(error)))
            except Exception as error:
                responses.append(server_error(f"{type(error).__name__}: {error}"))
        return responses
