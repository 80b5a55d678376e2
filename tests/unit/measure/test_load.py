"""The closed-loop load generator: bookkeeping, concurrency limit, errors as data, percentiles."""
import threading

import numpy as np
import pytest

from llmserve.measure.load import closed_loop
from llmserve.teach.formulas import percentiles


def test_percentiles_match_numpy_linear_interpolation():
    values = [3.0, 1.0, 4.0, 1.5, 9.0, 2.6, 5.0]
    got = percentiles(values, (0, 25, 50, 90, 99, 100))
    for p, v in got.items():
        assert v == pytest.approx(float(np.percentile(values, p)))


def test_percentiles_refuse_empty_and_out_of_range():
    with pytest.raises(ValueError, match="empty"):
        percentiles([])
    with pytest.raises(ValueError, match="outside"):
        percentiles([1.0], (101,))


def test_every_request_recorded_once_and_concurrency_respected():
    active, peak, lock = 0, 0, threading.Lock()
    gate = threading.Barrier(3)  # the first three calls meet here: proves three run at once

    def call(i):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        if i < 3:
            gate.wait(timeout=5)
        with lock:
            active -= 1
        return i * 2

    result = closed_loop(call, concurrency=3, num_requests=25, progress=False)
    assert [r.index for r in result.records] == list(range(25))
    assert [r.result for r in result.records] == [2 * i for i in range(25)]
    assert peak == 3
    assert {r.worker for r in result.records} <= {0, 1, 2}
    assert all(r.end >= r.start for r in result.records)
    assert result.summary()["requests"] == 25 and result.error_rate == 0


def test_failures_are_recorded_not_raised():
    def call(i):
        if i % 4 == 0:
            raise ConnectionError(f"refused {i}")
        return "ok"

    result = closed_loop(call, concurrency=2, num_requests=12, progress=False)
    assert len(result.errors) == 3 and result.error_rate == pytest.approx(0.25)
    assert result.error_messages() == {"ConnectionError: refused 0": 1, "ConnectionError: refused 4": 1,
                                       "ConnectionError: refused 8": 1}
    assert len(result.latencies()) == 9
    assert result.throughput == pytest.approx(9 / result.wall_seconds)


def test_duration_stops_the_run():
    event = threading.Event()

    def call(i):
        event.wait(0.01)  # a blocking wait, like a request in flight
        return i

    result = closed_loop(call, concurrency=2, duration=0.2, progress=False)
    assert 2 <= len(result.records) < 200
    assert result.wall_seconds < 2


def test_bad_arguments():
    with pytest.raises(ValueError):
        closed_loop(lambda i: i, concurrency=0, num_requests=1, progress=False)
    with pytest.raises(ValueError):
        closed_loop(lambda i: i, concurrency=1, progress=False)
