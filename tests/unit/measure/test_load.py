"""The load generators: closed-loop bookkeeping, the open loop's arrival process and its
independence from responses, bounded runs, errors as data, and the one record type.

No timing is asserted: the arrival process is tested on its seeded schedule, and "does not wait
for responses" is tested with calls that cannot return until every request has been sent.
"""
import math
import threading

import numpy as np
import pytest
from scipy import stats

from llmserve.measure.load import (
    LoadRun,
    RequestFailed,
    RequestRecord,
    StreamReply,
    arrival_offsets,
    closed_loop,
    min_samples_for,
    open_loop,
    samples_above,
)
from llmserve.teach.formulas import goodput_rps, percentiles


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


# -- closed loop --------------------------------------------------------------------------------

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
    assert all(r.end >= r.start and r.send_lag == 0 for r in result.records)
    assert result.summary()["requests"] == 25 and result.error_rate == 0
    assert result.loop == "closed" and result.summary()["concurrency"] == 3


def test_closed_loop_never_exceeds_its_concurrency():
    active, peak, lock = 0, 0, threading.Lock()
    event = threading.Event()

    def call(i):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        event.wait(0.002)
        with lock:
            active -= 1

    closed_loop(call, concurrency=2, num_requests=30, progress=False)
    assert peak <= 2


def test_failures_are_recorded_not_raised():
    def call(i):
        if i % 4 == 0:
            raise ConnectionError(f"refused {i}")
        if i == 1:
            raise RequestFailed("HTTP 400: bad input")
        return "ok"

    result = closed_loop(call, concurrency=2, num_requests=12, progress=False)
    assert len(result.errors) == 4 and result.error_rate == pytest.approx(4 / 12)
    assert result.error_messages() == {"ConnectionError: refused 0": 1, "ConnectionError: refused 4": 1,
                                       "ConnectionError: refused 8": 1, "HTTP 400: bad input": 1}
    assert len(result.latencies()) == 8
    assert result.throughput == pytest.approx(8 / result.wall_seconds)


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
    with pytest.raises(ValueError):
        open_loop(lambda i: i, rate=10, progress=False)
    with pytest.raises(ValueError):
        arrival_offsets(0.0, num_requests=3)
    with pytest.raises(ValueError):
        arrival_offsets(1.0, num_requests=3, burstiness=0)
    with pytest.raises(ValueError, match="infinite rate"):
        arrival_offsets(math.inf, duration=1.0)


# -- the open loop's arrival process ------------------------------------------------------------

def gaps_of(offsets):
    return np.diff(np.asarray(offsets))


def test_poisson_gaps_are_exponential_with_mean_one_over_rate():
    rate = 4.0
    offsets = arrival_offsets(rate, num_requests=4001, seed=7)
    assert offsets[0] == 0.0 and len(offsets) == 4001
    gaps = gaps_of(offsets)
    assert gaps.mean() == pytest.approx(1 / rate, rel=0.05)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.06)  # exponential: CV 1
    assert stats.kstest(gaps, "expon", args=(0, 1 / rate)).pvalue > 0.01
    # the same tests reject evenly spaced arrivals at the same rate
    even = np.full_like(gaps, 1 / rate)
    assert even.std() / even.mean() < 0.01
    assert stats.kstest(even, "expon", args=(0, 1 / rate)).pvalue < 1e-6


def test_poisson_counts_per_second_have_variance_equal_to_mean():
    rate = 5.0
    offsets = np.asarray(arrival_offsets(rate, duration=2000.0, seed=3))
    counts = np.bincount(offsets.astype(int), minlength=2000)[:2000]
    assert counts.mean() == pytest.approx(rate, rel=0.05)
    assert counts.var() / counts.mean() == pytest.approx(1.0, abs=0.1)  # Poisson: index of dispersion 1


@pytest.mark.parametrize("burstiness", [0.25, 4.0])
def test_burstiness_sets_the_coefficient_of_variation(burstiness):
    rate = 2.0
    gaps = gaps_of(arrival_offsets(rate, num_requests=8001, burstiness=burstiness, seed=11))
    assert gaps.mean() == pytest.approx(1 / rate, rel=0.06)
    assert gaps.std() / gaps.mean() == pytest.approx(1 / math.sqrt(burstiness), rel=0.08)
    assert stats.kstest(gaps, "gamma", args=(burstiness, 0, 1 / (rate * burstiness))).pvalue > 0.01


