"""llmserve.triton.model_config's lint: the rules Triton's loader applies, found before a server starts."""
from pathlib import Path

import pytest

from llmserve.course.config import REPO_ROOT
from llmserve.triton.model_config import lint_model_config, lint_repository, parse_model_config

GOOD = '''name: "m"
backend: "python"
max_batch_size: 8
input [ { name: "X", data_type: TYPE_FP32, dims: [ 16 ] } ]
output [ { name: "Y", data_type: TYPE_FP32, dims: [ -1 ] } ]
'''


def model_folder(root: Path, config: str, versions=("1",), name="m", model_py=True) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.pbtxt").write_text(config)
    for version in versions:
        (folder / version).mkdir()
        if model_py:
            (folder / version / "model.py").write_text("class TritonPythonModel:\n    pass\n")
    return folder


def problems(config: str) -> list[str]:
    return lint_model_config(parse_model_config(config))


def test_a_good_config_and_its_files_are_clean(tmp_path):
    folder = model_folder(tmp_path, GOOD)
    assert lint_model_config(parse_model_config(GOOD), folder) == []
    assert lint_repository(tmp_path) == {"m": []}


@pytest.mark.parametrize("change, expected", [
    (("dims: [ 16 ]", "dims: [ 0 ]"), "input X: dims [0]: each dimension must be >= 1, or -1"),
    (("dims: [ 16 ]", "dims: [ -2 ]"), "dims [-2]"),
    (("dims: [ 16 ]", "dims: [ ]"), "input X: no dims"),
    (("data_type: TYPE_FP32, dims: [ 16 ]", "dims: [ 16 ]"), "input X: no data_type"),
    (('output [ {', 'output [ { name: "Y", data_type: TYPE_FP32, dims: [ 1 ] }, {'), "output Y: declared twice"),
    (("max_batch_size: 8", "max_batch_size: -1"), "max_batch_size -1"),
    (("max_batch_size: 8", "max_batch_size: 0\ndynamic_batching { }"), "dynamic_batching needs max_batch_size > 0"),
    (("max_batch_size: 8", "max_batch_size: 8\ndynamic_batching { preferred_batch_size: [ 4, 16 ] }"),
     "preferred_batch_size [16] > max_batch_size 8"),
    (('backend: "python"', ""), "neither `backend` nor `platform`"),
    (("dims: [ 16 ]", "dims: [ 16 ] reshape: { shape: [ 4, 5 ] }"), "reshape [4, 5] holds 20 elements"),
])
def test_each_rule_names_the_tensor_and_the_rule(change, expected):
    old, new = change
    assert old in GOOD
    found = problems(GOOD.replace(old, new))
    assert any(expected in p for p in found), found


def test_a_config_without_outputs_is_fine_only_when_model_py_completes_it(tmp_path):
    config = 'backend: "python"\nmax_batch_size: 0\ninput [ { name: "X", data_type: TYPE_FP32, dims: [ 1 ] } ]\n'
    plain = model_folder(tmp_path, config, name="plain")
    assert any("no output" in p for p in lint_model_config(parse_model_config(config), plain))
    completing = model_folder(tmp_path, config, name="completing")
    (completing / "1" / "model.py").write_text("class TritonPythonModel:\n    def auto_complete_config(c):\n"
                                               "        return c\n")
    assert lint_model_config(parse_model_config(config), completing) == []


def test_files_folder_name_versions_and_model_py(tmp_path):
    named = GOOD.replace('name: "m"', 'name: "other"') + "version_policy: { specific: { versions: [ 1, 3 ] } }\n"
    folder = model_folder(tmp_path, named, versions=("1", "2"), model_py=False)
    found = lint_model_config(parse_model_config(named), folder)
    assert any("differs from its folder" in p for p in found)
    assert any("versions [3], which have no folder" in p for p in found)
    assert any("versions [1, 2] have no model.py" in p for p in found)
    empty = model_folder(tmp_path, GOOD, versions=(), name="empty")
    assert "no version folder (1/, 2/, ...)" in lint_model_config(parse_model_config(GOOD), empty)


def test_the_repository_reports_parse_errors_and_missing_configs(tmp_path):
    model_folder(tmp_path, GOOD.replace("TYPE_FP32", "TYPE_FLOAT32", 1), name="typo")
    (tmp_path / "no_config").mkdir()
    report = lint_repository(tmp_path)
    assert report["no_config"] == ["no config.pbtxt"]
    assert "does not parse" in report["typo"][0] and "TYPE_FLOAT32" in report["typo"][0]


def test_lab21_broken_repository_agrees_with_what_triton_refuses():
    """Lab 2.1's `broken` models fail on the real server (tested there); lint finds the ones a config shows."""
    broken = lint_repository(REPO_ROOT / "02-Labs" / "Triton_Track" / "Lab-2.1-Triton_Server_Basics"
                             / "repositories" / "broken")
    assert broken["bad_dims"] and broken["bad_dtype"] and broken["bad_name"]
