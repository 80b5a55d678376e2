"""A torch MLP behind `torch.compile`: the first call compiles, every later call is fast.

`torch.compile` is lazy: `initialize` only wraps the module, and the first `execute` traces it with
TorchDynamo and has Inductor generate and build C++ kernels (seconds on a CPU), so the first request
a client sends pays that. Triton's `model_warmup` (config.pbtxt) sends samples through `execute`
before the model is marked ready, which moves the cost from the first client to the load.

Each model instance compiles into a private, empty Inductor cache (`TORCHINDUCTOR_CACHE_DIR`, a
fresh temporary folder, removed in `finalize`), so every load pays the whole compile as a new pod
would; config parameter `inductor_cache` = a folder reuses (and fills) a persistent cache instead.

X fp32 [batch, 16] -> SCORE fp32 [batch, 1]; non-finite X is a client error (HTTP 400).
Served by Triton Lab 2.4 · 03 (`repositories/warmup/`).
"""
from __future__ import annotations

import contextlib
import json
import locale
import os
import shutil
import tempfile
import time

import numpy as np
import triton_python_backend_utils as pb_utils

from triton_course_models.common import ClientError, parameter, required_input, respond

FEATURES, HIDDEN = 16, 256
LOGGED_EXECUTIONS = 4  # the first executes are logged with their requests' batch sizes


class CompiledMLP:
    """TritonPythonModel base: a fixed-weight 3-layer MLP wrapped in torch.compile.

    The first executes are logged with the batch size of each request (`execute #2: 8 request(s), batch sizes
    [1, 1, ...]`), and the first call with each batch size with its duration (`first call with batch 1: ... s`):
    the first call compiles, and a new batch size can make torch.compile build another graph.
    """

    def initialize(self, args):
        model_config = json.loads(args["model_config"])
        cache = parameter(model_config, "inductor_cache", "")
        self._private_cache = None if cache else tempfile.mkdtemp(prefix="inductor-")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache or self._private_cache
        os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")  # no compile worker pool on 2 cores
        # The stub embeds Python without UTF-8 mode; under the C locale open() would decode Inductor's
        # kernel templates as ASCII and fail (UnicodeDecodeError), so this process reads text as UTF-8.
        with contextlib.suppress(locale.Error):
            locale.setlocale(locale.LC_CTYPE, "C.UTF-8")
        import torch  # after the cache variables: Inductor reads them when it is imported
        torch.set_num_threads(1)
        generator = torch.Generator().manual_seed(0)  # fixed weights: same answer on every instance
        layers = []
        for fan_in, fan_out in ((FEATURES, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN, 1)):
            linear = torch.nn.Linear(fan_in, fan_out)
            with torch.no_grad():
                linear.weight.copy_(torch.randn(fan_out, fan_in, generator=generator) / fan_in ** 0.5)
                linear.bias.zero_()
            layers += [linear, torch.nn.ReLU()]
        self.torch = torch
        self.module = torch.nn.Sequential(*layers[:-1]).eval()
        self.compiled = torch.compile(self.module)  # lazy: nothing is compiled yet
        self.batch_sizes_seen: set[int] = set()
        self.executions = 0

    def answer(self, request) -> list:
        x = required_input(request, "X").as_numpy()  # [batch, 16]
        if not np.all(np.isfinite(x)):
            raise ClientError("X holds NaN or infinite values: send finite features")
        began = time.perf_counter()
        with self.torch.inference_mode():
            scores = self.compiled(self.torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()
        if len(x) not in self.batch_sizes_seen:  # a new shape may make torch.compile build another graph
            self.batch_sizes_seen.add(len(x))
            pb_utils.Logger.log_info(f"first call with batch {len(x)}: {time.perf_counter() - began:.3f} s")
        return [pb_utils.Tensor("SCORE", scores.astype(np.float32))]

    def execute(self, requests):
        self.executions += 1
        if self.executions <= LOGGED_EXECUTIONS:  # shows how warm-up samples arrive (batch_size = requests)
            sizes = [len(pb_utils.get_input_tensor_by_name(r, "X").as_numpy()) if pb_utils.get_input_tensor_by_name(
                r, "X") is not None else 0 for r in requests]
            pb_utils.Logger.log_info(f"execute #{self.executions}: {len(requests)} request(s), batch sizes {sizes}")
        return respond(requests, self.answer)

    def finalize(self):
        if self._private_cache:
            shutil.rmtree(self._private_cache, ignore_errors=True)
