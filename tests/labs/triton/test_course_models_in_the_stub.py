"""Lab 2.2's thin model files import `triton_course_models`: this checks, on the real server, that
Triton's Python-backend stub finds the package where setup.sh installs it (an editable install of
the repository into .venv-triton), also for a model sent with `load_model(files=...)`.

What the stub does (observed here): it embeds Python in isolated mode (PYTHONPATH is ignored) and
takes its environment from the first `python3` on PATH (.venv-triton/bin, put first by TritonServer);
site-packages' .pth files are read, so the editable install's path entry (`<repo>/src`) is on
sys.path. A model folder is on sys.path too, but `load_model(files=...)` copies only the files sent
into a temporary folder: a sibling import works from the repository and fails from files.
"""
import json

import numpy as np
import pytest
from google.protobuf import json_format

from llmserve.course.config import REPO_ROOT, config
from llmserve.servers import TritonServer
from llmserve.triton.model_config import parse_model_config

pytestmark = pytest.mark.server

SCORER = REPO_ROOT / "02-Labs" / "Triton_Track" / "Lab-2.2-Multi_Model_Management" / "repositories" / "lifecycle" / "scorer"
PROBE_CONFIG = """name: "probe"
backend: "python"
max_batch_size: 0
input [ { name: "X", data_type: TYPE_FP32, dims: [ 1 ] } ]
output [ { name: "INFO", data_type: TYPE_STRING, dims: [ 1 ] } ]
"""
PROBE_MODEL = '''import json
import os
import sys

import numpy as np
import triton_python_backend_utils as pb_utils

import triton_course_models


def sibling():
    try:
        import sibling_helper  # noqa: F401
        return True
    except ImportError:
        return False


class TritonPythonModel:
    def initialize(self, args):
        self.info = json.dumps({"package": triton_course_models.__file__, "model_file": __file__,
                                "isolated": sys.flags.isolated, "prefix": sys.prefix, "path": sys.path,
                                "sibling_import": sibling()})

    def execute(self, requests):
        return [pb_utils.InferenceResponse([pb_utils.Tensor("INFO", np.array([self.info.encode()], dtype=object))])
                for _ in requests]
'''


def _info(client, model):
    import tritonclient.grpc as grpcclient
    tensor = grpcclient.InferInput("X", [1], "FP32")
    tensor.set_data_from_numpy(np.ones(1, np.float32))
    return json.loads(client.infer(model, [tensor]).as_numpy("INFO")[0])


def test_the_stub_imports_the_editable_package_from_a_repository_and_from_files(tmp_path):
    repository = tmp_path / "repo"
    (repository / "probe" / "1").mkdir(parents=True)
    (repository / "probe" / "config.pbtxt").write_text(PROBE_CONFIG)
    (repository / "probe" / "1" / "model.py").write_text(PROBE_MODEL)
    (repository / "probe" / "1" / "sibling_helper.py").write_text("HELPER = True\n")
    shadow = tmp_path / "shadow" / "triton_course_models"  # would win if the stub honoured PYTHONPATH
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('PYTHONPATH was used')\n")
    package = str(REPO_ROOT / "src" / "triton_course_models" / "__init__.py")

    with TritonServer(repository, model_control="explicit", env={"PYTHONPATH": str(shadow.parent)}) as server:
        client = server.grpc_client()
        client.load_model("probe")
        from_repository = _info(client, "probe")
        assert from_repository["package"] == package
        assert from_repository["isolated"] == 1 and str(shadow.parent) not in from_repository["path"]
        assert from_repository["prefix"] == str(config().triton_python_env)
        assert from_repository["sibling_import"]  # the model's own folder is on sys.path

        served = client.get_model_config("probe", as_json=True)["config"]
        client.load_model("probe_files", config=json.dumps({**served, "name": "probe_files"}),
                          files={"file:1/model.py": PROBE_MODEL.encode()})
        from_files = _info(client, "probe_files")
        assert from_files["package"] == package
        assert not from_files["model_file"].startswith(str(repository))  # a temporary copy
        assert not from_files["sibling_import"]  # only the files sent were copied

        # a real thin model of Lab 2.2, sent as files (what notebook 03 does with scorer version 3)
        scorer = json_format.MessageToDict(parse_model_config((SCORER / "config.pbtxt").read_text()),
                                           preserving_proto_field_name=True)
        scorer.update(name="scorer_inline", version_policy={"latest": {"num_versions": 1}})
        client.load_model("scorer_inline", config=json.dumps(scorer),
                          files={"file:1/model.py": (SCORER / "3" / "model.py").read_bytes()})
        import tritonclient.grpc as grpcclient
        tensor = grpcclient.InferInput("X", [1, 16], "FP32")
        tensor.set_data_from_numpy(np.zeros((1, 16), np.float32))
        assert client.infer("scorer_inline", [tensor]).as_numpy("VERSION").item() == 3
