"""`make lab`, the README's first command, as the user running the tests (root in CI): JupyterLab
starts, answers with its token, serves the course root, and has the news pop-up disabled."""
import os
import re
import signal
import subprocess
import time

import pytest
import requests

from llmserve.course.config import REPO_ROOT
from llmserve.servers import free_port

pytestmark = pytest.mark.server


def test_make_lab_starts_jupyterlab_that_answers():
    port = free_port()
    process = subprocess.Popen(["make", "--no-print-directory", "lab", f"LAB_PORT={port}"], cwd=REPO_ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    output, token = [], None
    try:
        deadline = time.monotonic() + 120
        while token is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            output.append(line)
            match = re.search(rf"http://127\.0\.0\.1:{port}/lab\?token=(\w+)", line)
            token = match.group(1) if match else None
        assert token, "JupyterLab printed no URL with a token:\n" + "".join(output[-30:])
        status = None
        while status is None and time.monotonic() < deadline:
            try:  # the URL may be printed a moment before the server accepts connections
                status = requests.get(f"http://127.0.0.1:{port}/api/status", params={"token": token}, timeout=10)
            except requests.ConnectionError:
                time.sleep(0.5)
        assert status is not None and status.status_code == 200, "".join(output[-30:])
        listing = requests.get(f"http://127.0.0.1:{port}/api/contents", params={"token": token}, timeout=10).json()
        assert {"02-Labs", "README.md"} <= {item["name"] for item in listing["content"]}, "not the course root"
        page = requests.get(f"http://127.0.0.1:{port}/lab", params={"token": token}, timeout=10).text
        assert "@jupyterlab/apputils-extension:announcements" in page, "the news pop-up is not disabled"
        assert not any("Running as root is not recommended. Use --allow-root" in line for line in output)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
