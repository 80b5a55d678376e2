"""measure.screenshot: the graph-page URL, the PNG header, and clear errors when Chromium is missing or writes
nothing (a stand-in `chromium` script; the real browser is exercised by tests/labs/vllm/test_lab25_monitoring.py)."""
import os
import stat
from urllib.parse import parse_qs, urlparse

import pytest

from llmserve.measure import screenshot as shot


def test_graph_url_has_one_graph_per_expression():
    url = shot.prometheus_graph_url("http://127.0.0.1:9090/", ["rate(x_total[10s])", 'up{job="vllm"}'], range_s=90.4)
    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    assert parsed.path == "/graph"
    assert query["g0.expr"] == ["rate(x_total[10s])"] and query["g1.expr"] == ['up{job="vllm"}']
    assert query["g0.range_input"] == ["90s"] and query["g1.tab"] == ["0"]


def test_png_size_reads_the_header(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(shot.PNG_SIGNATURE + b"\x00\x00\x00\rIHDR" + (640).to_bytes(4, "big") + (480).to_bytes(4, "big"))
    assert shot.png_size(path) == (640, 480)
    (tmp_path / "b.png").write_bytes(b"GIF89a")
    with pytest.raises(ValueError):
        shot.png_size(tmp_path / "b.png")


def test_missing_chromium_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(shot.shutil, "which", lambda name: None)
    with pytest.raises(shot.ScreenshotError, match="Chromium is not installed"):
        shot.screenshot("http://127.0.0.1:1/", "/tmp/never.png")


def test_a_browser_that_writes_no_png_is_an_error_with_its_output(tmp_path, monkeypatch):
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\necho 'cannot open display' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(shot.ScreenshotError, match="cannot open display"):
        shot.screenshot("http://127.0.0.1:1/", tmp_path / "out.png", timeout_s=10)
