"""Kill a set of processes when the process that started this watchdog dies.

vLLM's offline engine runs its engine core (and workers) in child processes. If the
notebook kernel is killed outright (SIGKILL, OOM, a test timeout), those children are
re-parented and keep running. `offline_engine` therefore starts this watchdog with the
engine's process ids; the kernel's death sends it SIGTERM (PR_SET_PDEATHSIG) and it kills
them. When the engine is shut down normally, the watchdog is stopped first.

    python -m llmserve.servers.watchdog PARENT_PID PID [PID ...]
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

import psutil


def _kill_tree(pids: list[int]) -> None:
    victims = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            victims += [process, *process.children(recursive=True)]
    for process in victims:
        with contextlib.suppress(psutil.Error):
            process.kill()


def main(argv: list[str]) -> int:
    parent, pids = int(argv[0]), [int(p) for p in argv[1:]]
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGUSR1})
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        _kill_tree(pids)
        return 0
    print("ready", flush=True)  # the signals are blocked now: _start_watchdog waits for this line
    received = signal.sigwait({signal.SIGTERM, signal.SIGUSR1})
    if received == signal.SIGTERM:  # parent died: clean up what it left
        _kill_tree(pids)
    return 0  # SIGUSR1: normal shutdown, nothing to do


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
