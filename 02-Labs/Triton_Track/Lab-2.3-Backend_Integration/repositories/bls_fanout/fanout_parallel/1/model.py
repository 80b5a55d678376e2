"""fanout_parallel: X fp32 [n, 16] -> SCORES fp32 [n, 1] through n BLS sub-requests to worker (Triton Lab 2.3 · 04).

The sub-requests go all sub-requests at once with async_exec() and asyncio.gather (config.pbtxt `mode`).
X not [n, 16], more than max_rows rows, or not finite: HTTP 400. Logic: triton_course_models.fanout.
"""
from triton_course_models.fanout import FanOutBLS


class TritonPythonModel(FanOutBLS):
    pass
