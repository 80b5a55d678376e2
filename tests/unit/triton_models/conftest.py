"""Course models run here with a fake `triton_python_backend_utils` (fake_pb_utils.py), no server.

The `stub` fixture does what Triton's Python-backend stub does around a model: import a model.py by
path, build the `args` of initialize() from a config.pbtxt, build requests, read responses.
"""
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from llmserve.course.config import REPO_ROOT, config

_spec = importlib.util.spec_from_file_location("triton_python_backend_utils",
                                               Path(__file__).with_name("fake_pb_utils.py"))
pb_utils = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pb_utils)
sys.modules.setdefault("triton_python_backend_utils", pb_utils)

LAB22 = REPO_ROOT / "02-Labs" / "Triton_Track" / "Lab-2.2-Multi_Model_Management" / "repositories"


def load(path: Path):
    """Import a model.py by path, as the stub does; returns the module."""
    spec = importlib.util.spec_from_file_location("_model_" + "_".join(Path(path).parts[-3:-1]), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def args(config_path: Path | None = None) -> dict:
    """The `args` Triton hands to initialize(): model_config as JSON with the proto's field names."""
    if config_path is None:
        return {"model_config": "{}"}
    from google.protobuf import json_format

    from llmserve.triton.model_config import parse_model_config
    message = parse_model_config(Path(config_path).read_text())
    return {"model_config": json.dumps(json_format.MessageToDict(message, preserving_proto_field_name=True))}


def request(**inputs):
    """A request with numpy inputs; a str or bytes value becomes a one-element TYPE_STRING tensor."""
    tensors = []
    for name, value in inputs.items():
        if isinstance(value, (str, bytes)):
            value = np.array([value.encode() if isinstance(value, str) else value], dtype=np.object_)
        tensors.append(pb_utils.Tensor(name, value))
    return pb_utils.InferenceRequest("test", tensors, [])


def outputs(response) -> dict:
    assert not response.has_error(), response.error().message()
    return {t.name(): t.as_numpy() for t in response.output_tensors()}


def error(response) -> tuple[int, str]:
    """(code, message) of an error response."""
    assert response.has_error(), f"expected an error, got outputs {[t.name() for t in response.output_tensors()]}"
    return response.error().code(), response.error().message()


def model(path: Path, config_path: Path | None = None):
    """A model.py's TritonPythonModel, initialised as the stub would."""
    instance = load(path).TritonPythonModel()
    instance.initialize(args(config_path))
    return instance


@pytest.fixture(scope="session")
def stub():
    """The helpers above, with COURSE_MODEL_DIR set as llmserve's TritonServer sets it."""
    previous = os.environ.get("COURSE_MODEL_DIR")
    os.environ["COURSE_MODEL_DIR"] = str(config().model_dir)
    yield SimpleNamespace(pb_utils=pb_utils, lab22=LAB22, load=load, args=args, request=request, model=model,
                          outputs=outputs, error=error, INVALID_ARG=pb_utils.TritonError.INVALID_ARG,
                          INTERNAL=pb_utils.TritonError.INTERNAL)
    if previous is None:
        os.environ.pop("COURSE_MODEL_DIR", None)
    else:
        os.environ["COURSE_MODEL_DIR"] = previous
