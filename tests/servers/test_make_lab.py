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
    chromium = chromium_binary()  # raises "Chromium is not installed: run `make setup-system`"
    path, expected = FIRST_NOTEBOOKS[track]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    stored = (REPO_ROOT / path).read_bytes()  # JupyterLab saves the notebook (metadata, outputs): put it back after
    try:
        outputs, errors = _run_in_browser(lab, chromium, path, track)
    finally:
        (REPO_ROOT / path).write_bytes(stored)
    text = "\n".join(outputs)
    for needle in expected:
        assert needle in text, f"{track}: {needle!r} is not in the notebook's outputs:\n{text[-3000:]}"
    assert not errors, f"{track}: cells wrote to stderr (an error or log noise):\n" + "\n---\n".join(errors)[-3000:]
    noisy = [line for line in text.splitlines() if NOISE.search(line)]
    assert not noisy, f"{track}: output a student would read as a failure:\n" + "\n".join(noisy[:20])


def _run_in_browser(lab, chromium, path, track):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{lab['base']}/lab/tree/{path}?reset&token={lab['token']}")  # reset: no tabs of earlier tests
            page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").first.wait_for(timeout=60_000)
            dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
            try:  # JupyterLab may ask which kernel to start, with the course's preselected: take it, as a student would
                dialog.wait_for(timeout=5_000)
                dialog.locator("button", has_text="Select").click()
            except PlaywrightTimeout:
                pass
            page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(
                timeout=60_000)  # the kernel is up
            code_cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell").count()
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            # Done when every code cell has an execution count and the kernel is idle; a cell that fails stops
            # Run All, so an error output or an idle kernel with cells left unrun ends the wait at once.
            state_js = """() => ({prompts: [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')]
                                     .map(p => p.textContent.trim()),
                           status: document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator')
                                     ?.getAttribute('data-status'),
                           errors: document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output[data-mime-type='
                                     + '"application/vnd.jupyter.stderr"]').length})"""
            deadline, idle_since, state = time.monotonic() + 300, None, {}
            while time.monotonic() < deadline:
                state = page.evaluate(state_js)
                done = [bool(re.fullmatch(r"\[\d+\]:", t)) for t in state["prompts"]]
                if len(done) == code_cells and all(done) and state["status"] == "idle":
                    break
                if state["status"] == "idle" and any(done):
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since > 15:
                        break  # the kernel is idle and cells are left unrun: Run All stopped
                else:
                    idle_since = None
                time.sleep(1)
            page.screenshot(path=str(SCREENSHOTS / f"{track}-first-notebook.png"), full_page=False)
            assert state.get("prompts") and all(re.fullmatch(r"\[\d+\]:", t) for t in state["prompts"]) \
                and len(state["prompts"]) == code_cells, (
                f"{track}: not every cell ran through the UI (prompts {state.get('prompts')}, kernel "
                f"{state.get('status')}, stderr outputs {state.get('errors')}); see {SCREENSHOTS}")
            outputs = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output").all_text_contents()
            errors = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output[data-mime-type="
                                  "'application/vnd.jupyter.stderr']").all_text_contents()
        finally:
            browser.close()
    return outputs, errors
