"""Repository-wide pytest hooks.

After every notebook (nbmake item) no course server it started may be left running: a
notebook that leaks one fails, and the leaked processes are killed so the next notebook
starts clean. Servers already running before the notebook started are not its doing.
With COURSE_EXECUTED_DIR set, each executed notebook is kept there for `make book`.
"""
from __future__ import annotations

import os
import signal
import time
import uuid

import pytest

_before: dict[str, set[str]] = {}
# Every kernel, and so every server a notebook starts, inherits this marker.
os.environ.setdefault("LLMSERVE_TEST_RUN", uuid.uuid4().hex)
_MARKER = f"LLMSERVE_TEST_RUN={os.environ['LLMSERVE_TEST_RUN']}"


def _server_processes() -> set[str]:
    from llmserve.servers import find_server_processes
    return set(find_server_processes(_MARKER))


def pytest_configure(config):
    # `make notebooks` sets COURSE_EXECUTED_DIR: every executed notebook is kept there, with its
    # outputs, for `make book` (llmserve.course.book), so the book runs nothing twice.
    executed_dir = os.environ.get("COURSE_EXECUTED_DIR")
    if executed_dir and config.pluginmanager.hasplugin("nbmake"):
        from pathlib import Path

        from llmserve.course.book import keep_executed_notebooks
        keep_executed_notebooks(Path(executed_dir), Path(str(config.rootpath)))


def _is_notebook(item) -> bool:
    return str(item.fspath).endswith(".ipynb")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if _is_notebook(item):
        _before[item.nodeid] = _server_processes()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    if not _is_notebook(item):
        return
    before = _before.pop(item.nodeid, set())
    deadline = time.monotonic() + 20  # servers get a moment to finish their own shutdown
    leaked = _server_processes() - before
    while leaked and time.monotonic() < deadline:
        time.sleep(0.5)
        leaked = _server_processes() - before
    if leaked:
        for line in leaked:
            try:
                os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        pytest.fail(f"{item.name} left server processes running:\n" + "\n".join(sorted(leaked)),
                    pytrace=False)
