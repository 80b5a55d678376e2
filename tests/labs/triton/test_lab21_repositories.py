"""Lab 2.1's Triton model repositories, on the real server.

Each good repository loads and every model answers correctly; each model of the
`broken` repository fails with the error text the notebook 02 teaches.
"""

import numpy as np
import pytest

from llmserve.course.config import REPO_ROOT
from llmserve.servers import ServerStartError, TritonServer

LAB = REPO_ROOT / "02-Labs" / "Triton_Track" / "Lab-2.1-Triton_Server_Basics"
REPOSITORIES = LAB / "repositories"

# model folder -> (text the load_model API error contains, text the server log contains)
BROKEN = {
    "bad_dims": ("dimension must be integer >= 1, or -1 to indicate a variable-size dimension",
                 "failed to load 'bad_dims'"),
    "bad_dtype": ("failed to poll from model repository",
                  'Unknown enumeration value of "TYPE_FLOAT32" for field "data_type"'),
    "bad_backend": ("unable to find backend library for backend 'onnxruntime'", "failed to load 'bad_backend'"),
    "bad_name": ("failed to poll from model repository",
                 "unexpected directory name 'bad_name' for model 'some_other_name'"),
    "bad_autocomplete": ("the model expects dims [-1] but the model configuration specifies dims [3]",
                         "failed to load 'bad_autocomplete'"),
}

pytestmark = pytest.mark.server


def _infer(client, model, arrays, output, version=""):
    import tritonclient.http as httpclient
    inputs = []
    for name, array in arrays.items():
        tensor = httpclient.InferInput(name, list(array.shape), "FP32")
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    return client.infer(model, inputs, model_version=version).as_numpy(output)


def test_the_lab_has_exactly_these_repositories():
    # pytorch_deploy (notebooks 03 and 04) and libtorch_export (03) are tested in test_lab21_pytorch_monitoring.py
    assert sorted(p.name for p in LAB.iterdir() if p.is_dir() and not p.name.startswith(".")) == [
        "monitoring", "repositories"]  # the fixed folder names of a lab
    assert sorted(p.name for p in REPOSITORIES.iterdir() if p.is_dir()) == [
        "broken", "config_basics", "first_server", "libtorch_export", "pytorch_deploy", "versions"]
    assert sorted(p.name for p in (REPOSITORIES / "broken").iterdir() if p.is_dir()) == sorted(BROKEN)


def test_first_server_tokenizer_answers_like_the_course_tokenizer(raw_http):
    import tritonclient.http as httpclient
    from transformers import AutoTokenizer

    from llmserve.course.config import config
    tokenizer = AutoTokenizer.from_pretrained(config().model_dir)
    with TritonServer(REPOSITORIES / "first_server") as server:
        client = server.http_client()
        text = "What is the capital of France? ünïcödé ✓"
        tensor = httpclient.InferInput("TEXT", [1], "BYTES")
        tensor.set_data_from_numpy(np.array([text.encode()], dtype=object))
        result = client.infer("tokenizer", [tensor])
        assert result.as_numpy("TOKEN_IDS").tolist() == tokenizer.encode(text, add_special_tokens=False)
        status, body = raw_http.infer(server.http_url, "tokenizer", {"TEXT": raw_http.strings("")})
        assert status == 200 and raw_http.outputs(body)["NUM_TOKENS"] == [0]  # no text, no tokens: a valid answer
        raw_http.expect(server.http_url, "tokenizer", {"TEXT": raw_http.strings(b"\xff\xfe")}, 400,
                        "TEXT is not valid UTF-8", binary=True)
        raw_http.expect(server.http_url, "tokenizer", {"TEXT": raw_http.strings("a", "b")}, 400, "shape")


