"""ManagedServer's lifecycle on small stand-in processes (no course server): ports, start
failures with their log, timeouts that kill the whole group, stop after an exception, clear
errors for a missing model or repository."""
import socket
import sys
import time

import psutil
import pytest
import requests

from llmserve.course.assets import AssetError
from llmserve.servers import (
    ManagedServer,
    PortInUseError,
    ServerStartError,
    TritonServer,
    VLLMServer,
    free_port,
    port_is_free,
)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_free_port_is_free():
    port = free_port()
    assert port_is_free(port)


def test_busy_port_is_refused_before_starting_anything():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        server = ManagedServer([sys.executable, "-c", "pass"], health_url=f"http://127.0.0.1:{port}/",
                               ports=[port])
        with pytest.raises(PortInUseError, match=f"port {port} is already in use"):
            server.start()
        assert server.process is None


def test_server_that_dies_during_start_reports_its_log():
    script = "import sys; print('model file is corrupt', flush=True); sys.exit(3)"
    server = ManagedServer([sys.executable, "-c", script], health_url=f"http://127.0.0.1:{free_port()}/")
    with pytest.raises(ServerStartError) as error:
        server.start()
    assert "exited with code 3" in str(error.value)
    assert "model file is corrupt" in str(error.value)
    assert server.process is None


def test_start_timeout_kills_the_whole_process_group():
    # The parent starts a child that would outlive it; both must be gone after the timeout.
    script = ("import subprocess, sys, time; "
              "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
              "print(c.pid, flush=True); time.sleep(120)")
    server = ManagedServer([sys.executable, "-c", script], health_url=f"http://127.0.0.1:{free_port()}/",
                           start_timeout=3)
    with pytest.raises(ServerStartError, match="not healthy"):
        server.start()
    child_pid = int(server.log_path.read_text().split()[0])
    deadline = time.monotonic() + 5
    while _alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child_pid)


def test_exception_inside_with_block_still_stops_the_server(tmp_path):
    port = free_port()
    server = ManagedServer([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                           health_url=f"http://127.0.0.1:{port}/", ports=[port], cwd=tmp_path)
    with pytest.raises(RuntimeError, match="cell failed"):
        with server:
            pid = server.process.pid
            assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
            raise RuntimeError("cell failed")
    assert not _alive(pid)
    assert port_is_free(port)


def test_vllm_server_with_a_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(AssetError, match="No model at"):
        VLLMServer(model=tmp_path / "no-such-model")


def test_triton_with_a_missing_repository_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TritonServer(tmp_path / "nowhere")