def test_schedule_is_seeded_and_bounded():
    a = arrival_offsets(3.0, num_requests=50, seed=1)
    assert a == arrival_offsets(3.0, num_requests=50, seed=1)
    assert a != arrival_offsets(3.0, num_requests=50, seed=2)
    assert all(x < y for x, y in zip(a, a[1:], strict=False))
    timed = arrival_offsets(3.0, duration=10.0, seed=1)
    assert 0 < len(timed) < 100 and all(t < 10.0 for t in timed)
    both = arrival_offsets(3.0, num_requests=5, duration=1000.0, seed=1)
    assert len(both) == 5
    assert arrival_offsets(math.inf, num_requests=4) == [0.0] * 4
    assert arrival_offsets(2.0, num_requests=4, burstiness=math.inf) == pytest.approx([0.0, 0.5, 1.0, 1.5])


# -- the open loop's driver ---------------------------------------------------------------------

def test_open_loop_sends_without_waiting_for_answers():
    n = 12
    lock, active, peak = threading.Lock(), 0, 0
    all_sent = threading.Event()

    def call(i):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
            if active == n:
                all_sent.set()
        # No answer until every request has been sent: a closed loop with fewer than n workers
        # would wait here and time out; the open loop sends regardless.
        released = all_sent.wait(timeout=10)
        with lock:
            active -= 1
        if not released:
            raise TimeoutError("not every request was sent")
        return i

    run = open_loop(call, rate=1000.0, num_requests=n, seed=0, progress=False)
    assert [r.index for r in run.records] == list(range(n))
    assert all(r.ok for r in run.records), run.error_messages()
    assert peak == n
    assert max(r.start for r in run.records) < min(r.end for r in run.records)
    assert run.loop == "open" and run.rate == 1000.0 and run.concurrency is None


def test_open_loop_follows_its_schedule_and_counts_latency_from_it():
    offsets = arrival_offsets(500.0, num_requests=20, seed=5)
    run = open_loop(lambda i: i, rate=500.0, num_requests=20, seed=5, progress=False)
    assert [r.scheduled - run.started for r in run.records] == pytest.approx(offsets)
    for r in run.records:
        assert r.start >= r.scheduled and r.send_lag >= 0
        assert r.latency == pytest.approx(r.end - r.scheduled)
    assert run.summary()["send_lag_max_ms"] >= 0


def test_open_loop_stops_by_itself():
    run = open_loop(lambda i: i, rate=200.0, duration=0.25, seed=0, progress=False)
    assert 0 < len(run.records) < 200
    assert all(r.scheduled - run.started < 0.25 for r in run.records)

    never = threading.Event()  # a call that never answers on its own

    def hangs(i):
        never.wait(timeout=30)
        return i

    try:
        stuck = open_loop(hangs, rate=1000.0, num_requests=3, drain_timeout=0.2, progress=False)
    finally:
        never.set()  # let the abandoned threads end
    assert len(stuck.records) == 3 and not stuck.ok_records
    assert all("no answer within drain_timeout" in r.error for r in stuck.records)
    assert stuck.wall_seconds < 10


def test_open_loop_stops_sending_when_asked_and_keeps_what_it_sent():
    stop = threading.Event()

    def call(i):
        if i == 4:
            stop.set()  # e.g. an alert has fired: the fifth request is the last one sent
        return i

    # evenly spaced, 50 ms apart: the call sets the event long before the next request is due
    run = open_loop(call, rate=20.0, duration=30, burstiness=math.inf, progress=False, stop=stop)
    assert [r.index for r in run.records] == [0, 1, 2, 3, 4]
    assert all(r.ok for r in run.records) and run.wall_seconds < 10
    already = threading.Event()
    already.set()
    assert open_loop(lambda i: i, rate=10.0, duration=5, progress=False, stop=already).records == []


def test_open_loop_records_errors():
    def call(i):
        if i % 3 == 0:
            raise ConnectionError(f"refused {i}")
        return i

    run = open_loop(call, rate=1000.0, num_requests=9, progress=False)
    assert [r.ok for r in run.records] == [i % 3 != 0 for i in range(9)]
    assert run.error_messages()["ConnectionError: refused 3"] == 1
    assert run.summary()["errors"] == 3


# -- the one record type ------------------------------------------------------------------------

