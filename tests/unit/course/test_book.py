"""`make book` (llmserve.course.book) on a small course tree built here: pages, executed outputs,
links rewritten and checked, no network resources. `make test` builds the real book from the run
(its `book` step fails on a broken link)."""
import base64
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from llmserve.course import book
from llmserve.course.config import REPO_ROOT

# A 1x1 PNG, as a plot output of an executed notebook.
PIXEL = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a0a00000000049454e44ae426082")).decode()


def _notebook(path: Path, markdown: str, code: str, outputs=()) -> None:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(code)
    cell.outputs = list(outputs)
    nb.cells = [nbformat.v4.new_markdown_cell(markdown), cell]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


@pytest.fixture
def course(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    lab = root / "02-Labs/T_Track/Lab-2.1-First"
    profiles = "\n".join(f"{p} = {{ n = 1 }}" for p in ("ci", "cpu", "gpu"))
    (root / "02-Labs/T_Track").mkdir(parents=True)
    (root / "course.toml").write_text(textwrap.dedent("""
        [course]
        title = "Test course"
        notebook_budget_s = 150
        notebook_average_budget_s = 65
        suite_budget_s = 3000
        [[track]]
        id = "t"
        name = "T"
        folder = "02-Labs/T_Track"
        overview = "02-Labs/T_Track/OVERVIEW.md"
          [[track.lab]]
          id = "2.1"
          folder = "Lab-2.1-First"
          title = "First"
          hours = "1"
          goal = "test"
          notebooks = [
            { file = "01-Run.ipynb", title = "Run", minutes = 5 },
            { file = "02-Stored.ipynb", title = "Stored", minutes = 5 },
            { file = "03-Planned.ipynb", title = "Planned", minutes = 5 },
          ]
        [workload.g]
        """) + profiles + "\n")
    (root / "README.md").write_text(
        "# Home\n\nSee [the lab](02-Labs/T_Track/Lab-2.1-First/README.md#what-it-shows), "
        "[the first notebook](02-Labs/T_Track/Lab-2.1-First/01-Run.ipynb) and the web: "
        "[vLLM](https://docs.vllm.ai).\n")
    (root / "02-Labs/T_Track/OVERVIEW.md").write_text("# T track\n\n[Lab 2.1](Lab-2.1-First/README.md)\n")
    lab.mkdir(parents=True, exist_ok=True)
    (lab / "README.md").write_text(
        "# Lab 2.1\n\n## What it shows\n\nThe [config](deploy/app.yaml), the [folder](deploy/), "
        "[home](../../../README.md#home) and [a plot](figure.png).\n")
    (lab / "deploy").mkdir()
    (lab / "deploy/app.yaml").write_text("replicas: 2\n")
    (lab / "figure.png").write_bytes(base64.b64decode(PIXEL))
    _notebook(lab / "01-Run.ipynb", "# T Lab 2.1 · 01 — Run\n\nBack to [the lab](README.md).", "print(6 * 7)")
    _notebook(lab / "02-Stored.ipynb", "# T Lab 2.1 · 02 — Stored", "print('x')")
    executed = root / "test-results/executed"
    _notebook(executed / "02-Labs/T_Track/Lab-2.1-First/01-Run.ipynb",
              "# T Lab 2.1 · 01 — Run\n\nBack to [the lab](README.md).", "print(6 * 7)",
              [nbformat.v4.new_output("stream", name="stdout", text="42\n"),
               nbformat.v4.new_output("display_data", data={"image/png": PIXEL, "text/plain": "<Figure>"})])
    return root


def _build(root: Path) -> book.BookReport:
    return book.build_book(root / "book", root / "test-results/executed", root)


def test_pages_come_in_course_order_and_planned_notebooks_are_left_out(course):
    pages = book.course_pages(course, course / "test-results/executed")
    assert [p.source for p in pages] == [
        "README.md", "02-Labs/T_Track/OVERVIEW.md", "02-Labs/T_Track/Lab-2.1-First/README.md",
        "02-Labs/T_Track/Lab-2.1-First/01-Run.ipynb", "02-Labs/T_Track/Lab-2.1-First/02-Stored.ipynb"]
    assert pages[3].executed is not None and pages[4].executed is None
    assert pages[0].output == "index.html"


def test_executed_notebooks_show_their_outputs_and_stored_ones_say_so(course):
    report = _build(course)
    assert report.broken_links == []
    assert report.executed == 1
    run = (course / "book/02-Labs/T_Track/Lab-2.1-First/01-Run.html").read_text()
    assert "42" in run and "data:image/png;base64," in run
    assert "not executed" not in run
    stored = (course / "book/02-Labs/T_Track/Lab-2.1-First/02-Stored.html").read_text()
    assert "was not executed in the run" in stored


def test_links_point_at_pages_and_source_pages_and_every_one_resolves(course):
    _build(course)
    out = course / "book"
    index = (out / "index.html").read_text()
    assert 'href="02-Labs/T_Track/Lab-2.1-First/README.html#what-it-shows"' in index
    assert 'href="02-Labs/T_Track/Lab-2.1-First/01-Run.html"' in index
    assert 'href="https://docs.vllm.ai"' in index  # external links are left alone
    lab_readme = (out / "02-Labs/T_Track/Lab-2.1-First/README.html").read_text()
    assert 'href="deploy/app.yaml.html"' in lab_readme and "replicas" in (out / "02-Labs/T_Track/Lab-2.1-First/deploy/app.yaml.html").read_text()
    assert (out / "02-Labs/T_Track/Lab-2.1-First/deploy/index.html").exists()
    assert (out / "02-Labs/T_Track/Lab-2.1-First/figure.png").read_bytes()[:4] == b"\x89PNG"
    for page in out.rglob("*.html"):
        for href in re.findall(r'(?:href|src)="([^"#:]+)(?:#[^"]*)?"', page.read_text()):
            assert (page.parent / href).exists(), f"{page.relative_to(out)} links to {href}, which is not in the book"


def test_no_page_loads_anything_from_the_network(course):
    _build(course)
    for page in (course / "book").rglob("*.html"):
        text = page.read_text()
        assert not re.search(r'<(?:script|link|img)[^>]+(?:src|href)="https?://', text), page


def test_a_missing_target_and_a_missing_anchor_are_reported(course):
    readme = course / "02-Labs/T_Track/Lab-2.1-First/README.md"
    readme.write_text(readme.read_text() + "\n[gone](deploy/missing.yaml) and [no anchor](../../../README.md#nowhere)\n")
    report = _build(course)
    assert len(report.broken_links) == 2, report.broken_links
    assert "02-Labs/T_Track/Lab-2.1-First/README.md: deploy/missing.yaml" in report.broken_links
    assert any("#nowhere" in link and "no such anchor" in link for link in report.broken_links)


def test_github_heading_slugs():
    assert book.slug("What it shows") == "what-it-shows"
    assert book.slug("2.1 · 03 — Unified API: v2") == "21--03--unified-api-v2"


def test_nbmake_keeps_the_executed_notebook(course, tmp_path):
    """The conftest hook, for real: nbmake executes a notebook and its outputs land in the executed dir."""
    notebook = tmp_path / "nb" / "kept.ipynb"
    _notebook(notebook, "# kept", "print(6 * 7)")
    executed = tmp_path / "executed"
    (tmp_path / "nb" / "conftest.py").write_text(
        "from pathlib import Path\nfrom llmserve.course.book import keep_executed_notebooks\n"
        f"def pytest_configure(config):\n    keep_executed_notebooks(Path({str(executed)!r}), Path({str(tmp_path)!r}))\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "--nbmake", "-q", "-p", "no:cacheprovider",
                             "--rootdir", str(tmp_path / "nb"), str(notebook)],
                            capture_output=True, text=True, cwd=tmp_path / "nb", timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    kept = nbformat.read(str(executed / "nb" / "kept.ipynb"), as_version=4)
    assert kept.cells[1].outputs[0]["text"] == "42\n"


def test_the_repository_conftest_installs_the_hook_when_asked():
    text = (REPO_ROOT / "conftest.py").read_text()
    assert "COURSE_EXECUTED_DIR" in text and "keep_executed_notebooks" in text
    assert "COURSE_EXECUTED_DIR" in (REPO_ROOT / "Makefile").read_text()
