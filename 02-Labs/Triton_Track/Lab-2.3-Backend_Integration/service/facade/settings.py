"""Where the backends are. Every setting is a FACADE_<NAME> environment variable, read when the app starts."""
from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    triton_url: str = ""            # host:port of Triton's HTTP endpoint; empty: no Triton backend
    triton_model: str = "course_chat"
    vllm_url: str = ""              # http://host:port of vLLM's OpenAI server; empty: no vLLM backend
    vllm_model: str = "course-llm"  # vLLM's --served-model-name
    max_tokens_limit: int = 256
    default_max_tokens: int = 16
    timeout_s: float = 120.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values = {}
        for name, field in cls.__dataclass_fields__.items():
            raw = env.get(f"FACADE_{name.upper()}")
            if raw is not None:
                values[name] = type(field.default)(raw)
        return cls(**values)
