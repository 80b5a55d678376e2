"""`offline_engine` on the real vLLM: the in-process layout runs no engine process, and the
multi-process layout leaves nothing behind even when the process that owns it is SIGKILLed."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

pytestmark = pytest.mark.server

SCRIPT = textwrap.dedent("""
    import json, os, sys, time
    import psutil
    from llmserve.servers import offline_engine

    if __name__ == "__main__":
        in_process = sys.argv[1] == "in"
        with offline_engine(in_process=in_process, max_model_len=512) as llm:
            from vllm import SamplingParams
            messages = [{"role": "user", "content": "What is the capital of France?"}]
            out = llm.chat(messages, SamplingParams(max_tokens=12, temperature=0), use_tqdm=False)
            children = [c.pid for c in psutil.Process().children(recursive=True)]
            print(json.dumps({"text": out[0].outputs[0].text, "children": children,
                              "in_process": llm.in_process}), flush=True)
            if sys.argv[2] == "hang":
                time.sleep(600)  # stays inside the block until the test kills this process
""")


def _run(tmp_path, layout: str, mode: str):
    script = tmp_path / "engine.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "VLLM_LOGGING_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, str(script), layout, mode], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)


def _report(process) -> dict:
    for line in process.stdout:
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError(f"the engine script printed no report (exit code {process.wait()})")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_in_process_engine_runs_in_the_calling_process_and_answers(tmp_path):
    process = _run(tmp_path, "in", "exit")
    report = _report(process)
    assert process.wait(timeout=120) == 0
    assert report["in_process"] is True
    assert report["children"] == [], "the in-process layout should start no engine process"
    assert "Paris" in report["text"]


def test_multi_process_engine_children_die_with_a_killed_owner(tmp_path):
    process = _run(tmp_path, "mp", "hang")
    report = _report(process)
    children = report["children"]
    assert report["in_process"] is False and children, "the multi-process layout should run engine processes"
    assert "Paris" in report["text"]
    os.kill(process.pid, signal.SIGKILL)  # no atexit, no finally: only the watchdog can clean up
    process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.5)
    leaked = [pid for pid in children if _alive(pid)]
    for pid in leaked:
        psutil.Process(pid).kill()
    assert not leaked, f"engine processes outlived their SIGKILLed owner: {leaked}"
