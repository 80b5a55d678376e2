"""Triton Lab 2.5 · 04's fault repository: each faulty file fails the way the notebook says, checked without a
server where possible (parse the config with Triton's schema, import model.py in the stub's Python), and one
server test for what only a running Triton shows (a failed load keeps the old version; a failed model makes the
server unready; a killed stub fails requests while every probe passes)."""
import difflib
import os
import shutil
import signal
import subprocess

import pytest
import requests
from google.protobuf.text_format import ParseError

from llmserve.course.config import REPO_ROOT, config
from llmserve.ops.faults import python_backend_stubs, wait_until
from llmserve.servers import TritonServer
from llmserve.triton.model_config import config_summary, parse_model_config

LAB = REPO_ROOT / "02-Labs" / "Triton_Track" / "Lab-2.5-Production_Operations"
REPOSITORY = LAB / "repositories" / "troubleshooting"
BODY = {"inputs": [{"name": "X", "shape": [1, 16], "datatype": "FP32", "data": [0.25] * 16}]}


def import_in_stub_python(model_py):
    """Import a model.py with the Python the stub embeds (.venv-triton), pb_utils replaced by an empty module
    (model files use it only at run time): (exit code, stderr)."""
    code = ("import sys, types, runpy; sys.modules['triton_python_backend_utils'] = types.ModuleType('pb_utils'); "
            f"runpy.run_path({str(model_py)!r})")
    result = subprocess.run([str(config().triton_python_env / "bin" / "python"), "-c", code],
                            capture_output=True, text=True, timeout=120)
    return result.returncode, result.stderr


def test_healthy_configs_parse_and_scorer_bounds_its_queue():
    for model in ("scorer", "checksum", "scorer_import_error"):
        parse_model_config((REPOSITORY / model / "config.pbtxt").read_text())
    scorer = parse_model_config((REPOSITORY / "scorer" / "config.pbtxt").read_text())
    policy = scorer.dynamic_batching.default_queue_policy
    assert policy.timeout_action == policy.REJECT and policy.default_timeout_microseconds == 50_000
    assert config_summary(scorer)["input"] == [("X", "TYPE_FP32", [16])]
    assert not scorer.name, "no name in config.pbtxt: the file can be deployed over another model's folder"
    checksum = config_summary(parse_model_config((REPOSITORY / "checksum" / "config.pbtxt").read_text()))
    assert checksum["input"] == [("DATA", "TYPE_FP32", [-1])], "any length: the request size is the client's"


def test_bad_config_fails_to_parse_where_the_notebook_says_and_differs_by_one_bracket():
    bad = (REPOSITORY / "scorer_bad_config" / "config.pbtxt").read_text()
    with pytest.raises(ParseError, match=r'7:1 : .*Expected ",", found "parameters"|7:1.*Expected ","'):
        parse_model_config(bad)
    good = (REPOSITORY / "scorer" / "config.pbtxt").read_text()
    changed = [line for line in difflib.ndiff(good.splitlines(), bad.splitlines())
               if line[:1] in "+-" and not line[2:].startswith("#")]
    assert changed == ['- output [ { name: "SCORE", data_type: TYPE_FP32, dims: [ 1 ] } ]',
                       '+ output [ { name: "SCORE", data_type: TYPE_FP32, dims: [ 1 ] }']


def test_import_error_model_fails_in_the_stub_python_and_the_healthy_one_imports():
    code, stderr = import_in_stub_python(REPOSITORY / "scorer_import_error" / "1" / "model.py")
    assert code != 0 and "ImportError: cannot import name 'CalibratedMLP'" in stderr, stderr
    for model in ("scorer", "scorer_bad_config", "checksum"):
        code, stderr = import_in_stub_python(REPOSITORY / model / "1" / "model.py")
        assert code == 0, (model, stderr)


@pytest.mark.server
def test_failed_loads_keep_serving_and_a_killed_stub_fails_behind_green_probes(tmp_path):
    live = tmp_path / "repository"
    shutil.copytree(REPOSITORY, live)
    # A short exit timeout: after a failed reload or a killed stub, Triton waits all of it at shutdown.
    with TritonServer(live, model_control="explicit", load_models=["scorer"],
                      extra_args=["--exit-timeout-secs=2"]) as server:
        url = f"http://{server.http_url}"

        def infer():
            return requests.post(f"{url}/v2/models/scorer/infer", json=BODY, timeout=30).status_code

        def ready():
            return requests.get(f"{url}/v2/health/ready", timeout=5).status_code

        shutil.copy(REPOSITORY / "scorer_bad_config" / "config.pbtxt", live / "scorer" / "config.pbtxt")
        assert requests.post(f"{url}/v2/repository/models/scorer/load", timeout=60).status_code == 500
        shutil.copy(REPOSITORY / "scorer" / "config.pbtxt", live / "scorer" / "config.pbtxt")
        reply = requests.post(f"{url}/v2/repository/models/scorer_import_error/load", timeout=60)
        assert reply.status_code == 400 and "CalibratedMLP" in reply.json()["error"]
        assert (infer(), ready()) == (200, 400), "the old scorer serves; one failed model makes the server unready"

        os.kill(python_backend_stubs(server.process.pid)["scorer_0_0"], signal.SIGKILL)
        wait_until(lambda: "scorer_0_0" not in python_backend_stubs(server.process.pid), timeout_s=10)
        assert infer() == 500
        model_ready = requests.get(f"{url}/v2/models/scorer/ready", timeout=5).status_code
        assert model_ready == 200 and requests.get(f"{url}/v2/health/live", timeout=5).status_code == 200
        for action in ("unload", "load"):
            assert requests.post(f"{url}/v2/repository/models/scorer/{action}", timeout=60).status_code == 200
        wait_until(lambda: infer() == 200, timeout_s=30)
