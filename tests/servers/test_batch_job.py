"""BatchJob on stand-in processes (no vLLM, a second each): the job's start and batch are timed and their CPU
counted (the held wait costs none), a job that dies while starting or before writing its output is reported with
its log, and nothing is left running."""
import sys
import time

import psutil
import pytest

from llmserve.servers import BatchJob, ServerStartError, batch_input_lines

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


@pytest.mark.server
def test_job_start_and_batch_are_timed_and_their_cpu_counted():
    job = BatchJob([sys.executable, "-c", FAKE_JOB, "{input_url}", "{output_url}", "0.4"], batch_input_lines(BODIES))
    with job:
        pid = job.process.pid
        assert job.store.events["get"].is_set()          # ready = it asked for its input
        time.sleep(0.5)                                  # held: the job waits, using no CPU
        result = job.run(timeout=30)
    assert result.exit_code == 0 and result.ok == 3 and not result.errors
    assert result.output_tokens == 15 and result.prompt_tokens == 9
    assert result.texts() == {f"request-{i}": "ok" for i in range(3)}
    assert 0.3 <= result.batch_cpu_seconds <= 1.5, result.batch_cpu_seconds  # the burn, not the held wait
    assert result.batch_seconds >= 0.35 and result.startup_seconds >= 0.2
    assert result.tokens_per_s == pytest.approx(15 / result.batch_seconds)
    assert not _alive(pid)


@pytest.mark.server
def test_run_before_start_is_refused():
    job = BatchJob([sys.executable, "-c", FAKE_JOB, "{input_url}", "{output_url}", "0"], batch_input_lines(BODIES))
    with pytest.raises(RuntimeError, match="start the job first"):
        job.run()


@pytest.mark.server
def test_a_job_that_dies_while_starting_reports_its_log():
    job = BatchJob([sys.executable, "-c", "import sys; print('no engine for you'); sys.exit(3)", "{input_url}"],
                   "x\n", start_timeout=20)
    with pytest.raises(ServerStartError, match="no engine for you"):
        job.start()
    assert not job.running


@pytest.mark.server
def test_a_job_that_dies_after_reading_its_input_is_reported():
    script = ("import sys, urllib.request; urllib.request.urlopen(sys.argv[1]).read(); "
              "print('ValidationError: body.messages Field required'); sys.exit(1)")
    with BatchJob([sys.executable, "-c", script, "{input_url}"], "x\n") as job:
        with pytest.raises(ServerStartError, match="before writing its output"):
            job.run(timeout=20)
