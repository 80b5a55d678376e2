"""Injecting faults into a running server and timing its recovery, as an on-call engineer would (Triton Lab 2.5 · 04).

    stubs = python_backend_stubs(server.process.pid)     # {"scorer_0_0": 12345}: the stub of each model instance
    holders = port_holders(8000)                         # [(pid, "python3")]: who listens on the port
    seconds = wait_until(lambda: ready(url), timeout_s=30)
    server.command = in_private_dev_shm(server.command, size_mib=4)   # before start(): a 4 MiB /dev/shm
    log = LogCursor(server.log_path); ...; log.new_lines()            # what the server logged since

Nothing here fakes a fault: the signals, mounts and ports are real; these helpers only find the process to hit,
bound the waits, and read what the server said.
"""
from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil

STUB_NAME = "triton_python_backend_stub"
POOL_PREFIX = "triton_python_backend_shm_region_"  # the Python backend's shared-memory pools in /dev/shm
# Log lines that carry no diagnosis on a CPU machine: the configuration tables and the missing-GPU notices.
_NOISE = re.compile(r"^\s*[+|]|CudaDriverHelper|NVML|DCGM|^\s*$")


def python_backend_stubs(server_pid: int) -> dict[str, int]:
    """{model instance name: pid} of the live Python-backend stub processes under a Triton server.

    Each model instance runs in its own `triton_python_backend_stub` child; the instance name
    (e.g. `scorer_0_0`: model, instance group, instance) is the second-to-last argument of its command line.
    A stub that died and was not yet reaped (a zombie) is left out: it has no command line and serves nothing.
    """
    stubs = {}
    for child in psutil.Process(server_pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.status() == psutil.STATUS_ZOMBIE or child.name() != STUB_NAME:
                continue
            cmdline = child.cmdline()
            if len(cmdline) >= 2:
                stubs[cmdline[-2]] = child.pid
    return stubs


def port_holders(port: int) -> list[tuple[int, str]]:
    """(pid, process name) of every process with a TCP socket listening on `port` (what `ss -ltnp` shows)."""
    holders = set()
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            with contextlib.suppress(psutil.Error):
                holders.add((conn.pid, psutil.Process(conn.pid).name()))
    return sorted(holders)


def wait_until(condition: Callable[[], bool], *, timeout_s: float, interval_s: float = 0.05) -> float:
    """Seconds until `condition()` first returns true, polling every `interval_s`; TimeoutError after `timeout_s`.

    An exception raised by `condition` counts as "not yet" (a server that is restarting refuses connections).
    """
    began = time.perf_counter()
    while True:
        with contextlib.suppress(Exception):
            if condition():
                return time.perf_counter() - began
        if time.perf_counter() - began > timeout_s:
            raise TimeoutError(f"condition not met within {timeout_s:g} s")
        time.sleep(interval_s)  # polling interval while waiting for the condition


def in_private_dev_shm(command: Sequence[str], *, size_mib: float) -> list[str]:
    """`command`, run with a /dev/shm of its own of `size_mib` MiB: what a container started with a small
    `--shm-size` (or a pod without a memory-backed /dev/shm volume) sees.

    A private mount namespace (`unshare --mount`, util-linux) with a fresh tmpfs on /dev/shm; needs root.
    The tmpfs disappears with the process, so nothing is left in the machine's /dev/shm.
    """
    if size_mib <= 0:
        raise ValueError("size_mib must be positive")
    size_kib = max(1, round(size_mib * 1024))
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            f'mount -t tmpfs -o size={size_kib}k tmpfs /dev/shm && exec "$@"', "sh", *map(str, command)]


def can_mount_private_dev_shm() -> bool:
    """Whether `in_private_dev_shm` can work here: root and `unshare` on PATH."""
    import shutil

    return os.geteuid() == 0 and shutil.which("unshare") is not None


def run_until_exit(command: Sequence[str], *, env: dict[str, str] | None = None, timeout_s: float = 60.0,
                   shm_prefix: str | None = POOL_PREFIX) -> tuple[int | None, str, float]:
    """Run `command` in its own process group until it exits: (exit code, its output, seconds).

    For a server expected to fail at start (a busy port). Its output goes to a temporary file, not a pipe, so a
    child that outlives it (a model stub still holding the pipe) cannot keep the call waiting. If it is still
    running after `timeout_s`, the exit code is None. Either way its whole process group is killed at the end:
    nothing it started outlives the call. Shared-memory files in /dev/shm whose names start with `shm_prefix`
    and that the process tree mapped while it ran (a Python-backend stub's pool) are removed afterwards: a stub
    that is killed leaves its pool behind.
    """
    from llmserve.measure.memory import shared_memory_files

    began = time.perf_counter()
    pools: set[str] = set()
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(list(map(str, command)), stdout=output, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        code = None
        try:
            while time.perf_counter() - began < timeout_s:
                if shm_prefix:
                    with contextlib.suppress(psutil.Error):
                        pools |= {p for p in shared_memory_files(process.pid) if Path(p).name.startswith(shm_prefix)}
                code = process.poll()
                if code is not None:
                    break
                time.sleep(0.05)  # polling interval while the process runs
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)  # the group: whatever the failed server left behind
            process.wait()
            for pool in pools:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(pool)
        seconds = time.perf_counter() - began
        output.seek(0)
        return code, output.read().decode(errors="replace"), seconds


def diagnostic_lines(text: str, pattern: str | None = None) -> list[str]:
    """The lines of a server log that say something: no tables, no missing-GPU notices; only those
    matching the regular expression `pattern` when one is given."""
    wanted = re.compile(pattern) if pattern else None
    return [line for line in text.splitlines()
            if not _NOISE.search(line) and (wanted is None or wanted.search(line))]


class LogCursor:
    """Reads what a server wrote to its log file since the last read (starting at the end of the file now)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def new_text(self) -> str:
        with open(self.path, "rb") as log:
            log.seek(self.offset)
            data = log.read()
        self.offset += len(data)
        return data.decode(errors="replace")

    def new_lines(self, pattern: str | None = None) -> list[str]:
        """The diagnostic lines (see `diagnostic_lines`) written since the last call."""
        return diagnostic_lines(self.new_text(), pattern)
