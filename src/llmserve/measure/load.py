"""A closed-loop load generator: `concurrency` workers, each sending its next request as soon as
the previous one has answered (the way a fixed pool of users behaves).

The request itself is your function `call(i)`: one real request (tritonclient, requests, ...).
It returns whatever you want to keep (or None) and raises on failure; every call is recorded
with its start, end and outcome, so latencies, throughput and error rates come from the run.

`call` runs in several threads at once: use a thread-safe client. `tritonclient.grpc` clients
are; a `tritonclient.http` client (gevent-based) shared between threads fails with "greenlet.error:
Cannot switch to a different thread", so give each thread its own (e.g. via `threading.local()`).
"""
from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmserve.teach.formulas import percentiles


@dataclass
class RequestRecord:
    index: int
    worker: int
    start: float  # time.perf_counter() seconds
    end: float
    ok: bool
    error: str | None = None
    result: Any = None

    @property
    def latency(self) -> float:
        return self.end - self.start


@dataclass
class LoadResult:
    records: list[RequestRecord]
    concurrency: int
    started: float  # perf_counter at the start of the run
    wall_seconds: float
    notes: dict = field(default_factory=dict)

    @property
    def ok_records(self) -> list[RequestRecord]:
        return [r for r in self.records if r.ok]

    @property
    def errors(self) -> list[RequestRecord]:
        return [r for r in self.records if not r.ok]

    @property
    def error_rate(self) -> float:
        return len(self.errors) / len(self.records) if self.records else 0.0

    @property
    def throughput(self) -> float:
        """Successful requests per second of wall time."""
        return len(self.ok_records) / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def latencies(self) -> list[float]:
        """Latencies (seconds) of the successful requests, in completion order."""
        return [r.latency for r in sorted(self.ok_records, key=lambda r: r.end)]

    def percentiles(self, ps: Sequence[float] = (50, 90, 99)) -> dict[float, float]:
        return percentiles(self.latencies(), ps)

    def summary(self) -> dict:
        ok = self.ok_records
        row = {"requests": len(self.records), "ok": len(ok), "errors": len(self.errors),
               "error_rate": self.error_rate, "concurrency": self.concurrency,
               "wall_s": self.wall_seconds, "throughput_rps": self.throughput}
        if ok:
            pct = self.percentiles((50, 90, 99))
            row.update({"mean_ms": 1000 * sum(r.latency for r in ok) / len(ok),
                        "p50_ms": 1000 * pct[50], "p90_ms": 1000 * pct[90], "p99_ms": 1000 * pct[99]})
        return row

    def error_messages(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.errors:
            counts[r.error] = counts.get(r.error, 0) + 1
        return counts


def closed_loop(call: Callable[[int], Any], *, concurrency: int, num_requests: int | None = None,
                duration: float | None = None, progress: bool = True,
                description: str = "requests") -> LoadResult:
    """Run `call(0), call(1), ...` from `concurrency` threads until `num_requests` calls were
    started or `duration` seconds have passed (whichever is given first; at least one is required).

    A call that raises counts as a failed request (its exception text is kept); the run goes on.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if num_requests is None and duration is None:
        raise ValueError("give num_requests, duration, or both")
    if num_requests is not None and num_requests < 0:
        raise ValueError("num_requests must not be negative")

    counter = itertools.count()
    lock = threading.Lock()
    records: list[RequestRecord] = []
    started = time.perf_counter()
    deadline = started + duration if duration is not None else math.inf
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=num_requests, desc=description, leave=False)

    def next_index() -> int | None:
        with lock:
            if time.perf_counter() >= deadline:
                return None
            index = next(counter)
            if num_requests is not None and index >= num_requests:
                return None
            return index

    def worker(worker_id: int) -> None:
        while (index := next_index()) is not None:
            begin = time.perf_counter()
            try:
                result = call(index)
                record = RequestRecord(index, worker_id, begin, time.perf_counter(), True, None, result)
            except Exception as exc:  # a failed request is data, not a crash of the run
                record = RequestRecord(index, worker_id, begin, time.perf_counter(), False,
                                       f"{type(exc).__name__}: {exc}"[:300])
            with lock:
                records.append(record)
                if bar is not None:
                    bar.update(1)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if bar is not None:
        bar.close()
    records.sort(key=lambda r: r.index)
    return LoadResult(records=records, concurrency=concurrency, started=started, wall_seconds=wall)
