"""What every course model needs: reading inputs, answering each request, and the right error code.

A client mistake (an empty prompt, text that is not UTF-8, a token id outside the vocabulary) is
answered with `TritonError(msg, TritonError.INVALID_ARG)`, which reaches an HTTP client as 400 and a
gRPC client as INVALID_ARGUMENT. Any other failure of one request is the model's fault and is
answered as INTERNAL (HTTP 500). Either way only that request fails; the others of the batch are
answered. (An exception raised out of `execute` would fail every request of the batch with 500.)
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import triton_python_backend_utils as pb_utils


class ClientError(Exception):
    """The request cannot be answered because of what the client sent: HTTP 400."""


def client_error(message: str):
    """An error response the client can act on (HTTP 400, gRPC INVALID_ARGUMENT)."""
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(message, pb_utils.TritonError.INVALID_ARG))


def server_error(message: str):
    """An error response that is the model's fault (HTTP 500, gRPC INTERNAL)."""
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(message, pb_utils.TritonError.INTERNAL))


def respond(requests: Sequence, answer: Callable[[object], list]) -> list:
    """One response per request: `answer(request)` returns its output tensors; a ClientError becomes
    a 400 response, any other exception a 500 response, for that request only."""
    responses = []
    for request in requests:
        try:
            responses.append(pb_utils.InferenceResponse(answer(request)))
        except ClientError as error:
            responses.append(client_error(str(error)))
        except Exception as error:  # one failing request must not fail the whole batch
            responses.append(server_error(f"{type(error).__name__}: {error}"))
    return responses


def parameter(model_config: dict, key: str, default: str | None = None) -> str:
    """A string parameter of config.pbtxt (`parameters: { key: ..., value: { string_value: ... } }`); without
    a default, a missing parameter fails the model load with the key it needs."""
    value = model_config.get("parameters", {}).get(key, {}).get("string_value", default)
    if value is None:
        raise pb_utils.TritonModelException(f"config.pbtxt needs a `{key}` parameter")
    return value


def finite_rows(requests: Sequence, name: str) -> tuple[list[tuple[int, np.ndarray]], dict]:
    """The float32 rows of input `name` of every valid request, as (request index, rows), and a 400 response
    per request that lacks it or holds NaN or infinite values (for `answer_rows`)."""
    rows, errors = [], {}
    for index, request in enumerate(requests):
        try:
            x = required_input(request, name).as_numpy()
            if not np.all(np.isfinite(x)):
                raise ClientError(f"{name} holds NaN or infinite values: send finite features")
            rows.append((index, x.astype(np.float32, copy=False)))
        except ClientError as error:
            errors[index] = client_error(str(error))
    return rows, errors


def answer_rows(count: int, rows: list[tuple[int, np.ndarray]], errors: dict,
                outputs: Callable[[int, int], list]) -> list:
    """One response per request, in order: its error from `finite_rows`, or `outputs(start, end)`, the output
    tensors of its rows `start:end` in the batch stacked from `rows`."""
    responses, start, sizes = [], 0, {index: len(x) for index, x in rows}
    for index in range(count):
        if index in errors:
            responses.append(errors[index])
            continue
        end = start + sizes[index]
        responses.append(pb_utils.InferenceResponse(outputs(start, end)))
        start = end
    return responses


def course_model_dir() -> str:
    """The course LLM's folder, from COURSE_MODEL_DIR (set by llmserve's TritonServer); no path in config.pbtxt."""
    model_dir = os.environ.get("COURSE_MODEL_DIR")
    if not model_dir or not os.path.isdir(model_dir):
        raise pb_utils.TritonModelException(
            f"COURSE_MODEL_DIR={model_dir!r} is not a model folder: start Triton with llmserve's TritonServer")
    return model_dir


def required_input(request, name: str):
    """The input tensor `name`; ClientError (HTTP 400) when the request lacks it. (Triton checks the inputs
    against config.pbtxt, but a model with an optional input can receive a request without a required one.)"""
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        raise ClientError(f"{name} is missing from the request")
    return tensor


def text_input(request, name: str, *, allow_empty: bool = False) -> str:
    """The one string of a TYPE_STRING input with dims [1], decoded as UTF-8.

    Raises ClientError (HTTP 400) when it is not valid UTF-8, or when it is empty or only white space
    and `allow_empty` is false.
    """
    raw = required_input(request, name).as_numpy().reshape(-1)[0]
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
    except UnicodeDecodeError as error:
        raise ClientError(f"{name} is not valid UTF-8 text ({error.reason} at byte {error.start})") from None
    if not allow_empty and not text.strip():
        raise ClientError(f"{name} is empty: send the text to process")
    return text


def token_ids_input(request, name: str, vocab_size: int) -> np.ndarray:
    """An INT64 input of token ids as an int64 array; raises ClientError (HTTP 400) when it holds no
    token or an id outside [0, vocab_size)."""
    ids = required_input(request, name).as_numpy().astype(np.int64)
    if ids.size == 0:
        raise ClientError(f"{name} is empty: send at least one token id")
    bad = ids[(ids < 0) | (ids >= vocab_size)]
    if bad.size:
        raise ClientError(f"{name} holds {bad.size} id(s) outside the vocabulary [0, {vocab_size}), e.g. {int(bad[0])}")
    return ids


def string_tensor(name: str, texts: Sequence[str]):
    """A TYPE_STRING output tensor (UTF-8 bytes in an object array)."""
    return pb_utils.Tensor(name, np.array([t.encode("utf-8") for t in texts], dtype=np.object_))
