"""Repository-level checks: CI files, notebook hygiene, lab layout."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from llmserve.course.config import REPO_ROOT
from llmserve.course.nbclean import cleaned_text

ROOT = REPO_ROOT
NOTEBOOKS = sorted(p for p in (ROOT / "02-Labs").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
HUB_ID = re.compile(r"""["'](gpt2|distilgpt2|facebook/opt[-\w.]*|meta-llama/[-\w.]+|microsoft/[-\w.]+|"""
                    r"""mistralai/[-\w.]+|Qwen/[-\w.]+|TinyLlama/[-\w.]+|HuggingFaceTB/[-\w.]+)["']""")


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make lab" in readme
    assert re.search(r"^make test$", (ROOT / ".ci" / "run").read_text(), re.M)


def test_workflows_are_valid_github_workflows():
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert {w.name for w in workflows} >= {"cpu.yml", "gpu.yml"}
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    result = subprocess.run([exe, "--builtin-schema", "vendor.github-workflows", *map(str, workflows)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "COURSE_PROFILE: gpu" in (ROOT / ".github" / "workflows" / "gpu.yml").read_text()


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT / "02-Labs")))
def test_notebook_hygiene(path):
    notebook = json.loads(path.read_text())
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    cells = notebook["cells"]
    for cell in cells:
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, "outputs not stripped"
    first = "".join(cells[0]["source"])
    assert cells[0]["cell_type"] == "markdown" and first.startswith("# "), "first cell must be the title"
    assert "Learning objectives" in first, "title cell must list learning objectives"
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert not HUB_ID.search(code), "model-hub identifier in a notebook: use the course model"
    first_code = next("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert "session()" in first_code, "the first code cell prints the session"
    assert re.match(r"\d\d-[A-Za-z_]+\.ipynb$", path.name)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT / "02-Labs")))
def test_notebook_is_stored_as_nbclean_writes_it(path):
    assert cleaned_text(path) == path.read_text(encoding="utf-8"), \
        f"{path.name} is not stored clean (outputs, metadata or format): run `make nbclean`"


def test_nbclean_strips_outputs_and_metadata(tmp_path):
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "other", "display_name": "x"},
                                                  "widgets": {"state": 1}})
    code = nbformat.v4.new_code_cell("print(1)", execution_count=3, metadata={"scrolled": True},
                                     outputs=[nbformat.v4.new_output("stream", text="1\n")])
    notebook.cells = [nbformat.v4.new_markdown_cell("# t"), code]
    path = tmp_path / "n.ipynb"
    nbformat.write(notebook, path)
    cleaned = nbformat.reads(cleaned_text(path), as_version=4)
    assert cleaned.metadata == {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                                "language_info": {"name": "python"}}
    assert cleaned.cells[1].outputs == [] and cleaned.cells[1].execution_count is None
    assert cleaned.cells[1].metadata == {} and cleaned.cells[1].source == "print(1)"
    assert cleaned_text(path) != path.read_text()  # the hygiene test above would catch this notebook


@pytest.mark.parametrize("lab", sorted({p.parent for p in NOTEBOOKS}), ids=lambda p: p.name)
def test_every_lab_has_a_readme(lab):
    assert (lab / "README.md").exists()


def test_python_code_passes_ruff():
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent))
    result = subprocess.run([exe, "check", "src", "tests", "conftest.py", "tools", "00-Course_Setup", "02-Labs"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout
