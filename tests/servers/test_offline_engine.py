"""`offline_engine` on the real vLLM: the in-process layout (the course's default on CPU) runs no engine process.
The multi-process layout's guarantee (its engine processes die with a SIGKILLed owner) is tested on stand-in
processes in tests/unit/servers/test_watchdog.py; starting that layout costs a minute, and `make bench`
(cpu_levers) starts it."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.server

SCRIPT = textwrap.dedent("""
    import json, sys
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
""")


def _run(tmp_path, layout: str):
    script = tmp_path / "engine.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "VLLM_LOGGING_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, str(script), layout], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)


def _report(process) -> dict:
    for line in process.stdout:
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError(f"the engine script printed no report (exit code {process.wait()})")


def test_in_process_engine_runs_in_the_calling_process_and_answers(tmp_path):
    process = _run(tmp_path, "in")
    report = _report(process)
    assert process.wait(timeout=120) == 0
    assert report["in_process"] is True
    assert report["children"] == [], "the in-process layout should start no engine process"
    assert "Paris" in report["text"]
