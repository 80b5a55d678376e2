"""Watch a starting server the way a kubelet would: poll its probe paths and record when each first answers.

    with ProbeWatcher("http://127.0.0.1:8000", ["/health", "/v1/models"]) as watcher:
        server.start()                           # blocks until healthy
    watcher.first_ok_s["/health"]                # seconds from the watcher's start to the first 200
    watcher.first_connect_s                      # seconds until the TCP port first accepted

A background thread polls every `interval_s` seconds (the reading is that coarse), with a short timeout
per request, like a probe's `timeoutSeconds`.
"""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

import requests


class ProbeWatcher:
    def __init__(self, base_url: str, paths: Sequence[str], *, interval_s: float = 0.25,
                 request_timeout_s: float = 1.0, give_up_after_s: float = 600.0):
        self.base_url = base_url.rstrip("/")
        self.paths = list(paths)
        self.interval_s = interval_s
        self.request_timeout_s = request_timeout_s
        self.give_up_after_s = give_up_after_s
        self.first_connect_s: float | None = None
        self.first_ok_s: dict[str, float | None] = {path: None for path in self.paths}
        self.status_seen: dict[str, set] = {path: set() for path in self.paths}  # codes/errors before 200
        self.polls = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started_at: float | None = None

    def _port_open(self) -> bool:
        parts = urlsplit(self.base_url)
        try:
            with socket.create_connection((parts.hostname, parts.port), timeout=self.request_timeout_s):
                return True
        except OSError:
            return False

    def _poll(self) -> None:
        session = requests.Session()
        while not self._stop.is_set() and time.perf_counter() - self.started_at < self.give_up_after_s:
            now = time.perf_counter() - self.started_at
            self.polls += 1
            if self.first_connect_s is None and self._port_open():
                self.first_connect_s = now
            if self.first_connect_s is not None:
                for path in self.paths:
                    if self.first_ok_s[path] is not None:
                        continue
                    try:
                        code = session.get(self.base_url + path, timeout=self.request_timeout_s).status_code
                    except requests.RequestException as error:
                        self.status_seen[path].add(type(error).__name__)
                        continue
                    if code == 200:
                        self.first_ok_s[path] = time.perf_counter() - self.started_at
                    else:
                        self.status_seen[path].add(code)
            if all(v is not None for v in self.first_ok_s.values()):
                return
            self._stop.wait(self.interval_s)

    def __enter__(self) -> ProbeWatcher:
        self.started_at = time.perf_counter()
        self._thread = threading.Thread(target=self._poll, name="probe-watcher", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout_s: float) -> bool:
        """Wait until every path has answered 200 (True) or `timeout_s` passed (False)."""
        self._thread.join(timeout_s)
        return all(v is not None for v in self.first_ok_s.values())

    def __exit__(self, *exc_info) -> None:
        if exc_info[0] is not None:
            self._stop.set()
        self.wait(30)
        self._stop.set()
        self._thread.join(5)
