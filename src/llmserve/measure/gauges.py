"""Sample a server's gauges while something runs: the server's own view of what is in flight.

    with GaugeSampler(server.base_url + "/metrics", ["vllm:num_requests_running", "vllm:num_requests_waiting"]) as g:
        run = stream_load(...)                               # the load whose concurrency you want to know
    g.time_average("vllm:num_requests_running", "vllm:num_requests_waiting")   # L as the server counts it

A background thread reads the /metrics page every `interval_s` seconds and keeps, per reading, the time
(`time.perf_counter()`) and the sum of each gauge's samples (over its label sets). The time average weighs each
reading by the time until the next one, so a late poll does not count twice. The readings are as coarse as the
interval, and each costs the server one /metrics request (a few milliseconds of its CPU). Used by vLLM Lab 2.5 · 03
for its Little's-law check (llmserve.teach.formulas.time_average_in_flight is the client's side of it).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import requests

from llmserve.measure.prometheus_text import metric_total, parse_prometheus_text


class GaugeSampler:
    def __init__(self, metrics_url: str, names: Sequence[str], *, interval_s: float = 0.2, timeout_s: float = 2.0):
        if not names:
            raise ValueError("name at least one gauge")
        self.metrics_url = metrics_url
        self.names = list(names)
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.readings: list[tuple[float, dict[str, float]]] = []
        self.missed = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def read_once(self, session: requests.Session | None = None) -> dict[str, float]:
        """One reading of every gauge (the sum over its label sets), also kept in `readings`."""
        getter = session or requests
        text = getter.get(self.metrics_url, timeout=self.timeout_s).text
        samples = parse_prometheus_text(text)
        values = {name: metric_total(samples, name) for name in self.names}
        with self._lock:
            self.readings.append((time.perf_counter(), values))
        return values

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            try:
                self.read_once(session)
            except (requests.RequestException, ValueError):
                self.missed += 1  # the next reading catches up
            self._stop.wait(self.interval_s)

    def start(self) -> GaugeSampler:
        self._thread = threading.Thread(target=self._run, name="gauge-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.read_once()  # a last reading closes the final interval
        except (requests.RequestException, ValueError):
            self.missed += 1

    def series(self, *names: str) -> list[tuple[float, float]]:
        """(time, sum of the named gauges) per reading."""
        names = names or tuple(self.names)
        with self._lock:
            return [(at, sum(values[name] for name in names)) for at, values in self.readings]

    def time_average(self, *names: str, start: float | None = None, end: float | None = None) -> float:
        """The time average of the sum of the named gauges (all of them by default), each reading holding until the
        next one; over the readings' whole span, or from `start` to `end` (`time.perf_counter()` values, e.g. a
        load run's first send and last answer)."""
        points = self.series(*names)
        if len(points) < 2:
            raise ValueError("fewer than two readings: sample for longer or more often")
        start = points[0][0] if start is None else start
        end = points[-1][0] if end is None else end
        if not end > start:
            raise ValueError(f"end must be after start, got {start!r}..{end!r}")
        weighted = 0.0
        for (at, value), (later, _) in zip(points, points[1:], strict=False):
            weighted += value * max(0.0, min(later, end) - max(at, start))
        covered = min(points[-1][0], end) - max(points[0][0], start)
        if covered <= 0:
            raise ValueError("no reading falls inside the window")
        return weighted / covered

    def peak(self, *names: str) -> float:
        return max(value for _, value in self.series(*names))

    def __enter__(self) -> GaugeSampler:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
