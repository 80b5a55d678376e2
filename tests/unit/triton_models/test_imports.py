"""What the Triton models may import: the stub's environment (.venv-triton) has only the standard
library, numpy, torch, transformers and pb_utils, plus triton_course_models itself - never llmserve."""
import ast
import sys
from pathlib import Path

from llmserve.course.config import REPO_ROOT

PACKAGE = REPO_ROOT / "src" / "triton_course_models"
TRITON_TRACK = REPO_ROOT / "02-Labs" / "Triton_Track"
ALLOWED = {"numpy", "torch", "transformers", "triton_python_backend_utils", "triton_course_models", "__future__",
           "onnxruntime", "openvino",  # Triton Lab 2.3: requirements-triton-env.txt installs both runtimes
           "vllm"}  # Triton Lab 2.3 · 04 only: vllm_stream appends .venv's site-packages first (see its docstring)


def top_level_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: breaks when load_model(files=...) copies a model.py alone
                names.add("." * node.level + (node.module or ""))
            else:
                names.add(node.module.split(".")[0])
    return names


def not_allowed(path: Path) -> set[str]:
    return {name for name in top_level_imports(path) if name not in ALLOWED and name not in sys.stdlib_module_names}


def test_top_level_imports_sees_every_kind_of_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import os.path\nimport numpy as np\nfrom llmserve.servers import x\nfrom . import y\n"
                     "def f():\n    import requests\n")
    assert top_level_imports(probe) == {"os", "numpy", "llmserve", ".", "requests"}
    assert not_allowed(probe) == {"llmserve", ".", "requests"}


def test_the_package_imports_only_what_the_stub_environment_has():
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) >= 5
    for module in modules:
        assert not_allowed(module) == set(), module


def test_thin_model_files_import_only_the_package_and_the_stub_environment():
    """Lab 2.2 on: every model.py builds on triton_course_models and imports nothing else foreign."""
    model_files = sorted(p for p in TRITON_TRACK.glob("Lab-2.[2-9]*/repositories/**/model.py"))
    assert len(model_files) >= 17
    for path in model_files:
        assert not_allowed(path) == set(), path
        assert "triton_course_models" in top_level_imports(path), f"{path} repeats logic the package has"


def test_lab21_model_files_stay_self_contained():
    """Lab 2.1 teaches the TritonPythonModel interface: its model files do not use the package."""
    model_files = sorted((TRITON_TRACK / "Lab-2.1-Triton_Server_Basics").rglob("model.py"))
    assert len(model_files) >= 15
    for path in model_files:
        assert "triton_course_models" not in top_level_imports(path), path
        assert not_allowed(path) <= {"safetensors", "embedding_module"}, path
