"""The repository's own tests, step 2 of the pipeline: fast checks of the model files, without a server.

Each version's model.py is imported as Triton's Python-backend stub would import it (with the course's
stand-in for `triton_python_backend_utils`) and initialised with the args Triton builds from config.pbtxt.
These tests do not serve a request through Triton: that is the smoke test's job (step 3), on the real server.
Run from the repository's root: `python -m pytest deploy/ci/tests`.
"""
import importlib.util
import json
import sys
from pathlib import Path

import pytest
from google.protobuf import json_format

from llmserve.course.config import REPO_ROOT
from llmserve.triton.model_config import parse_model_config

REPOSITORY = Path("repositories/pipeline")
_fake = importlib.util.spec_from_file_location(
    "triton_python_backend_utils", REPO_ROOT / "tests" / "unit" / "triton_models" / "fake_pb_utils.py")
pb_utils = importlib.util.module_from_spec(_fake)
_fake.loader.exec_module(pb_utils)
sys.modules.setdefault("triton_python_backend_utils", pb_utils)

VERSIONS = sorted(REPOSITORY.glob("*/[0-9]*/model.py"))


def load(model_py: Path):
    spec = importlib.util.spec_from_file_location(f"model_{model_py.parts[-3]}_{model_py.parts[-2]}", model_py)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_repository_has_model_files():
    assert VERSIONS, f"no */<version>/model.py under {REPOSITORY.resolve()} (run from the repository's root)"


@pytest.mark.parametrize("model_py", VERSIONS, ids=lambda p: f"{p.parts[-3]}/{p.parts[-2]}")
def test_each_version_imports_knows_its_number_and_initialises_from_its_config(model_py):
    config = parse_model_config((model_py.parent.parent / "config.pbtxt").read_text())
    model = load(model_py).TritonPythonModel()
    if hasattr(model, "version"):  # a copied folder whose file still says the old number
        assert model.version == int(model_py.parent.name), f"{model_py} says version {model.version}"
    as_dict = json_format.MessageToDict(config, preserving_proto_field_name=True)
    model.initialize({"model_config": json.dumps(as_dict), "model_version": model_py.parent.name})
    if hasattr(model, "expand"):  # the scorer's first layer reads as many features as the config's X holds
        assert model.expand.shape[0] == config.input[0].dims[0]
