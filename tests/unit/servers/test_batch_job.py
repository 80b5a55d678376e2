"""The batch job machinery without processes: the HTTP store holds the input until released and keeps the
output, and refuses wrong paths with a 4xx that says what it serves; the input-file builder; the dtype read from
vLLM's start-up log. The job itself, on stand-in processes, is in tests/servers/test_batch_job.py."""
import json
import threading
import time

import pytest
import requests

from llmserve.servers import (
    BatchFileStore,
    batch_input_lines,
    logged_engine_dtype,
)

BODIES = [{"model": "m", "messages": [{"role": "user", "content": f"q{i}"}], "max_tokens": 5} for i in range(3)]


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
