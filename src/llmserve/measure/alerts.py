"""Watch alerts move through Prometheus and Alertmanager, and time each step.

    with AlertTimeline(prometheus.base_url, alertmanager.base_url) as timeline:
        ...  # put load on the server
    timeline.first("TritonQueueTimeHigh", "firing", model="scorer")   # seconds after the timeline started
    timeline.transitions                                                 # every change, in order

A background thread polls Prometheus's `/api/v1/alerts` (states `pending`, `firing`; an alert that is gone
is `inactive`) and Alertmanager's `/api/v2/alerts` (`active`, `suppressed`, with what inhibits it) every
`interval_s` seconds; the readings are that coarse. Used by both tracks' Lab 2.5.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import requests


@dataclass(frozen=True)
class Transition:
    at_s: float        # seconds after the timeline started
    source: str        # "prometheus" or "alertmanager"
    alertname: str
    labels: tuple      # the alert's other labels, sorted (key, value) pairs
    state: str         # prometheus: pending | firing | inactive; alertmanager: active | suppressed | gone

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)


def _identity(labels: dict) -> tuple[str, tuple]:
    rest = tuple(sorted((k, v) for k, v in labels.items() if k != "alertname"))
    return labels.get("alertname", ""), rest


class AlertTimeline:
    def __init__(self, prometheus_url: str, alertmanager_url: str | None = None, *, interval_s: float = 0.2):
        self.prometheus_url = prometheus_url.rstrip("/")
        self.alertmanager_url = alertmanager_url.rstrip("/") if alertmanager_url else None
        self.interval_s = interval_s
        self.transitions: list[Transition] = []
        self.missed_polls = 0
        self.inhibited_by: dict[tuple, list[str]] = {}   # alert identity -> fingerprints of the alerts inhibiting it
        self.started_at: float | None = None    # time.perf_counter() at start
        self.started_wall: float | None = None  # time.time() at start
        self._state: dict[tuple, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def elapsed(self) -> float:
        """Seconds since the timeline started."""
        return time.perf_counter() - self.started_at

    def since_start(self, wall_time: float) -> float:
        """A `time.time()` instant (e.g. when a webhook notification arrived) in seconds since the start."""
        return wall_time - self.started_wall

    def _record(self, source: str, seen: dict[tuple, str], now: float, gone_state: str) -> None:
        previous = {key: state for key, state in self._state.items() if key[0] == source}
        with self._lock:
            for key, state in seen.items():
                if previous.get(key) != state:
                    self.transitions.append(Transition(now, source, key[1], key[2], state))
                    self._state[key] = state
            for key in previous.keys() - seen.keys():
                if previous[key] != gone_state:
                    self.transitions.append(Transition(now, source, key[1], key[2], gone_state))
                    self._state[key] = gone_state

    def _poll_once(self, session: requests.Session) -> None:
        now = self.elapsed()
        try:
            alerts = session.get(f"{self.prometheus_url}/api/v1/alerts", timeout=2).json()["data"]["alerts"]
            seen = {("prometheus", *_identity(a["labels"])): a["state"] for a in alerts}
            self._record("prometheus", seen, now, "inactive")
        except (requests.RequestException, ValueError, KeyError, TypeError):
            self.missed_polls += 1  # the next poll catches up
        if self.alertmanager_url is None:
            return
        try:
            alerts = session.get(f"{self.alertmanager_url}/api/v2/alerts", timeout=2).json()
            seen = {}
            for alert in alerts:
                key = ("alertmanager", *_identity(alert["labels"]))
                seen[key] = alert["status"]["state"]
                if alert["status"].get("inhibitedBy"):
                    self.inhibited_by[key[1:]] = list(alert["status"]["inhibitedBy"])
            self._record("alertmanager", seen, now, "gone")
        except (requests.RequestException, ValueError, KeyError, TypeError):
            self.missed_polls += 1

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            self._poll_once(session)
            self._stop.wait(self.interval_s)

    def first(self, alertname: str, state: str, source: str | None = None, **labels: str) -> float | None:
        """When `alertname` (with these labels) first reached `state`, in seconds; None if it never did.
        The source defaults to Prometheus for pending/firing/inactive and Alertmanager otherwise."""
        source = source or ("prometheus" if state in ("pending", "firing", "inactive") else "alertmanager")
        with self._lock:
            for t in self.transitions:
                if (t.source == source and t.alertname == alertname and t.state == state
                        and all(t.label(k) == v for k, v in labels.items())):
                    return t.at_s
        return None

    def wait_for(self, alertname: str, state: str, timeout_s: float = 60.0, **labels: str) -> float:
        """Block until `first(alertname, state, **labels)` is known; TimeoutError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while (at := self.first(alertname, state, **labels)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{alertname} {labels or ''} did not reach {state} within {timeout_s:g} s")
            time.sleep(self.interval_s / 2)
        return at

    def start(self) -> AlertTimeline:
        self.started_at, self.started_wall = time.perf_counter(), time.time()
        self._thread = threading.Thread(target=self._run, name="alert-timeline", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
