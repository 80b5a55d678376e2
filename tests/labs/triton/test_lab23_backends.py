"""Triton Lab 2.3 · 01/02: the `runtimes` and `native` repositories. Statically: every Python-backend model is a
thin file over triton_course_models with its runtime in config.pbtxt, and every native configuration passes
Triton's schema with the tensor names its backend needs. On the real server (started once for the module, from
a repository built by llmserve.triton.backends.build_repository): each runtime answers raw HTTP + JSON with the
decision eager PyTorch makes, stacks a batch, refuses NaN and a wrong shape with 400, and each native model is
refused for the backend this bundle lacks."""
import numpy as np
import pytest

from llmserve.course.config import REPO_ROOT
from llmserve.triton.model_config import lint_model_config, parse_model_config

LAB = REPO_ROOT / "02-Labs" / "Triton_Track" / "Lab-2.3-Backend_Integration"
RUNTIMES_REPO = LAB / "repositories" / "runtimes"
NATIVE_REPO = LAB / "repositories" / "native"
RUNTIMES = ("torch_eager", "torchscript", "onnxruntime", "openvino")
SERVED = [f"classifier_{runtime}" for runtime in RUNTIMES]
NATIVE = {"native_libtorch": "pytorch", "native_onnxruntime": "onnxruntime", "native_openvino": "openvino"}


def _config(folder, model):
    return parse_model_config((folder / model / "config.pbtxt").read_text())


def test_python_backend_models_name_their_runtime_and_stay_thin():
    assert sorted(p.name for p in RUNTIMES_REPO.iterdir() if p.is_dir()) == sorted(SERVED)
    for runtime, model in zip(RUNTIMES, SERVED, strict=True):
        config = _config(RUNTIMES_REPO, model)
        assert config.name == model and config.backend == "python"
        assert config.parameters["runtime"].string_value == runtime
        assert config.parameters["intra_op_threads"].string_value == "1"
        assert config.max_batch_size == 64 and config.HasField("dynamic_batching")
        assert [t.name for t in config.input] == ["X"] and [t.name for t in config.output] == ["LOGITS", "CLASS"]
        assert lint_model_config(config, RUNTIMES_REPO / model) == []
        source = (RUNTIMES_REPO / model / "1" / "model.py").read_text()
        assert "from triton_course_models.backend_model import RuntimeClassifier" in source and "def " not in source
        assert not list((RUNTIMES_REPO / model / "1").glob("model.[ox]*")), "artefacts are built, not committed"


def test_native_configs_pass_the_schema_with_their_backends_names():
    assert sorted(p.name for p in NATIVE_REPO.iterdir() if p.is_dir()) == sorted(NATIVE)
    libtorch = _config(NATIVE_REPO, "native_libtorch")
    assert libtorch.platform == "pytorch_libtorch"
    assert [t.name for t in libtorch.input] == ["INPUT__0"] and [t.name for t in libtorch.output] == ["OUTPUT__0"]
    onnx = _config(NATIVE_REPO, "native_onnxruntime")
    assert onnx.platform == "onnxruntime_onnx" and onnx.parameters["intra_op_thread_count"].string_value == "1"
    openvino = _config(NATIVE_REPO, "native_openvino")
    assert openvino.backend == "openvino" and openvino.parameters["INFERENCE_NUM_THREADS"].string_value == "1"
    for config in (onnx, openvino):  # ONNX and the IR keep the export's tensor names
        assert [t.name for t in config.input] == ["X"] and [t.name for t in config.output] == ["LOGITS"]
    for model in NATIVE:
        assert lint_model_config(_config(NATIVE_REPO, model)) == []


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from llmserve.triton.backends import build_repository
    from triton_course_models.classifier import build_classifier
    module = build_classifier()
    return module, build_repository(module, [RUNTIMES_REPO, NATIVE_REPO], tmp_path_factory.mktemp("backends"))


