"""GaugeSampler: readings of a live /metrics page (a tiny HTTP server in this test), summed over label sets, and a
time average weighted by the time between readings."""
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llmserve.measure.gauges import GaugeSampler


@pytest.fixture
def page():
    state = {"running": 0.0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = ("# TYPE vllm:num_requests_running gauge\n"
                    f'vllm:num_requests_running{{engine="0"}} {state["running"]}\n'
                    f'vllm:num_requests_running{{engine="1"}} {state["running"]}\n'
                    'vllm:num_requests_waiting{engine="0"} 1\n').encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.shutdown()
    server.server_close()


def test_readings_sum_label_sets_and_follow_the_page(page):
    state, url = page
    with GaugeSampler(url, ["vllm:num_requests_running", "vllm:num_requests_waiting"], interval_s=0.02) as sampler:
        time.sleep(0.2)  # the page reads 0 running for a while (the sampler's own thread does the work)
        state["running"] = 3.0
        time.sleep(0.2)
    assert sampler.readings[0][1] == {"vllm:num_requests_running": 0.0, "vllm:num_requests_waiting": 1.0}
    assert sampler.readings[-1][1]["vllm:num_requests_running"] == 6.0  # two engines of 3
    assert sampler.peak() == 7.0 and sampler.peak("vllm:num_requests_waiting") == 1.0
    average = sampler.time_average("vllm:num_requests_running")
    assert 1.0 < average < 5.0  # about half the time at 0, half at 6
    assert sampler.missed == 0


def test_time_average_weighs_readings_by_their_interval():
    sampler = GaugeSampler("http://unused/metrics", ["g"])
    sampler.readings = [(0.0, {"g": 4.0}), (3.0, {"g": 0.0}), (4.0, {"g": 8.0})]
    assert sampler.time_average() == pytest.approx((4.0 * 3 + 0.0 * 1) / 4)
    assert sampler.time_average(start=2.0, end=4.0) == pytest.approx((4.0 * 1 + 0.0 * 1) / 2)
    assert sampler.time_average(start=-5.0, end=1.0) == pytest.approx(4.0)  # only the covered part counts
    with pytest.raises(ValueError, match="no reading"):
        sampler.time_average(start=10.0, end=11.0)
    sampler.readings = sampler.readings[:1]
    with pytest.raises(ValueError, match="fewer than two"):
        sampler.time_average()
    with pytest.raises(ValueError):
        GaugeSampler("http://unused/metrics", [])


def test_an_unreachable_page_counts_missed_readings():
    with GaugeSampler("http://127.0.0.1:9/metrics", ["g"], interval_s=0.01, timeout_s=0.2) as sampler:
        time.sleep(0.1)
    assert sampler.missed >= 1 and sampler.readings == []
