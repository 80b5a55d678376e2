"""The batch job machinery on stand-ins (no vLLM): the HTTP store holds the input until released and keeps the
output, refuses wrong paths with a 4xx that says what it serves, the job's start and batch are timed and their CPU
counted, a job that dies is reported with its log, and nothing is left running. Also the input-file builder and
the dtype read from vLLM's start-up log."""
import json
import threading
import time

import psutil
import pytest
import requests

from llmserve.servers import (
    BatchFileStore,
    batch_input_lines,
    logged_engine_dtype,
)

FAKE_JOB = r"""
import json, sys, time, urllib.request
inp, out, burn = sys.argv[1], sys.argv[2], float(sys.argv[3])
time.sleep(0.2)                                   # "engine start"
lines = urllib.request.urlopen(inp, timeout=30).read().decode().splitlines()
end = time.process_time() + burn
while time.process_time() < end:                  # the batch: real CPU work
    pass
records = [{"custom_id": json.loads(l)["custom_id"], "error": None, "response": {"status_code": 200, "body": {
    "choices": [{"message": {"content": "ok"}}], "usage": {"prompt_tokens": 3, "completion_tokens": 5}}}}
    for l in lines]
data = "\n".join(json.dumps(r) for r in records).encode()
urllib.request.urlopen(urllib.request.Request(out, data=data, method="PUT"), timeout=30).read()
"""

BODIES = [{"model": "m", "messages": [{"role": "user", "content": f"q{i}"}], "max_tokens": 5} for i in range(3)]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_input_lines_are_openai_batch_requests():
    lines = [json.loads(line) for line in batch_input_lines(BODIES).splitlines()]
    assert [line["custom_id"] for line in lines] == ["request-0", "request-1", "request-2"]
    assert {line["method"] for line in lines} == {"POST"} and {line["url"] for line in lines} == {"/v1/chat/completions"}
    assert lines[1]["body"] == BODIES[1]


@pytest.mark.parametrize("body, message", [
    ({"model": "m", "messages": [], "stream": True}, "stream"),
    ({"messages": []}, "model"),
    ({"model": "m", "prompt": "hi"}, "messages"),
])
def test_input_lines_refuse_what_would_stop_the_job(body, message):
    with pytest.raises(ValueError, match=message):
        batch_input_lines([BODIES[0], body])
    with pytest.raises(ValueError, match="at least one"):
        batch_input_lines([])


def test_store_holds_the_input_until_released_and_keeps_the_output():
    store = BatchFileStore("line\n")
    try:
        got = {}
        reader = threading.Thread(target=lambda: got.update(reply=requests.get(store.url("/input.jsonl"), timeout=10)))
        reader.start()
        assert store.events["get"].wait(5)
        time.sleep(0.3)
        assert "reply" not in got, "the input must wait for release()"
        released = store.release()
        reader.join(5)
        assert got["reply"].status_code == 200 and got["reply"].text == "line\n"
        assert store.times["get"] < released
        put = requests.put(store.url("/output.jsonl"), data=b'{"a": 1}', timeout=5)
        assert put.status_code == 200 and store.output_text == '{"a": 1}' and store.events["put"].is_set()
    finally:
        store.close()


def test_store_answers_wrong_paths_with_a_4xx_that_names_the_right_one():
    store = BatchFileStore("x", hold=False)
    try:
        wrong_get = requests.get(store.url("/input.json"), timeout=5)
        assert wrong_get.status_code == 404 and "/input.jsonl" in wrong_get.text
        wrong_put = requests.put(store.url("/out.jsonl"), data=b"x", timeout=5)
        assert wrong_put.status_code == 404 and "/output.jsonl" in wrong_put.text
        assert not store.events["get"].is_set() and store.output_text is None
    finally:
        store.close()


def test_engine_dtype_is_read_from_vllms_start_up_line():
    line = ("(EngineCore pid=7834) INFO 12-04 19:01:00 [core.py:133] Initializing a V1 LLM engine (v0.32.0) with "
            "config: model='/m', speculative_config=None, tokenizer='/m', dtype=torch.bfloat16, max_seq_len=2048,"
            " kv_cache_dtype=auto")
    assert logged_engine_dtype("other lines\n" + line) == "bfloat16"
    assert logged_engine_dtype("INFO starting\n") is None
