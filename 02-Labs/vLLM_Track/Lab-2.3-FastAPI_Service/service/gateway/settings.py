"""The gateway's settings: one frozen object, read from `GATEWAY_*` environment variables.

The app factory takes a `Settings`; `uvicorn gateway.app:create_app --factory` (and every worker
process it spawns) builds one from the environment, so the same code runs in a test, a notebook,
a process manager and a container:

    GATEWAY_BACKEND=engine GATEWAY_MAX_IN_FLIGHT=8 uvicorn gateway.app:create_app --factory
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

ENV_PREFIX = "GATEWAY_"


class SettingsError(ValueError):
    """A GATEWAY_* variable has a value the gateway cannot use; the message names it."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # What is served. `model_path` is the Hugging Face folder of the tokenizer (and of the engine's
    # weights); empty means the course model (llmserve.course.assets.model_path()).
    model_name: str = Field("course-model", min_length=1, description="model name clients send")
    model_path: str = ""
    backend: Literal["none", "engine", "upstream"] = "none"
    upstream_url: str = ""  # backend=upstream: an OpenAI-compatible server, e.g. http://127.0.0.1:8000
    upstream_timeout_s: float = Field(300.0, gt=0)
    upstream_api_key: SecretStr = SecretStr("")  # sent as `Authorization: Bearer` to the upstream (vLLM's VLLM_API_KEY)

    # Limits a client can hit, each answered with a 4xx that names the limit.
    max_body_bytes: int = Field(64 * 1024, ge=256)
    max_prompt_tokens: int = Field(1024, ge=1)
    max_tokens_limit: int = Field(256, ge=1)  # largest max_tokens a request may ask for
    default_max_tokens: int = Field(64, ge=1)
    max_tokenize_chars: int = Field(32 * 1024, ge=1)

    # Admission control: generation (and demo work) requests in flight per process; 0 = no limit.
    max_in_flight: int = Field(0, ge=0)
    retry_after_s: int = Field(1, ge=1)

    # The engine (backend=engine): vLLM's AsyncLLM in this process.
    engine_kv_cache_gib: float = Field(1.0, gt=0)
    engine_max_model_len: int = Field(2048, ge=16)
    engine_max_num_seqs: int = Field(16, ge=1)
    engine_dtype: str = "float32"
    engine_enforce_eager: bool = True
    engine_scheduling_policy: Literal["fcfs", "priority"] = "fcfs"
    engine_max_queued: int = Field(0, ge=0)  # vLLM's own queue cap (max_num_queued_reqs); 0 = none
    # "uni": the model runs inside the engine-core process (one child process instead of two: faster start
    # on a CPU); "mp": vLLM's default multiprocess executor.
    engine_executor: Literal["uni", "mp"] = "uni"
    # Also serve vLLM's own OpenAI server application (the app `python -m vllm.entrypoints.openai.api_server`
    # builds) at /vllm, on the same engine: the two API layers side by side (Lab 2.3 · 03).
    engine_mount_vllm_api: bool = False

    # Lab 2.3 · 02: teaching routes (blocking work, process pool, SSE work stream) and jobs.
    demo_routes: bool = False
    process_pool_workers: int = Field(1, ge=1)
    redis_url: str = ""  # enables /jobs (arq on Redis); the job worker reads it too
    job_timeout_s: int = Field(5, ge=1)  # read by the job worker: a job's time limit (its lease is this + 10 s)

    # vLLM Lab 2.4 · 03 (gateway/security.py): API keys, rate limits, access log. All off by default.
    # `api_key_hashes`: "name:sha256hex[:limit],..." (the sha256 of each key, never the key; a name's own limit of
    # requests per window beats `rate_limit_requests`); `api_keys_file`: the same entries, one per line.
    api_key_hashes: str = ""
    api_keys_file: str = ""
    rate_limit_requests: int = Field(0, ge=0)  # per key per window; 0 = no limit
    rate_limit_window_s: int = Field(60, ge=1)
    auth_failure_limit: int = Field(0, ge=0)  # failed authentications per client address per window; 0 = no limit
    rate_limit_redis_url: str = ""  # counters shared by every gateway process; empty = each process counts alone
    access_log: bool = False  # one JSON line per request on stdout (never a key, never a prompt)

    # Observability. `process_title` renames the serving process (ps shows it; the course's leak check
    # looks for "llm-gateway"); empty leaves the title alone (tests run the app inside pytest).
    metrics: bool = True
    process_title: str = ""
    loop_lag_interval_s: float = Field(0.02, gt=0)

    @property
    def security_enabled(self) -> bool:
        return bool(self.api_key_hashes or self.api_keys_file)

    def resolved_model_path(self) -> str:
        if self.model_path:
            return self.model_path
        from llmserve.course.assets import model_path  # the course model, checked by checksum
        return str(model_path())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> Settings:
        """Settings from GATEWAY_<NAME> variables (names upper-cased), then `overrides`."""
        env = os.environ if environ is None else environ
        values = {name: env[ENV_PREFIX + name.upper()] for name in cls.model_fields
                  if ENV_PREFIX + name.upper() in env}
        unknown = sorted(key for key in env if key.startswith(ENV_PREFIX)
                         and key[len(ENV_PREFIX):].lower() not in cls.model_fields)
        if unknown:
            raise SettingsError(f"unknown gateway settings {unknown}; known: "
                                f"{sorted(ENV_PREFIX + n.upper() for n in cls.model_fields)}")
        try:
            return cls(**{**values, **overrides})
        except ValidationError as error:
            problems = "; ".join(f"{ENV_PREFIX}{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}"
                                 for e in error.errors())
            raise SettingsError(f"invalid gateway settings: {problems}") from None

    def to_env(self) -> dict[str, str]:
        """The GATEWAY_* variables that reproduce these settings in another process."""
        out = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            out[ENV_PREFIX + name.upper()] = ("1" if value else "0") if isinstance(value, bool) else str(value)
        return out
