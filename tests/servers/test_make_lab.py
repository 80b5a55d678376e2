"""`make lab`, the README's first command, as the user running the tests (root in CI): JupyterLab
starts, answers with its token, serves the course root, has the news pop-up disabled, and runs the
first notebook of each track through its own UI in a real browser (Playwright driving Debian's
Chromium, no downloaded browser build): every cell runs, the expected output appears, no cell shows
an error or engine log noise, and a screenshot is kept in test-results/browser/."""
import os
import re
import signal
import subprocess
import time

import pytest
import requests

from llmserve.course.config import REPO_ROOT
from llmserve.measure.screenshot import chromium_binary
from llmserve.servers import free_port

pytestmark = pytest.mark.server
SCREENSHOTS = REPO_ROOT / "test-results" / "browser"


@pytest.fixture(scope="module")
def lab():
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
        yield {"base": f"http://127.0.0.1:{port}", "token": token, "output": output}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_make_lab_starts_jupyterlab_that_answers(lab):
    listing = requests.get(f"{lab['base']}/api/contents", params={"token": lab["token"]}, timeout=10).json()
    assert {"02-Labs", "README.md"} <= {item["name"] for item in listing["content"]}, "not the course root"
    page = requests.get(f"{lab['base']}/lab", params={"token": lab["token"]}, timeout=10).text
    assert "@jupyterlab/apputils-extension:announcements" in page, "the news pop-up is not disabled"
    assert not any("Running as root is not recommended. Use --allow-root" in line for line in lab["output"])


FIRST_NOTEBOOKS = {
    "vLLM": ("02-Labs/vLLM_Track/Lab-2.1-vLLM_Deployment/01-Setup_and_Installation.ipynb",
             ["Paris", "engine stopped"]),
    "Triton": ("02-Labs/Triton_Track/Lab-2.1-Triton_Server_Basics/01-Setup_and_Installation.ipynb",
               ["server counted successes", "server stopped"]),
}
# What a student must not see: a traceback, or an engine's own log lines.
NOISE = re.compile(r"Traceback|Error:|\bINFO\b|\bWARNING\b|force killing")


@pytest.mark.parametrize("track", FIRST_NOTEBOOKS)
def test_first_notebook_runs_through_the_jupyterlab_ui(lab, track):
    from playwright.sync_api import sync_playwright

    chromium = chromium_binary()  # raises "Chromium is not installed: run `make setup-system`"
    path, expected = FIRST_NOTEBOOKS[track]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{lab['base']}/lab/tree/{path}?token={lab['token']}")
            page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=60_000)
            page.locator(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(
                timeout=60_000)  # the kernel is up
            code_cells = page.locator(".jp-NotebookPanel .jp-CodeCell").count()
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            # Done when every code cell has an execution count and none is waiting ([*]).
            page.wait_for_function(
                """n => { const prompts = [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')]
                          .map(p => p.textContent.trim());
                          return prompts.length === n && prompts.every(t => /^\\[\\d+\\]:$/.test(t)); }""",
                arg=code_cells, timeout=300_000, polling=1000)
            page.screenshot(path=str(SCREENSHOTS / f"{track}-first-notebook.png"), full_page=False)
            outputs = page.locator(".jp-NotebookPanel .jp-OutputArea-output").all_inner_texts()
            errors = page.locator(".jp-NotebookPanel .jp-OutputArea-output[data-mime-type="
                                  "'application/vnd.jupyter.stderr']").all_inner_texts()
        finally:
            browser.close()
    text = "\n".join(outputs)
    for needle in expected:
        assert needle in text, f"{track}: {needle!r} is not in the notebook's outputs:\n{text[-3000:]}"
    assert not errors, f"{track}: cells wrote to stderr (an error or log noise):\n" + "\n---\n".join(errors)[-3000:]
    noisy = [line for line in text.splitlines() if NOISE.search(line)]
    assert not noisy, f"{track}: output a student would read as a failure:\n" + "\n".join(noisy[:20])
