"""Repository-wide pytest hooks.

After every notebook (nbmake item) no course server it started may be left running: a
notebook that leaks one fails, and the leaked processes are killed so the next notebook
starts clean. Servers already running before the notebook started are not its doing.
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
