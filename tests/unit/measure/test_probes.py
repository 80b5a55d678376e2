"""ProbeWatcher against a local HTTP server that opens its port late and answers 503 before it answers 200."""
import http.server
import threading
import time

from llmserve.measure.probes import ProbeWatcher
from llmserve.servers.base import free_port


def test_watcher_records_port_open_and_first_200_per_path():
    port = free_port()
    ready_at = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            ready = self.path == "/live" or time.perf_counter() >= ready_at["ready"]
            self.send_response(200 if ready else 503)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = None

    def open_late():
        nonlocal server
        time.sleep(0.5)  # the port opens after half a second (a slow start, not a measurement)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        ready_at["ready"] = time.perf_counter() + 0.5
        server.serve_forever()

    threading.Thread(target=open_late, daemon=True).start()
    try:
        with ProbeWatcher(f"http://127.0.0.1:{port}", ["/live", "/ready"], interval_s=0.05) as watcher:
            assert watcher.wait(10)
        assert 0.4 < watcher.first_connect_s < watcher.first_ok_s["/ready"]
        assert watcher.first_ok_s["/live"] < watcher.first_ok_s["/ready"]
        assert watcher.first_ok_s["/ready"] - watcher.first_connect_s >= 0.4
        assert 503 in watcher.status_seen["/ready"] and not watcher.status_seen["/live"]
    finally:
        server.shutdown()


def test_watcher_gives_up_on_a_port_that_never_opens():
    with ProbeWatcher(f"http://127.0.0.1:{free_port()}", ["/health"], interval_s=0.05,
                      give_up_after_s=0.3) as watcher:
        pass
    assert watcher.first_connect_s is None and watcher.first_ok_s == {"/health": None}
