"""Every `llmserve.x.y` name and every `tests/...` path that a notebook or a markdown file
mentions must exist, so that moving code never leaves a dead reference behind."""
import importlib
import json
import re

import pytest

from llmserve.course.config import REPO_ROOT

DOTTED = re.compile(r"\bllmserve(?:\.[A-Za-z_]\w*)+")
TEST_PATH = re.compile(r"(?<![\w/.-])tests/[\w./-]*\w")  # ours, not a path inside another archive
SKIP_DIRS = {".venv", ".venv-triton", "test-results", ".git", "node_modules", ".ipynb_checkpoints", "bench"}


def _documents() -> list:
    found = []
    for pattern in ("*.md", "*.ipynb"):
        for path in REPO_ROOT.rglob(pattern):
            if not SKIP_DIRS & set(path.relative_to(REPO_ROOT).parts):
                found.append(path)
    return sorted(found)


def _text(path) -> str:
    if path.suffix == ".ipynb":
        return "\n".join("".join(cell["source"]) for cell in json.loads(path.read_text())["cells"])
    return path.read_text()


def resolves(dotted: str) -> bool:
    """True when `dotted` is an importable module, or an attribute chain inside one."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


def test_the_resolver_catches_a_dead_name():
    assert resolves("llmserve.servers.VLLMServer.openai_client")
    assert not resolves("llmserve.engines.offline_engine")
    assert not resolves("llmserve.servers.NoSuchServer")


DOCUMENTS = _documents()


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_references_resolve(path):
    text = _text(path)
    dead = sorted({name.rstrip(".") for name in DOTTED.findall(text) if not resolves(name.rstrip("."))})
    missing = sorted({p for p in TEST_PATH.findall(text) if not (REPO_ROOT / p).exists()})
    assert not dead, f"names that no longer exist: {dead}"
    assert not missing, f"test paths that no longer exist: {missing}"