def test_build_writes_each_models_artefact_from_one_export(built):
    _, repository = built
    assert repository.models == {**{m: r for m, r in zip(SERVED, RUNTIMES, strict=True)},
                                 "native_libtorch": "torchscript", "native_onnxruntime": "onnxruntime",
                                 "native_openvino": "openvino"}
    for model, files in (("classifier_torch_eager", ["weights.pt"]), ("native_libtorch", ["model.pt"]),
                         ("native_onnxruntime", ["model.onnx"]), ("native_openvino", ["model.xml", "model.bin"])):
        for name in files:
            assert (repository.path / model / "1" / name).stat().st_size > 0, (model, name)
    onnx_copies = {(repository.path / m / "1" / "model.onnx").read_bytes()
                   for m in ("classifier_onnxruntime", "native_onnxruntime")}
    assert len(onnx_copies) == 1  # exported once, copied to both
    assert not (repository.path / ".artefacts").exists()
    assert repository.artefacts["onnxruntime"].validated_by.startswith("onnx.checker")


@pytest.fixture(scope="module")
def server(built):
    from llmserve.servers import TritonServer
    _, repository = built
    with TritonServer(repository.path, model_control="explicit", load_models=SERVED) as running:
        yield running


@pytest.fixture(scope="module")
def rows_and_reference(built):
    import torch
    module, _ = built
    rows = np.random.default_rng(11).standard_normal((8, 16)).astype(np.float32)
    with torch.inference_mode():
        return rows, module(torch.from_numpy(rows)).numpy()


@pytest.mark.server
@pytest.mark.parametrize("model", SERVED)
def test_each_runtime_answers_raw_json_like_eager_pytorch(server, raw_http, rows_and_reference, model):
    rows, reference = rows_and_reference
    status, body = raw_http.infer(server.http_url, model, {"X": rows})
    assert status == 200, body
    out = raw_http.outputs(body)
    logits = np.array(out["LOGITS"], np.float32).reshape(8, 4)
    np.testing.assert_allclose(logits, reference, atol=1e-4)
    assert out["CLASS"] == reference.argmax(axis=1).tolist()


@pytest.mark.server
@pytest.mark.parametrize("model", SERVED)
def test_each_runtime_refuses_nan_and_a_wrong_shape_with_400(server, raw_http, model):
    nan_row = np.zeros((1, 16), np.float32)
    nan_row[0, 5] = np.nan
    raw_http.expect(server.http_url, model, {"X": nan_row}, 400, "NaN or infinite", binary=True)
    raw_http.expect(server.http_url, model, {"X": np.zeros((1, 15), np.float32)}, 400, "unexpected shape")


@pytest.mark.server
def test_concurrent_single_rows_are_stacked_into_one_execution(server, rows_and_reference):
    import concurrent.futures

    import tritonclient.grpc as grpcclient
    rows, reference = rows_and_reference
    client = grpcclient.InferenceServerClient(server.grpc_url)
    model = "classifier_onnxruntime"
    before = client.get_inference_statistics(model, as_json=True)["model_stats"][0]

    def one(i):
        tensor = grpcclient.InferInput("X", [1, 16], "FP32")
        tensor.set_data_from_numpy(rows[i % 8:i % 8 + 1])
        return i % 8, int(client.infer(model, [tensor]).as_numpy("CLASS")[0, 0])

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(64)))
    after = client.get_inference_statistics(model, as_json=True)["model_stats"][0]
    client.close()
    assert all(cls == reference[i].argmax() for i, cls in answers)  # each request got its own row's answer
    requests = int(after["inference_count"]) - int(before["inference_count"])
    executions = int(after["execution_count"]) - int(before["execution_count"])
    assert requests == 64 and executions < requests, (requests, executions)


@pytest.mark.server
def test_native_models_are_refused_for_the_missing_backend(server):
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException
    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        for model, backend in NATIVE.items():
            with pytest.raises(InferenceServerException, match=f"unable to find backend library for backend '{backend}'"):
                client.load_model(model)
        assert {m["name"] for m in client.get_model_repository_index(as_json=True)["models"]
                if m.get("state") == "READY"} == set(SERVED)
    finally:
        client.close()
