"""llmserve.ops.faults: finding the process to hit, bounding the waits, reading the server's log."""
import os
import socket
import subprocess
import sys
import time

import pytest

from llmserve.ops.faults import (
    LogCursor,
    diagnostic_lines,
    in_private_dev_shm,
    port_holders,
    python_backend_stubs,
    run_until_exit,
    wait_until,
)


def test_wait_until_returns_the_time_and_treats_exceptions_as_not_yet():
    began = time.perf_counter()
    calls = []

    def condition():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("restarting")
        return True

    seconds = wait_until(condition, timeout_s=5, interval_s=0.01)
    assert len(calls) == 3 and 0 < seconds <= time.perf_counter() - began
    with pytest.raises(TimeoutError):
        wait_until(lambda: False, timeout_s=0.05, interval_s=0.01)


def test_port_holders_finds_the_listening_process():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert (os.getpid(), __import__("psutil").Process().name()) in port_holders(port)
    assert port_holders(port) == []


def test_python_backend_stubs_reads_instance_names_and_skips_others(tmp_path):
    # A stand-in stub: Python started through a link named like the stub, with the stub's last two arguments.
    link = tmp_path / "triton_python_backend_stub"
    link.symlink_to(sys.executable)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "other_0_0", "DEFAULT"])
    child = subprocess.Popen([str(link), "-c", "import time; time.sleep(30)", "scorer_0_0", "DEFAULT"])
    try:
        wait_until(lambda: python_backend_stubs(os.getpid()), timeout_s=5, interval_s=0.02)
        assert python_backend_stubs(os.getpid()) == {"scorer_0_0": child.pid}
        child.kill()
        wait_until(lambda: python_backend_stubs(os.getpid()) == {}, timeout_s=5, interval_s=0.02)  # a zombie is left out
    finally:
        for process in (child, other):
            process.kill()
            process.wait()


def test_in_private_dev_shm_wraps_the_command():
    argv = in_private_dev_shm(["tritonserver", "--http-port=8000"], size_mib=4)
    assert argv[:4] == ["unshare", "--mount", "--propagation", "private"]
    assert "size=4096k" in argv[6] and argv[-2:] == ["tritonserver", "--http-port=8000"]
    with pytest.raises(ValueError):
        in_private_dev_shm(["x"], size_mib=0)


def test_run_until_exit_returns_code_and_output_and_kills_on_timeout():
    code, output, seconds = run_until_exit([sys.executable, "-c", "print('bound'); raise SystemExit(3)"], timeout_s=30)
    assert (code, output.strip()) == (3, "bound") and seconds < 30
    # A child that keeps the output open must not keep the call waiting; a process still running is killed.
    code, _, seconds = run_until_exit(["bash", "-c", "sleep 30 & exit 1"], timeout_s=10)
    assert code == 1 and seconds < 10
    code, _, seconds = run_until_exit(["sleep", "30"], timeout_s=0.5)
    assert code is None and seconds < 5


def test_log_cursor_reads_only_new_diagnostic_lines(tmp_path):
    log_file = tmp_path / "server.log"
    log_file.write_text("I old line\n")
    cursor = LogCursor(log_file)
    with open(log_file, "a") as log:
        log.write("+----+\n| table |\nE1202 failed to load 'scorer'\nError: Failed to initialize NVML\nI loaded\n")
    assert cursor.new_lines() == ["E1202 failed to load 'scorer'", "I loaded"]
    assert cursor.new_lines() == []
    with open(log_file, "a") as log:
        log.write("I a\nE b\n")
    assert cursor.new_lines(r"^E") == ["E b"]
    assert diagnostic_lines("x\n\n| y |\nz", "z") == ["z"]


def test_run_until_exit_removes_the_pools_its_process_tree_mapped(tmp_path):
    # A stand-in for a stub's pool: a /dev/shm file the child maps, then left behind when the child is killed.
    name = f"/dev/shm/triton_python_backend_shm_region_test-{os.getpid()}"
    script = (f"import mmap, os, time\nfd = os.open({name!r}, os.O_CREAT | os.O_RDWR)\nos.ftruncate(fd, 4096)\n"
              "m = mmap.mmap(fd, 4096)\ntime.sleep(30)\n")
    try:
        code, _, _ = run_until_exit([sys.executable, "-c", script], timeout_s=1.5)
        assert code is None and not os.path.exists(name)
    finally:
        if os.path.exists(name):
            os.unlink(name)