def streamed(index, due, token_offsets, end_offset, tokens=None, error=None, scheduled=True):
    reply = StreamReply(token_times=[due + t for t in token_offsets], usage_output_tokens=tokens)
    return RequestRecord(index, start=due + 0.001, end=due + end_offset, error=error,
                         result=None if error else reply, scheduled=due if scheduled else None)


def test_stream_record_bookkeeping():
    record = streamed(0, 10.0, [0.5, 0.6, 0.8, 1.1], 1.2, tokens=4)
    assert record.ok and record.ttft == pytest.approx(0.5)
    assert record.itl == pytest.approx([0.1, 0.2, 0.3])
    assert record.tpot == pytest.approx((1.2 - 0.5) / 3)
    assert record.latency == pytest.approx(1.2) and record.send_lag == pytest.approx(0.001)
    assert streamed(1, 0.0, [0.1, 0.2], 0.3).output_tokens == 2  # no usage: the chunks are counted
    failed = streamed(2, 0.0, [], 0.3, error="HTTP 400: bad")
    assert not failed.ok and failed.tpot is None and failed.ttft is None and failed.output_tokens == 0
    plain = RequestRecord(3, start=1.0, end=1.5, result="anything")
    assert plain.ttft is None and plain.itl == [] and plain.latency == pytest.approx(0.5)


def test_summary_of_a_streamed_run():
    records = [streamed(i, float(i), [0.1 * (i + 1), 0.1 * (i + 1) + 0.05], 1.0 + i, tokens=2) for i in range(5)]
    records.append(streamed(5, 5.0, [], 0.2, error="HTTP 400: bad"))
    run = LoadRun(records=records, wall_seconds=10.0, started=0.0, concurrency=2)
    summary = run.summary((50, 90))
    assert summary["requests"] == 6 and summary["ok"] == 5 and summary["errors"] == 1
    assert summary["ttft_p50_ms"] == pytest.approx(300)
    assert summary["p90_ms"] == pytest.approx(4600) and summary["max_ms"] == pytest.approx(5000)
    assert summary["itl_p50_ms"] == pytest.approx(50)
    assert summary["output_tokens"] == 10 and summary["output_tokens_per_s"] == pytest.approx(1.0)
    assert summary["throughput_rps"] == pytest.approx(0.5)


def test_goodput_counts_failures_as_misses():
    records = [streamed(i, 0.0, [ttft, ttft + 0.1], ttft + 0.1, tokens=2) for i, ttft in
               enumerate([0.1, 0.2, 0.3, 0.9])]
    records.append(streamed(4, 0.0, [], 0.1, error="HTTP 503: overloaded"))
    run = LoadRun(records=records, wall_seconds=2.0, started=0.0, rate=1.0)
    assert run.slo_attainment(ttft_slo_s=0.5, tpot_slo_s=0.2) == pytest.approx(3 / 5)
    assert run.goodput(ttft_slo_s=0.5, tpot_slo_s=0.2) == pytest.approx(1.5)
    assert run.goodput(0.5, 0.2) == pytest.approx(goodput_rps(
        [0.1, 0.2, 0.3, 0.9, math.inf], [0.1] * 4 + [math.inf], 0.5, 0.2, 2.0))
    with pytest.raises(ValueError, match="streamed"):
        LoadRun(records=[RequestRecord(0, 0.0, 1.0)], wall_seconds=1.0, started=0.0).goodput(1, 1)


def test_percentile_sample_rules():
    assert [min_samples_for(p) for p in (50, 90, 95, 99, 99.9)] == [2, 10, 20, 100, 1000]
    values = list(range(1, 17))  # 16 requests
    assert samples_above(values, 99) == 1 and samples_above(values, 50) == 8
    records = [RequestRecord(i, start=0.0, end=0.01 * (i + 1)) for i in range(16)]
    table = LoadRun(records=records, wall_seconds=1.0, started=0.0, concurrency=1).table()
    row = next(line for line in table.splitlines() if line.startswith("E2E"))
    assert row.split()[1] == "16" and row.split()[4] == "-"  # n, p50, p90, p99: no p99 from 16 samples
    assert "p99 needs 100" in table
    many = [RequestRecord(i, start=0.0, end=0.001 * (i + 1)) for i in range(200)]
    assert "-" not in LoadRun(records=many, wall_seconds=1.0, started=0.0, concurrency=1).table().splitlines()[1]
