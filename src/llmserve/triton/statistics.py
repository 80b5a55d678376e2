"""Reading Triton's statistics after a load without racing the server.

Triton updates a model's statistics when the backend reports them, which happens after the responses of an
execution were sent. A client that has just received its last answer can therefore read counts that are one
execution short. `read_until` polls the statistics until they reflect what the client knows it sent.
"""
from __future__ import annotations

import time
from collections.abc import Callable


def read_until(read: Callable[[], dict], settled: Callable[[dict], bool], *, timeout_s: float = 5.0,
               interval_s: float = 0.02) -> dict:
    """Call `read()` until `settled(result)` is true, for at most `timeout_s`; the last result.

    The last result is returned even when it never settled, so the caller's own check can say what differed.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        result = read()
        if settled(result) or time.monotonic() >= deadline:
            return result
        time.sleep(interval_s)
