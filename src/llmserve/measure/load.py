"""Load generators, closed loop and open loop, and the one record type both produce.

- `closed_loop(call, concurrency=N)`: N workers, each sending its next request as soon as its
  previous one has answered (a fixed pool of users). The server's speed sets the pace, so the
  server never sees more than N requests at once and the run never observes a queue that
  independent users would build up (coordinated omission, theory 2.2 §9).
- `open_loop(call, rate=r)`: requests are sent at scheduled times, whether or not earlier ones
  have answered (independent users arriving). The gaps between send times are exponential with
  mean 1/r (Poisson arrivals), or gamma-distributed with a `burstiness` factor as in vLLM's
  serving benchmark. Latency counts from the scheduled time, so a generator that falls behind its
  schedule cannot hide queueing.

The request itself is your function `call(i)`: one real request (tritonclient, httpx, ...). It
returns whatever you want to keep (or None) and raises on failure; every call is recorded with
its times and outcome, so latencies, throughput and error rates come from the run. A streamed
request returns a `StreamReply` (the arrival time of every token); its record then also gives
TTFT, inter-token latency and TPOT. `llmserve.measure.openai_stream` builds such a call for
OpenAI-compatible servers, so a Triton call and an OpenAI stream are measured the same way.

`call` runs in several threads at once: use a thread-safe client. `tritonclient.grpc` and
`httpx.Client` are; a `tritonclient.http` client (gevent-based) shared between threads fails with
"greenlet.error: Cannot switch to a different thread", so give each thread its own (e.g. via
`threading.local()`). The open loop runs each request in its own thread: meant for the tens to
hundreds of requests in flight of a lab, not for thousands.

A percentile needs samples beyond it: a p99 from fewer than 100 requests is the largest value or
an interpolation towards it (`min_samples_for`, `samples_above`). `LoadRun.table()` leaves out
the percentiles a run has too few samples for.
"""
from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llmserve.teach.formulas import goodput_rps, percentile, percentiles, slo_attainment

DEFAULT_PERCENTILES = (50, 90, 99)


class RequestFailed(Exception):
    """Raise from `call(i)` to record a failure with exactly this message (e.g. "HTTP 400: ...").

    Any other exception is recorded as "TypeName: message".
    """


@dataclass
class StreamReply:
    """What a streamed call returns: the arrival time of each token, and the server's counts."""

    token_times: list[float] = field(default_factory=list)  # perf_counter() of each text-carrying chunk
    text: str = ""
    usage_output_tokens: int | None = None  # the server's count (OpenAI `usage`), when it sent one
    usage_prompt_tokens: int | None = None
    finish_reason: str | None = None

    @property
    def output_tokens(self) -> int:
        """Tokens generated: the server's usage count when it sent one, else the number of text chunks."""
        return self.usage_output_tokens if self.usage_output_tokens is not None else len(self.token_times)


@dataclass
class RequestRecord:
    """One request as the client saw it. Times are `time.perf_counter()` seconds."""

    index: int
    start: float                     # when the request was sent
    end: float                       # when its answer (or its error) was complete
    error: str | None = None         # None: the request succeeded
    result: Any = None               # what call(i) returned: a StreamReply for a streamed request
    worker: int | None = None        # closed loop: the worker thread that sent it
    scheduled: float | None = None   # open loop: when it was due (a closed loop sends when due)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def due(self) -> float:
        """When the request should have been sent: its scheduled time, else its send time."""
        return self.scheduled if self.scheduled is not None else self.start

    @property
    def latency(self) -> float:
        """End-to-end latency (E2E), from the moment the request was due."""
        return self.end - self.due

    @property
    def send_lag(self) -> float:
        """How late the generator sent it (open loop); 0 in a closed loop."""
        return self.start - self.due

    @property
    def stream(self) -> StreamReply | None:
        return self.result if isinstance(self.result, StreamReply) else None

    @property
    def ttft(self) -> float | None:
        """Time to first token, from the moment the request was due (streamed requests only)."""
        stream = self.stream
        return stream.token_times[0] - self.due if stream is not None and stream.token_times else None

    @property
    def itl(self) -> list[float]:
        """Inter-token latencies: the gaps between consecutive text chunks."""
        times = self.stream.token_times if self.stream is not None else []
        return [b - a for a, b in zip(times, times[1:], strict=False)]

    @property
    def output_tokens(self) -> int:
        return self.stream.output_tokens if self.stream is not None else 0

    @property
    def tpot(self) -> float | None:
        """Time per output token after the first: (end - first token) / (output tokens - 1)."""
        stream = self.stream
        if not self.ok or stream is None or not stream.token_times or stream.output_tokens < 2:
            return None
        return (self.end - stream.token_times[0]) / (stream.output_tokens - 1)


