"""Helpers for the Triton lab tests: a client mistake must come back as HTTP 400 over plain HTTP.

`raw_infer` posts one KServe v2 inference request with `requests`, without tritonclient (so the test
sees the status code and body a curl user would see). Inputs are numpy arrays sent as JSON, or,
with `binary=True`, in Triton's binary tensor extension (needed for bytes that are not UTF-8 and
for NaN, which JSON cannot carry).
"""
import json
import struct
from types import SimpleNamespace

import numpy as np
import pytest
import requests

DATATYPES = {np.float32: "FP32", np.int32: "INT32", np.int64: "INT64", np.object_: "BYTES"}


def _raw_bytes(array: np.ndarray) -> bytes:
    if array.dtype == np.object_:  # BYTES: each element as a 4-byte length and its bytes
        return b"".join(struct.pack("<I", len(v)) + v for v in array.reshape(-1))
    return array.tobytes()


def raw_infer(http_url: str, model: str, inputs: dict, *, version: str = "", binary: bool = False):
    """POST /v2/models/<model>[/versions/<v>]/infer; returns (status code, decoded JSON body)."""
    path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
    header, blobs = {"inputs": []}, []
    for name, array in inputs.items():
        array = np.asarray(array)
        spec = {"name": name, "shape": list(array.shape), "datatype": DATATYPES[array.dtype.type]}
        if binary:
            blobs.append(_raw_bytes(array))
            spec["parameters"] = {"binary_data_size": len(blobs[-1])}
        else:
            values = array.reshape(-1).tolist()
            spec["data"] = [v.decode() for v in values] if array.dtype == np.object_ else values
        header["inputs"].append(spec)
    body = json.dumps(header).encode()
    headers = {"Content-Type": "application/json"}
    if binary:
        headers = {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(body))}
        body += b"".join(blobs)
    reply = requests.post(f"http://{http_url}{path}", data=body, headers=headers, timeout=120)
    if reply.headers.get("Inference-Header-Content-Length"):  # an answer with binary outputs
        return reply.status_code, json.loads(reply.content[:int(reply.headers["Inference-Header-Content-Length"])])
    return reply.status_code, reply.json()


def strings(*texts) -> np.ndarray:
    return np.array([t.encode() if isinstance(t, str) else t for t in texts], dtype=np.object_)


def expect(http_url: str, model: str, inputs: dict, status: int, text: str, **kwargs) -> str:
    """Send the request over plain HTTP; assert its status code and that `text` is in the error."""
    code, body = raw_infer(http_url, model, inputs, **kwargs)
    assert code == status, (model, code, body)
    assert text in body.get("error", ""), (model, body)
    return body["error"]


def outputs(body: dict) -> dict:
    """{output name: data} of a successful JSON answer."""
    return {o["name"]: o["data"] for o in body["outputs"]}


@pytest.fixture(scope="session")
def raw_http():
    """raw_http.infer(...) -> (status, body); raw_http.expect(url, model, inputs, status, text);
    raw_http.strings("a", b"b") -> a BYTES array; raw_http.outputs(body) -> {name: data}."""
    return SimpleNamespace(infer=raw_infer, expect=expect, strings=strings, outputs=outputs)
