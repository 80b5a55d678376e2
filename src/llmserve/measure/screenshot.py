"""Screenshots of web pages with headless Chromium (Debian's `chromium`), e.g. Prometheus's own graph page.

    url = prometheus_graph_url(prometheus.base_url, ["job:vllm_num_requests_running:sum"], range_s=120)
    png = screenshot(url, Path("/tmp/prometheus-graph.png"), window_size=(1280, 800))

Chromium renders the page, runs its JavaScript (Prometheus's UI is a React app that fetches the data with
`query_range`) for `wait_ms` of virtual time, and writes a PNG. As root it must run with `--no-sandbox`
(Chromium refuses to start its sandbox as root); the helper adds it then. Every call uses a fresh profile
folder, so two screenshots at once do not fight over one profile lock, and the browser's whole process
group is ended afterwards.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlencode

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ScreenshotError(RuntimeError):
    """Chromium is missing, failed, or wrote no PNG (the message carries the end of its output)."""


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    raise ScreenshotError("Chromium is not installed: run `make setup-system` (installs Debian's chromium), "
                          "or put a chromium / google-chrome binary on PATH.")


def prometheus_graph_url(base_url: str, exprs: Sequence[str], range_s: float = 300, stacked: bool = False) -> str:
    """The URL of Prometheus's graph page with one graph per expression over the last `range_s` seconds.

    (The page also takes an end time, `g0.end_input`, but only to the minute: for the last few seconds of
    a notebook's run, "until now" is the precise choice.)"""
    params = {}
    for i, expr in enumerate(exprs):
        params.update({f"g{i}.expr": expr, f"g{i}.tab": "0", f"g{i}.stacked": "1" if stacked else "0",
                       f"g{i}.range_input": f"{max(1, round(range_s))}s"})
    return f"{base_url.rstrip('/')}/graph?{urlencode(params)}"


def screenshot(url: str, path: str | Path, window_size: tuple[int, int] = (1280, 800), wait_ms: int = 3000,
               timeout_s: float = 60.0) -> Path:
    """Render `url` in headless Chromium and save a PNG of the window at `path`; returns the path."""
    binary = chromium_binary()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        command = [binary, "--headless", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                   "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                   f"--window-size={window_size[0]},{window_size[1]}", f"--virtual-time-budget={wait_ms}",
                   f"--screenshot={path}", url]
        if os.geteuid() == 0:
            command.insert(1, "--no-sandbox")
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            output, _ = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            output = b"(timed out)"
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)  # the browser's helper processes, if any are left
            process.wait()
    tail = "\n".join(output.decode(errors="replace").splitlines()[-8:])
    if not path.exists() or path.read_bytes()[:8] != PNG_SIGNATURE:
        raise ScreenshotError(f"chromium wrote no PNG to {path} (exit code {process.returncode}):\n{tail}")
    return path


def png_size(path: str | Path) -> tuple[int, int]:
    """(width, height) in pixels of a PNG file, read from its header."""
    header = Path(path).read_bytes()[:24]
    if header[:8] != PNG_SIGNATURE:
        raise ValueError(f"{path} is not a PNG file")
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
