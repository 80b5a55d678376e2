"""Triton Lab 2.5 · 04's models: the checksum of any-length tensors, and the scorer the faults break."""
import numpy as np

from llmserve.course.config import REPO_ROOT

TROUBLESHOOTING = REPO_ROOT / "02-Labs" / "Triton_Track" / "Lab-2.5-Production_Operations" / "repositories" / "troubleshooting"


def test_checksum_sums_a_tensor_of_any_length_and_refuses_nan(stub):
    folder = TROUBLESHOOTING / "checksum"
    model = stub.model(folder / "1" / "model.py", folder / "config.pbtxt")
    big = np.full(2**20, 0.5, dtype=np.float32)  # 4 MiB: float32 accumulation would lose precision, float64 does not
    ok, bad = model.execute([stub.request(DATA=big), stub.request(DATA=np.array([1.0, np.nan], dtype=np.float32))])
    out = stub.outputs(ok)["SUM"]
    assert out.dtype == np.float32 and out.shape == (1,) and out[0] == 2**19
    code, message = stub.error(bad)
    assert code == stub.INVALID_ARG and "NaN" in message


def test_scorer_is_the_course_mlp_with_the_depth_of_its_config(stub):
    folder = TROUBLESHOOTING / "scorer"
    model = stub.model(folder / "1" / "model.py", folder / "config.pbtxt")
    assert model.depth == 4
    [response] = model.execute([stub.request(X=np.zeros((1, 16), dtype=np.float32))])
    assert stub.outputs(response)["SCORE"].shape == (1, 1)