def min_samples_for(p: float) -> int:
    """The fewest samples for which at least one lies above the p-th percentile: ceil(100 / (100 - p)).

    p50 needs 2, p90 10, p99 100, p99.9 1000. With fewer, "p99" is the maximum (or an
    interpolation towards it); with barely enough, it rests on one or two samples.
    """
    if not 0 <= p < 100:
        raise ValueError(f"p must lie in [0, 100), got {p!r}")
    return math.ceil(100 / (100 - p) - 1e-9)


def samples_above(values: Sequence[float], p: float) -> int:
    """How many of `values` lie above their p-th percentile estimate: what that estimate rests on."""
    estimate = percentile(values, p)
    return sum(1 for v in values if v > estimate)


def _stats(prefix: str, values: Sequence[float], ps: Iterable[float], scale: float = 1000.0) -> dict:
    if not values:
        return {}
    row = {f"{prefix}mean_ms": scale * sum(values) / len(values)}
    row.update({f"{prefix}p{p:g}_ms": scale * v for p, v in percentiles(values, ps).items()})
    row[f"{prefix}max_ms"] = scale * max(values)
    return row


@dataclass
class LoadRun:
    """All records of one load run (closed or open loop) and its wall-clock time."""

    records: list[RequestRecord]
    wall_seconds: float
    started: float                  # perf_counter at the start of the run
    concurrency: int | None = None  # closed loop: the number of workers
    rate: float | None = None       # open loop: the offered rate, requests/s
    burstiness: float | None = None # open loop: the gamma shape of the gaps (1 = Poisson)
    notes: dict = field(default_factory=dict)

    @property
    def loop(self) -> str:
        return "open" if self.rate is not None else "closed"

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

    @property
    def output_tokens(self) -> int:
        return sum(r.output_tokens for r in self.ok_records)

    @property
    def streamed(self) -> bool:
        return any(r.stream is not None for r in self.records)

    def latencies(self) -> list[float]:
        """End-to-end latencies (seconds) of the successful requests, in completion order."""
        return [r.latency for r in sorted(self.ok_records, key=lambda r: r.end)]

    def percentiles(self, ps: Sequence[float] = DEFAULT_PERCENTILES) -> dict[float, float]:
        return percentiles(self.latencies(), ps)

    def ttfts(self) -> list[float]:
        return [r.ttft for r in self.ok_records if r.ttft is not None]

    def itls(self) -> list[float]:
        return [gap for r in self.ok_records for gap in r.itl]

    def tpots(self) -> list[float]:
        return [r.tpot for r in self.ok_records if r.tpot is not None]

    def send_lags(self) -> list[float]:
        return [r.send_lag for r in self.records]

    def _slo_inputs(self) -> tuple[list[float], list[float]]:
        if not self.records:
            raise ValueError("no requests in this run")
        ttft, tpot = [], []
        for r in self.records:
            if r.ok and r.stream is None:
                raise ValueError(f"request {r.index} was not streamed: TTFT/TPOT SLOs need streamed requests")
            good = r.ok and r.ttft is not None and r.tpot is not None
            ttft.append(r.ttft if good else math.inf)  # a failed request misses every SLO
            tpot.append(r.tpot if good else math.inf)
        return ttft, tpot

    def slo_attainment(self, ttft_slo_s: float, tpot_slo_s: float) -> float:
        """Share of all requests (failed ones included) that met both SLOs."""
        return slo_attainment(*self._slo_inputs(), ttft_slo_s, tpot_slo_s)

    def goodput(self, ttft_slo_s: float, tpot_slo_s: float) -> float:
        """Requests per second of wall time that met both SLOs."""
        return goodput_rps(*self._slo_inputs(), ttft_slo_s, tpot_slo_s, self.wall_seconds)

    def summary(self, ps: Sequence[float] = DEFAULT_PERCENTILES) -> dict:
        """Counts, throughput and latency statistics (ms) as one flat dict.

        Percentiles are included whatever the sample count; `ok` is that count for E2E. Quote a
        percentile only when the run has `min_samples_for(p)` samples (`table()` does so).
        """
        ps = tuple(ps)
        ok = self.ok_records
        row = {"loop": self.loop, "requests": len(self.records), "ok": len(ok), "errors": len(self.errors),
               "error_rate": self.error_rate, "concurrency": self.concurrency, "rate": self.rate,
               "wall_s": self.wall_seconds, "throughput_rps": self.throughput}
        row.update(_stats("", [r.latency for r in ok], ps))
        if self.streamed:
            wall = self.wall_seconds if self.wall_seconds > 0 else math.nan
            row.update({"output_tokens": self.output_tokens, "output_tokens_per_s": self.output_tokens / wall})
            for name, values in (("ttft", self.ttfts()), ("itl", self.itls()), ("tpot", self.tpots())):
                row.update(_stats(f"{name}_", values, ps))
        if self.loop == "open" and self.records:
            row["send_lag_max_ms"] = 1000 * max(self.send_lags())
        return row

    def table(self, ps: Sequence[float] = DEFAULT_PERCENTILES) -> str:
        """Latency statistics as a text table (ms), with the sample count of each row.

        A percentile that the row has fewer than `min_samples_for(p)` samples for is shown as "-".
        """
        ps = tuple(ps)
        rows = [("E2E", [r.latency for r in self.ok_records])]
        if self.streamed:
            rows = [("TTFT", self.ttfts()), ("ITL", self.itls()), ("TPOT", self.tpots())] + rows
        head = f"{'metric':<8}{'n':>6}" + "".join(f"{f'p{p:g} ms':>11}" for p in ps) + f"{'mean ms':>11}{'max ms':>11}"
        lines = [head]
        for label, values in rows:
            if not values:
                continue
            cells = "".join(f"{1000 * percentile(values, p):>11.1f}" if len(values) >= min_samples_for(p)
                            else f"{'-':>11}" for p in ps)
            lines.append(f"{label:<8}{len(values):>6}" + cells
                         + f"{1000 * sum(values) / len(values):>11.1f}{1000 * max(values):>11.1f}")
        hidden = [p for p in ps if any(0 < len(v) < min_samples_for(p) for _, v in rows)]
        if hidden:
            lines.append("-: too few samples for this percentile ("
                         + ", ".join(f"p{p:g} needs {min_samples_for(p)}" for p in hidden) + ")")
        return "\n".join(lines)

    def error_messages(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.errors:
            counts[r.error] = counts.get(r.error, 0) + 1
        return counts


def _error_text(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, RequestFailed) else f"{type(exc).__name__}: {exc}"
    return text[:300]


def _progress_bar(progress: bool, total: int | None, description: str):
    if not progress:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=description, leave=False)


