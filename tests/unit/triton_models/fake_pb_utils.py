"""A small stand-in for `triton_python_backend_utils` (pb_utils), which exists only inside Triton's
Python-backend stub: enough of its interface to run course models in a unit test, no server.

It mirrors the real names and signatures (Tensor, InferenceRequest, InferenceResponse, TritonError
with its codes, TritonModelException, get_input_tensor_by_name) and checks what the real ones
check: tensors are NumPy arrays, a response has tensors or an error.
"""
from __future__ import annotations

import numpy as np


class TritonModelException(Exception):
    pass


class TritonError:
    # the values of TRITONSERVER_Error_Code
    UNKNOWN, INTERNAL, NOT_FOUND, INVALID_ARG, UNAVAILABLE, UNSUPPORTED, ALREADY_EXISTS, CANCELLED = range(8)

    def __init__(self, message: str, code: int = INTERNAL):
        if message is None or code is None:
            raise TypeError("TritonError needs a message and a code")
        self._message, self._code = message, code

    def message(self) -> str:
        return self._message

    def code(self) -> int:
        return self._code

    def __repr__(self) -> str:
        return f"TritonError({self._message!r}, code={self._code})"


class Tensor:
    def __init__(self, name: str, array: np.ndarray):
        if not isinstance(name, str):
            raise TypeError(f"tensor name must be str, got {type(name).__name__}")
        if not isinstance(array, np.ndarray):
            raise TypeError(f"tensor {name!r} must be a numpy array, got {type(array).__name__}")
        if array.dtype == np.object_ and not all(isinstance(v, bytes) for v in array.reshape(-1)):
            raise TypeError(f"string tensor {name!r} must hold bytes")
        self._name, self._array = name, array

    def name(self) -> str:
        return self._name

    def as_numpy(self) -> np.ndarray:
        return self._array


class InferenceRequest:
    def __init__(self, model_name: str = "", inputs: list[Tensor] = (), requested_output_names: list[str] = ()):
        self.model_name, self._inputs, self._outputs = model_name, list(inputs), list(requested_output_names)

    def inputs(self) -> list[Tensor]:
        return self._inputs

    def requested_output_names(self) -> list[str]:
        return self._outputs


class InferenceResponse:
    def __init__(self, output_tensors: list[Tensor] | None = None, error: TritonError | None = None):
        if error is None and output_tensors is None:
            raise TypeError("InferenceResponse needs output tensors or an error")
        if error is not None and not isinstance(error, TritonError):
            raise TypeError("error must be a TritonError")
        tensors = list(output_tensors or [])
        if not all(isinstance(t, Tensor) for t in tensors):
            raise TypeError("output tensors must be pb_utils.Tensor")
        self._tensors, self._error = tensors, error

    def output_tensors(self) -> list[Tensor]:
        return self._tensors

    def has_error(self) -> bool:
        return self._error is not None

    def error(self) -> TritonError | None:
        return self._error


def get_input_tensor_by_name(inference_request, name):
    for tensor in inference_request.inputs():
        if tensor.name() == name:
            return tensor
    return None


def get_output_tensor_by_name(inference_response, name):
    for tensor in inference_response.output_tensors():
        if tensor.name() == name:
            return tensor
    return None