def test_config_basics_models_answer_and_minimal_is_auto_completed(raw_http):
    from tritonclient.utils import InferenceServerException
    with TritonServer(REPOSITORIES / "config_basics") as server:
        client = server.http_client()
        x = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32)
        factor = np.array([[10], [0.5]], dtype=np.float32)
        np.testing.assert_allclose(_infer(client, "scale", {"X": x, "FACTOR": factor}, "Y"), x * factor)
        np.testing.assert_allclose(_infer(client, "minimal", {"X": x}, "SUM"), x.sum(axis=1, keepdims=True))

        scale = client.get_model_config("scale")
        assert scale["max_batch_size"] == 8
        assert [(g["kind"], g["count"]) for g in scale["instance_group"]] == [("KIND_CPU", 2)]
        minimal = client.get_model_config("minimal")  # its config.pbtxt names only the backend
        assert minimal["max_batch_size"] == 4
        assert [(t["name"], t["data_type"], t["dims"]) for t in minimal["input"]] == [("X", "TYPE_FP32", [-1])]
        assert [(t["name"], t["dims"]) for t in minimal["output"]] == [("SUM", [1])]
        assert minimal["version_policy"] == {"latest": {"num_versions": 1}}

        with pytest.raises(InferenceServerException, match="batch-size must be <= 8"):
            _infer(client, "scale", {"X": np.ones((9, 3), np.float32), "FACTOR": np.ones((9, 1), np.float32)}, "Y")
        # every other input is valid for these models: what breaks config.pbtxt is refused by the server, with 400
        x_int = np.ones((1, 3), np.int32)
        raw_http.expect(server.http_url, "scale", {"X": x_int, "FACTOR": np.ones((1, 1), np.float32)}, 400, "data-type")
        raw_http.expect(server.http_url, "scale", {"X": x, "FACTOR": np.ones((2, 2), np.float32)}, 400, "shape")
        raw_http.expect(server.http_url, "scale", {"X": x}, 400, "FACTOR")
        raw_http.expect(server.http_url, "minimal", {"X": np.ones((5, 3), np.float32)}, 400, "batch-size must be <= 4")


def test_strict_mode_leaves_the_minimal_model_without_inputs():
    with TritonServer(REPOSITORIES / "config_basics", extra_args=["--disable-auto-complete-config"]) as server:
        client = server.http_client()
        minimal = client.get_model_config("minimal")
        assert minimal["input"] == [] and minimal["output"] == [] and minimal["max_batch_size"] == 0
        assert client.is_model_ready("minimal")
        x = np.ones((1, 3), np.float32)
        np.testing.assert_allclose(_infer(client, "scale", {"X": x, "FACTOR": np.ones((1, 1), np.float32)}, "Y"), x)


def test_version_policies_serve_the_expected_versions():
    with TritonServer(REPOSITORIES / "versions") as server:
        client = server.http_client()
        expected = {"multiply_latest": ["2"], "multiply_all": ["1", "2"], "multiply_specific": ["1"]}
        one = np.array([[1.0, 3.0]], np.float32)
        for model, versions in expected.items():
            assert client.get_model_metadata(model)["versions"] == versions
            for version in ("1", "2"):
                assert client.is_model_ready(model, version) == (version in versions)
            for version in versions:  # version v multiplies by v
                np.testing.assert_allclose(_infer(client, model, {"X": one}, "Y", version=version), one * int(version))
            np.testing.assert_allclose(_infer(client, model, {"X": one}, "Y"), one * int(max(versions)))


def test_broken_models_fail_to_load_with_their_error_text():
    from tritonclient.utils import InferenceServerException
    with TritonServer(REPOSITORIES / "broken", model_control="explicit") as server:
        client = server.http_client()
        for model, (api_text, _) in BROKEN.items():
            with pytest.raises(InferenceServerException) as error:
                client.load_model(model)
            assert api_text in error.value.message(), (model, error.value.message())
        log = server.log_path.read_text(errors="replace")
        for model, (_, log_text) in BROKEN.items():
            assert log_text in log, model


def test_broken_repository_stops_a_default_mode_server():
    server = TritonServer(REPOSITORIES / "broken")
    with pytest.raises(ServerStartError, match="failed to load all models"):
        server.start()
    log = server.log_path.read_text(errors="replace")
    for model, (_, log_text) in BROKEN.items():
        assert log_text in log, model
    assert not server.running
