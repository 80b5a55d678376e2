"""llmserve.triton.backends and triton_course_models.runtimes without a server: which artefact a config asks
for, the agreement table, and a real ONNX / OpenVINO export of the Lab 2.3 classifier checked by its own tools
and run by the same loader the Triton stubs use."""
import numpy as np
import pytest

from llmserve.triton.backends import agreement, decision_margin, runtime_of_config
from llmserve.triton.model_config import parse_model_config


def _config(text: str):
    return parse_model_config(text)


def test_runtime_of_config_reads_the_parameter_or_the_platform():
    python = _config('name: "m" backend: "python" parameters: { key: "runtime", value: { string_value: "openvino" } }')
    assert runtime_of_config(python) == "openvino"
    assert runtime_of_config(_config('name: "m" platform: "onnxruntime_onnx"')) == "onnxruntime"
    assert runtime_of_config(_config('name: "m" platform: "pytorch_libtorch"')) == "torchscript"
    assert runtime_of_config(_config('name: "m" backend: "openvino"')) == "openvino"
    with pytest.raises(ValueError, match="runtime"):
        runtime_of_config(_config('name: "m" backend: "python"'))
    with pytest.raises(ValueError, match="no artefact"):
        runtime_of_config(_config('name: "m" platform: "tensorrt_plan"'))


def test_agreement_counts_changed_decisions_and_the_largest_difference():
    reference = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.4]], np.float32)
    close = reference + 1e-6
    flipped = reference.copy()
    flipped[2] = [0.4, 0.5]
    rows = {r["runtime"]: r for r in agreement(reference, {"close": close, "flipped": flipped})}
    assert rows["close"]["same_decisions"] == 1.0 and rows["close"]["max_abs_diff"] == pytest.approx(1e-6, rel=0.1)
    assert rows["flipped"]["differing_rows"] == 1 and rows["flipped"]["same_decisions"] == pytest.approx(2 / 3)
    assert rows["flipped"]["max_abs_diff"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="shape"):
        agreement(reference, {"short": reference[:2]})
    np.testing.assert_allclose(decision_margin(reference), [1.0, 1.0, 0.1], rtol=1e-6)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The classifier exported to ONNX (checked by onnx.checker) and converted to OpenVINO IR (read back)."""
    import torch

    from llmserve.triton.backends import export_onnx, export_openvino
    from triton_course_models.classifier import build_classifier
    folder = tmp_path_factory.mktemp("artefacts")
    module = build_classifier()
    onnx_how = export_onnx(module, torch.zeros(2, 16), folder / "model.onnx")
    openvino_how = export_openvino(folder / "model.onnx", folder / "model.xml")
    return module, folder, onnx_how, openvino_how


def test_the_same_seed_gives_the_same_weights_and_leaves_the_random_stream_alone():
    import torch

    from triton_course_models.classifier import build_classifier
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a, b = build_classifier(), build_classifier()
    assert torch.equal(torch.rand(1), expected_next)  # build_classifier did not consume the caller's stream
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert not torch.equal(build_classifier(seed=1).head.weight, a.head.weight)


def test_onnx_and_openvino_artefacts_agree_with_eager_pytorch(exported):
    import torch

    from triton_course_models.runtimes import load_runtime
    module, folder, onnx_how, openvino_how = exported
    assert onnx_how.startswith("onnx.checker") and "X[?,16]" in openvino_how and "LOGITS[?,4]" in openvino_how
    assert (folder / "model.bin").stat().st_size > 8_000_000  # the weights, in fp32 (2.1 M parameters)
    rows = np.random.default_rng(0).standard_normal((33, 16)).astype(np.float32)  # an odd batch: dynamic dim
    with torch.inference_mode():
        reference = module(torch.from_numpy(rows)).numpy()
    for runtime in ("onnxruntime", "openvino"):
        logits = load_runtime(runtime, folder, intra_op_threads=1)(rows)
        assert logits.shape == (33, 4)
        row = agreement(reference, {runtime: logits})[0]
        assert row["max_abs_diff"] < 1e-4 and row["same_decisions"] == 1.0, row


def test_onnx_checker_refuses_an_unknown_operator(exported):
    import onnx
    _, folder, _, _ = exported
    model = onnx.load(str(folder / "model.onnx"))
    next(node for node in model.graph.node if node.op_type == "Gemm").op_type = "Gemmm"
    with pytest.raises(onnx.checker.ValidationError, match="Gemmm"):
        onnx.checker.check_model(model, full_check=True)


def test_load_runtime_names_what_is_missing(tmp_path):
    from triton_course_models.runtimes import load_runtime
    with pytest.raises(FileNotFoundError, match="model.onnx is missing"):
        load_runtime("onnxruntime", tmp_path)
    with pytest.raises(ValueError, match="unknown runtime"):
        load_runtime("tensorrt", tmp_path)
    with pytest.raises(ValueError, match="at least 1"):
        load_runtime("onnxruntime", tmp_path, intra_op_threads=0)
