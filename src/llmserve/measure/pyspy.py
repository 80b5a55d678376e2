"""Where a running Python process spends its CPU time: py-spy's sampling profiler, attached from outside.

    with PySpyRecording(engine_pid, duration_s=4) as recording:
        run = stream_load(...)                       # the load whose CPU time you want to see
    profile = recording.profile()
    profile.top_leaves(5)                            # [(frame, samples), ...]: where the samples were taken
    profile.by_category([("matmuls", ("onednn_mm", "linear.py")), ...])   # {label: samples}, first match from the leaf

`py-spy record --format raw` samples the target's Python stacks `rate_hz` times a second and writes them as
collapsed stacks ("frame;frame;...;leaf count" per line; a frame is "function (file:line)"). Only threads that are
running are sampled (py-spy leaves idle threads out), so the samples show where CPU time goes. `--nonblocking` reads
the target's memory without pausing it: less overhead, at the price of an occasional torn stack (py-spy counts those
as errors). Attaching needs ptrace rights over the target: root, the same user where ptrace is unrestricted
(`/proc/sys/kernel/yama/ptrace_scope` 0 or absent), or `sudo py-spy`.

Used by vLLM Lab 2.5 · 03 (the engine core's CPU time while it serves a load).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

Stack = tuple[str, ...]
NO_PYTHON_FRAME = "<no Python frame>"


def py_spy_binary() -> str:
    """The py-spy executable of this environment (installed from the pinned requirements), else the one on PATH."""
    here = Path(sys.executable).parent / "py-spy"
    if here.exists():
        return str(here)
    found = shutil.which("py-spy")
    if not found:
        raise FileNotFoundError("py-spy is not installed: run `make setup` (00-Course_Setup/requirements-cpu.txt)")
    return found


def parse_collapsed(text: str) -> list[tuple[Stack, int]]:
    """py-spy's raw output (collapsed stacks) as (frames from the outermost to the leaf, samples) pairs."""
    stacks = []
    for line in text.splitlines():
        line = line.rstrip()
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            raise ValueError(f"not a collapsed-stack line: {line[:120]!r}")
        # a sample of a thread with no Python frame on its stack (in C code only, or torn) has an empty stack
        stacks.append((tuple(stack.split(";")) if stack.strip() else (NO_PYTHON_FRAME,), int(count)))
    return stacks


def frame_function(frame: str) -> str:
    """"fused_add_rms_norm (vllm/ir/ops/layernorm.py:58)" -> "fused_add_rms_norm (vllm/ir/ops/layernorm.py)"."""
    head, _, location = frame.rpartition(" (")
    if not head:
        return frame
    return f"{head} ({location.rsplit(':', 1)[0].rstrip(')')})"


@dataclass
class Profile:
    stacks: list[tuple[Stack, int]]
    errors: int = 0   # samples py-spy could not read (torn stacks in non-blocking mode)

    @property
    def total(self) -> int:
        return sum(count for _, count in self.stacks)

    def top_leaves(self, n: int = 10) -> list[tuple[str, int]]:
        """The functions the samples were taken in (the leaf frame, line numbers merged), most samples first."""
        leaves: Counter[str] = Counter()
        for frames, count in self.stacks:
            leaves[frame_function(frames[-1])] += count
        return leaves.most_common(n)

    def inclusive(self, substring: str) -> int:
        """Samples whose stack contains a frame with `substring` (time spent in it and in what it called)."""
        return sum(count for frames, count in self.stacks if any(substring in frame for frame in frames))

    def by_category(self, categories: Sequence[tuple[str, Iterable[str]]], other: str = "other") -> dict[str, int]:
        """Samples per category. Each stack is walked from its leaf outwards and counted for the first category one
        of whose substrings occurs in a frame: the innermost recognisable layer wins (a matmul inside the model's
        forward counts as a matmul, not as "forward")."""
        rules = [(label, tuple(parts)) for label, parts in categories]
        counts = {label: 0 for label, _ in rules}
        counts[other] = 0
        for frames, count in self.stacks:
            label = next((label for frame in reversed(frames) for label, parts in rules
                          if any(part in frame for part in parts)), other)
            counts[label] += count
        return counts


class PySpyRecording:
    """`py-spy record` of one process for `duration_s` seconds, in the background (it ends by itself).

    `cpus` pins py-spy to those CPUs (e.g. the client's core, away from the profiled engine's)."""

    def __init__(self, pid: int, *, duration_s: float, rate_hz: int = 100, nonblocking: bool = True,
                 native: bool = False, cpus: Iterable[int] | None = None):
        self.pid, self.duration_s, self.rate_hz = pid, duration_s, rate_hz
        self.output_path = Path(tempfile.mkdtemp(prefix="py-spy-")) / "profile.txt"
        self.command = [py_spy_binary(), "record", "--pid", str(pid), "--duration", f"{max(1, round(duration_s))}",
                        "--rate", str(rate_hz), "--format", "raw", "--output", str(self.output_path)]
        if nonblocking:
            self.command.append("--nonblocking")
        if native:
            self.command.append("--native")
        self.cpus = set(cpus) if cpus is not None else None
        self.process: subprocess.Popen | None = None
        self.log = ""

    def start(self) -> PySpyRecording:
        cpus = self.cpus
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
        return self

    def wait(self, timeout_s: float | None = None) -> str:
        """Wait for py-spy to finish; its own output (it prints the sample and error counts)."""
        timeout_s = timeout_s if timeout_s is not None else self.duration_s + 30
        try:
            self.log, _ = self.process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.log, _ = self.process.communicate()
        if self.process.returncode != 0 or not self.output_path.exists():
            raise RuntimeError(f"py-spy failed (exit code {self.process.returncode}); attaching needs ptrace rights "
                               f"over process {self.pid} (root, or ptrace_scope 0):\n{self.log[-2000:]}")
        return self.log

    def profile(self) -> Profile:
        if self.process is None or self.process.returncode is None:
            self.wait()
        errors = 0
        for word in self.log.replace(",", " ").split("Errors:")[1:2]:
            errors = int(word.split()[0]) if word.split() and word.split()[0].isdigit() else 0
        return Profile(parse_collapsed(self.output_path.read_text()), errors=errors)

    def __enter__(self) -> PySpyRecording:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        if self.process is not None and self.process.poll() is None:
            if exc_info[0] is None:
                self.wait()
            else:
                self.process.kill()
                self.process.wait()