def closed_loop(call: Callable[[int], Any], *, concurrency: int, num_requests: int | None = None,
                duration: float | None = None, progress: bool = True,
                description: str = "requests") -> LoadRun:
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
    bar = _progress_bar(progress, num_requests, description)

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
                record = RequestRecord(index, begin, time.perf_counter(), result=result, worker=worker_id)
            except Exception as exc:  # a failed request is data, not a crash of the run
                record = RequestRecord(index, begin, time.perf_counter(), error=_error_text(exc), worker=worker_id)
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
    return LoadRun(records=records, wall_seconds=wall, started=started, concurrency=concurrency)


def arrival_offsets(rate: float, *, num_requests: int | None = None, duration: float | None = None,
                    burstiness: float = 1.0, seed: int | None = 0) -> list[float]:
    """Send times of an open loop, in seconds from its start.

    The first request goes at 0; the gaps after it are independent draws from a gamma
    distribution with shape `burstiness` and mean 1/`rate`, the arrival process of vLLM's serving
    benchmark. `burstiness` 1 gives exponential gaps, i.e. Poisson arrivals (coefficient of
    variation 1); below 1 the arrivals come in bursts (CV = 1/sqrt(burstiness) > 1), above 1 they
    are more even, and `math.inf` spaces them exactly 1/rate apart. `rate` = `math.inf` sends
    everything at once. The list stops after `num_requests` times, or before the first time at or
    after `duration` (at least one is required). `seed` makes the schedule reproducible.

    (vLLM's benchmark additionally rescales its gaps so that the last request goes at exactly
    n/rate; here the schedule is the plain random process.)
    """
    if not rate > 0:
        raise ValueError(f"rate must be positive, got {rate!r}")
    if not burstiness > 0:
        raise ValueError(f"burstiness must be positive, got {burstiness!r}")
    if num_requests is None and duration is None:
        raise ValueError("give num_requests, duration, or both")
    if num_requests is not None and num_requests < 0:
        raise ValueError("num_requests must not be negative")
    if duration is not None and duration <= 0:
        raise ValueError("duration must be positive")
    if num_requests is None and math.isinf(rate):
        raise ValueError("an infinite rate needs num_requests: all requests would go at once, forever")
    rng = np.random.default_rng(seed)
    limit = num_requests if num_requests is not None else math.inf
    end = duration if duration is not None else math.inf
    offsets: list[float] = []
    t = 0.0
    while len(offsets) < limit and t < end:
        offsets.append(t)
        if math.isinf(rate):
            gap = 0.0
        elif math.isinf(burstiness):
            gap = 1.0 / rate
        else:
            gap = float(rng.gamma(shape=burstiness, scale=1.0 / (rate * burstiness)))
        t += gap
    return offsets


