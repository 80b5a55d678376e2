"""Repository-wide pytest hooks.

After every notebook (nbmake item) no course server may be left running: a notebook
that leaks one fails, and the leaked processes are killed so the next notebook
starts clean.
"""
from __future__ import annotations

import os
import signal
import time

import pytest


def _leaked_servers() -> list[str]:
    from llmserve.servers import find_server_processes
    return find_server_processes()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    if not str(item.fspath).endswith(".ipynb"):
        return
    deadline = time.monotonic() + 20  # servers get a moment to finish their own shutdown
    leaked = _leaked_servers()
    while leaked and time.monotonic() < deadline:
        time.sleep(0.5)
        leaked = _leaked_servers()
    if leaked:
        for line in leaked:
            try:
                os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        pytest.fail(f"{item.name} left server processes running:\n" + "\n".join(leaked), pytrace=False)
