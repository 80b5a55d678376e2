"""checksum: triton_course_models.payload.TensorSum, the model of Triton Lab 2.5 · 04's shared-memory fault.

Its input may be megabytes long, and the stub receives it through /dev/shm: with too small a /dev/shm the
request fails while the model stays ready.
"""
from triton_course_models.payload import TensorSum


class TritonPythonModel(TensorSum):
    """DATA fp32 [n] -> SUM fp32 [1]; non-finite DATA is a client error (HTTP 400)."""
