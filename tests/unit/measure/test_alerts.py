"""AlertTimeline against scripted Prometheus and Alertmanager APIs; the webhook receiver over real HTTP."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from llmserve.measure.alerts import AlertTimeline
from llmserve.servers import AlertWebhookReceiver

LABELS = {"alertname": "Slow", "model": "m", "severity": "warning"}


class ScriptedAPIs:
    """Serves /api/v1/alerts (Prometheus) and /api/v2/alerts (Alertmanager) from mutable lists."""

    def __init__(self):
        self.prometheus, self.alertmanager = [], []
        apis = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path.startswith("/api/v1/alerts"):
                    body = {"status": "success", "data": {"alerts": list(apis.prometheus)}}
                else:
                    body = list(apis.alertmanager)
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def apis():
    scripted = ScriptedAPIs()
    yield scripted
    scripted.server.shutdown()
    scripted.server.server_close()


def test_timeline_records_each_state_once_in_order(apis):
    with AlertTimeline(apis.url, apis.url, interval_s=0.02) as timeline:
        apis.prometheus = [{"labels": LABELS, "state": "pending"}]
        pending = timeline.wait_for("Slow", "pending", timeout_s=2, model="m")
        # One change at a time: two changes made together may be polled in either order.
        apis.prometheus = [{"labels": LABELS, "state": "firing"}]
        firing = timeline.wait_for("Slow", "firing", timeout_s=2, model="m")
        apis.alertmanager = [{"labels": LABELS, "status": {"state": "suppressed", "inhibitedBy": ["abc"]}}]
        timeline.wait_for("Slow", "suppressed", timeout_s=2)
        apis.prometheus = []
        inactive = timeline.wait_for("Slow", "inactive", timeout_s=2)
        apis.alertmanager = []
        timeline.wait_for("Slow", "gone", timeout_s=2)
    assert pending <= firing <= inactive
    states = [(t.source, t.state) for t in timeline.transitions]
    assert states == [("prometheus", "pending"), ("prometheus", "firing"), ("alertmanager", "suppressed"),
                      ("prometheus", "inactive"), ("alertmanager", "gone")]
    assert timeline.inhibited_by[("Slow", (("model", "m"), ("severity", "warning")))] == ["abc"]
    assert timeline.first("Slow", "firing", model="other") is None


def test_wait_for_times_out_with_the_alert_named(apis):
    with AlertTimeline(apis.url, interval_s=0.02) as timeline, pytest.raises(TimeoutError, match="Slow"):
        timeline.wait_for("Slow", "firing", timeout_s=0.2)


def test_receiver_keeps_payloads_and_refuses_what_is_not_json():
    with AlertWebhookReceiver() as receiver:
        payload = {"status": "firing", "alerts": [{"labels": {"alertname": "A"}}, {"labels": {"alertname": "B"}}]}
        assert requests.post(receiver.url("/page"), json=payload, timeout=5).status_code == 200
        assert requests.post(receiver.url("/page"), data=b"{not json", timeout=5).status_code == 400
        note = receiver.wait_for("/page", "firing", timeout_s=2)
        assert note.alertnames == ["A", "B"] and abs(note.received_at - time.time()) < 5
        assert receiver.received("/chat") == [] and receiver.received(status="resolved") == []
        with pytest.raises(TimeoutError):
            receiver.wait_for("/chat", timeout_s=0.2)