def open_loop(call: Callable[[int], Any], *, rate: float, num_requests: int | None = None,
              duration: float | None = None, burstiness: float = 1.0, seed: int | None = 0,
              drain_timeout: float | None = None, progress: bool = True,
              description: str = "requests", stop: threading.Event | None = None) -> LoadRun:
    """Send `call(0), call(1), ...` at the times of `arrival_offsets(rate, ...)`, each in its own
    thread, without waiting for earlier requests to answer; then wait for the answers.

    The run is bounded: `num_requests` and/or `duration` bound the sending; `drain_timeout`
    (seconds after the last send) bounds the wait for answers, and a request still unanswered then
    is recorded as failed (its thread is left to finish on its own and its answer is dropped).
    A call that raises counts as a failed request; the run goes on.

    `stop` ends the sending early: once the event is set (from another thread, e.g. when an alert
    has fired), no further request is sent, the answers of those sent are awaited as usual, and the
    run holds only the requests that were sent. Run the loop in a thread to overload a server until
    something happens, without knowing in advance how long that takes.
    """
    if drain_timeout is not None and drain_timeout < 0:
        raise ValueError("drain_timeout must not be negative")
    offsets = arrival_offsets(rate, num_requests=num_requests, duration=duration, burstiness=burstiness,
                              seed=seed)
    lock = threading.Lock()
    sent: dict[int, float] = {}
    done: dict[int, RequestRecord] = {}
    bar = _progress_bar(progress, len(offsets), description)

    def send(index: int, due: float) -> None:
        begin = time.perf_counter()
        with lock:
            sent[index] = begin
        try:
            result = call(index)
            record = RequestRecord(index, begin, time.perf_counter(), result=result, scheduled=due)
        except Exception as exc:  # a failed request is data, not a crash of the run
            record = RequestRecord(index, begin, time.perf_counter(), error=_error_text(exc), scheduled=due)
        with lock:
            done[index] = record
            if bar is not None:
                bar.update(1)

    started = time.perf_counter()
    threads = []
    for index, offset in enumerate(offsets):
        due = started + offset
        wait = due - time.perf_counter()
        if stop is not None:
            if stop.wait(wait) if wait > 0 else stop.is_set():  # pacing, and an early end when asked
                offsets = offsets[:index]
                break
        elif wait > 0:
            time.sleep(wait)  # pacing to the schedule: the open loop's clock
        thread = threading.Thread(target=send, args=(index, due), daemon=True)
        thread.start()
        threads.append(thread)
    finish_by = time.perf_counter() + drain_timeout if drain_timeout is not None else None
    for thread in threads:
        thread.join(None if finish_by is None else max(0.0, finish_by - time.perf_counter()))
    wall = time.perf_counter() - started
    if bar is not None:
        bar.close()
    with lock:
        now = time.perf_counter()
        records = [done[i] if i in done else
                   RequestRecord(i, sent.get(i, now), now, scheduled=started + offsets[i],
                                 error=f"no answer within drain_timeout={drain_timeout:g} s")
                   for i in range(len(offsets))]
    return LoadRun(records=records, wall_seconds=wall, started=started, rate=rate, burstiness=burstiness)
