"""Who gets the CPU: pinning a server and a load generator to separate cores, measuring CPU seconds per process, and
a CPU hog to starve a client on purpose.

    command = pinned_command(server.command, {0})      # before start(): the server and its children on core 0
    run = run_pinned(lambda: stream_load(...), cpus={1}, niceness=0)   # the client's threads on core 1
    with cpu_seconds({"engine": pid}) as used:          # CPU time each process (and its children) spent meanwhile
        ...
    used.seconds["engine"]
    with CPUHog(cpus={1}, processes=1):                 # busy processes pinned to core 1
        ...

On Linux affinity and niceness belong to threads: a thread inherits them from the thread that creates it.
`run_pinned` therefore sets them in a fresh thread and runs the work there, so every request thread a load
generator starts inherits them, and the caller's own thread is left as it was (a process cannot lower its
niceness again without root). Used by vLLM Lab 2.5 · 03.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import psutil


def usable_cpus() -> list[int]:
    """The CPUs this process may run on, in order."""
    return sorted(os.sched_getaffinity(0))


def split_cpus(cpus: Sequence[int] | None = None) -> tuple[set[int], set[int]]:
    """(server CPUs, client CPU): every usable CPU but the last for the server, the last one for the client."""
    cpus = sorted(cpus if cpus is not None else usable_cpus())
    if len(cpus) < 2:
        raise ValueError(f"need at least two CPUs to keep a client off the server's cores, have {cpus}")
    return set(cpus[:-1]), {cpus[-1]}


def cpu_list(cpus: Iterable[int]) -> str:
    """{0, 1, 2, 5} -> "0-2,5" (the form taskset and the kernel print)."""
    ordered, ranges = sorted(set(cpus)), []
    for cpu in ordered:
        if ranges and cpu == ranges[-1][1] + 1:
            ranges[-1][1] = cpu
        else:
            ranges.append([cpu, cpu])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in ranges)


def pinned_command(command: Sequence[str], cpus: Iterable[int]) -> list[str]:
    """`command` under `taskset -c CPUS`: the process, its threads and its children start on those CPUs, so a
    runtime that sizes its thread pool by the CPUs it may use (PyTorch's OpenMP pool) sizes it for them."""
    return ["taskset", "-c", cpu_list(cpus), *[str(part) for part in command]]


def thread_affinities(pid: int) -> dict[int, set[int]]:
    """{thread id: its CPUs} for every thread of a process."""
    found = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            found[int(tid)] = os.sched_getaffinity(int(tid))
    return found


def pin_threads(pid: int, cpus: Iterable[int]) -> int:
    """Move every thread of a running process to `cpus`; the number of threads moved. (Threads it starts later
    inherit from the thread that starts them.)"""
    cpus = set(cpus)
    moved = 0
    for tid in thread_affinities(pid):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(tid, cpus)
            moved += 1
    return moved


def run_pinned(work: Callable[[], Any], *, cpus: Iterable[int], niceness: int = 0) -> Any:
    """Run `work()` in a new thread bound to `cpus` and `niceness` (added to the current one); its result. Threads
    that `work` starts inherit both."""
    cpus = set(cpus)

    def pinned():
        os.sched_setaffinity(0, cpus)
        if niceness:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(),
                           os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) + niceness)
        return work()

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pinned") as pool:
        return pool.submit(pinned).result()


def _process_seconds(pid: int, include_children: bool) -> float:
    try:
        process = psutil.Process(pid)
        members = [process] + (process.children(recursive=True) if include_children else [])
    except psutil.Error:
        return 0.0
    total = 0.0
    for member in members:
        with contextlib.suppress(psutil.Error):
            times = member.cpu_times()
            total += times.user + times.system
    return total


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its living children (0 for a process that is gone)."""
    return _process_seconds(pid, include_children=True)


class cpu_seconds:  # noqa: N801 (used as a context manager, like contextlib's)
    """CPU seconds (user + system) each named process spent inside the `with` block, and the whole machine's.

    `seconds[name]` per process (children included when `include_children`); `machine` all CPUs together;
    `wall` the block's wall time, so `seconds[name] / wall` is the number of CPUs it kept busy."""

    def __init__(self, pids: Mapping[str, int], include_children: bool = False):
        self.pids, self.include_children = dict(pids), include_children
        self.seconds: dict[str, float] = {}
        self.machine = self.wall = 0.0

    @staticmethod
    def _machine_busy() -> float:
        times = psutil.cpu_times()
        return sum(getattr(times, field, 0.0) for field in ("user", "nice", "system", "irq", "softirq", "steal"))

    def __enter__(self) -> cpu_seconds:
        import time

        self._begin = {name: _process_seconds(pid, self.include_children) for name, pid in self.pids.items()}
        self._machine_begin, self._wall_begin = self._machine_busy(), time.perf_counter()
        return self

    def __exit__(self, *exc_info) -> None:
        import time

        self.wall = time.perf_counter() - self._wall_begin
        self.machine = self._machine_busy() - self._machine_begin
        self.seconds = {name: _process_seconds(pid, self.include_children) - self._begin[name]
                        for name, pid in self.pids.items()}


HOG = "while True:\n    pass\n"


class CPUHog:
    """`processes` busy Python processes pinned to `cpus` at `niceness`: competition for those CPUs, on purpose.
    They are killed when the `with` block ends (and die with this process)."""

    def __init__(self, *, cpus: Iterable[int], processes: int = 1, niceness: int = 0):
        self.cpus, self.count, self.niceness = set(cpus), processes, niceness
        self.processes: list[subprocess.Popen] = []

    def _setup(self) -> None:  # runs in the child before exec
        import ctypes
        import signal

        os.sched_setaffinity(0, self.cpus)
        if self.niceness:
            os.nice(self.niceness)
        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    def __enter__(self) -> CPUHog:
        try:
            for _ in range(self.count):
                self.processes.append(subprocess.Popen([sys.executable, "-c", HOG], preexec_fn=self._setup))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
        self.processes = []
