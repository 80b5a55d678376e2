"""Where things live and how big the workloads are.

The profile (`ci`, `cpu`, `gpu`) only changes workload sizes, never the code path:
- `gpu` when CUDA is available,
- `ci` when the environment variable CI is true,
- `cpu` otherwise.
`COURSE_PROFILE` overrides the detection.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PROFILES = ("ci", "cpu", "gpu")

REPO_ROOT = Path(__file__).resolve().parents[2]
SETUP_DIR = REPO_ROOT / "00-Course_Setup"


def _cuda_available() -> bool:
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def detect_profile(environ: dict[str, str] | None = None, cuda: bool | None = None) -> str:
    """Return the profile: COURSE_PROFILE if set, else gpu / ci / cpu by detection."""
    env = os.environ if environ is None else environ
    forced = env.get("COURSE_PROFILE", "").strip().lower()
    if forced:
        if forced not in PROFILES:
            raise ValueError(f"COURSE_PROFILE={forced!r} is not one of {', '.join(PROFILES)}")
        return forced
    if _cuda_available() if cuda is None else cuda:
        return "gpu"
    if env.get("CI", "").strip().lower() in ("1", "true", "yes"):
        return "ci"
    return "cpu"


def read_pins(path: Path | None = None) -> dict[str, str]:
    """The pinned downloads from 00-Course_Setup/pins.env (KEY=VALUE lines)."""
    path = path or SETUP_DIR / "pins.env"
    pins = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pins[key.strip()] = value.strip()
    return pins


def default_cache_dir(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("COURSE_CACHE"):
        return Path(env["COURSE_CACHE"]).expanduser()
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "llm-serving-course"


# Workload sizes per profile. Notebooks read these; they never branch on the profile.
WORKLOADS: dict[str, dict[str, int]] = {
    "ci": {"num_prompts": 8, "max_new_tokens": 32, "load_requests": 16, "concurrency": 4, "repeats": 2},
    "cpu": {"num_prompts": 32, "max_new_tokens": 64, "load_requests": 64, "concurrency": 8, "repeats": 3},
    "gpu": {"num_prompts": 256, "max_new_tokens": 128, "load_requests": 512, "concurrency": 64, "repeats": 5},
}
# vLLM Lab 2.2 · 01 (KV cache) and 02 (speculative decoding).
_LAB22_KV_SPEC = {
    "ci": {"kv_requests": 12, "kv_max_tokens": 192, "spec_prompts": 1, "spec_new_tokens": 32,
           "ngram_prompts": 3, "ngram_max_tokens": 80},
    "cpu": {"kv_requests": 32, "kv_max_tokens": 384, "spec_prompts": 6, "spec_new_tokens": 96,
            "ngram_prompts": 16, "ngram_max_tokens": 160},
    "gpu": {"kv_requests": 256, "kv_max_tokens": 512, "spec_prompts": 16, "spec_new_tokens": 128,
            "ngram_prompts": 64, "ngram_max_tokens": 256},
}
for _profile, _sizes in _LAB22_KV_SPEC.items():
    WORKLOADS[_profile].update(_sizes)
# Triton Lab 2.1 · 04 (monitoring): seconds of load while Prometheus scrapes every second.
for _profile, _seconds in {"ci": 30, "cpu": 60, "gpu": 120}.items():
    WORKLOADS[_profile]["monitor_seconds"] = _seconds
# Triton Lab 2.2 · 02 (A/B test): requests sent through the traffic split.
for _profile, _requests in {"ci": 120, "cpu": 400, "gpu": 2000}.items():
    WORKLOADS[_profile]["ab_requests"] = _requests
# Triton Lab 2.2 · 03 (lifecycle) and 04 (advanced configuration): seconds of load per run,
# canary requests per rollout stage.
_LAB22_TRITON = {
    "ci": {"reload_seconds": 16, "canary_min_requests": 40, "advanced_seconds": 4},
    "cpu": {"reload_seconds": 20, "canary_min_requests": 60, "advanced_seconds": 8},
    "gpu": {"reload_seconds": 30, "canary_min_requests": 200, "advanced_seconds": 15},
}
for _profile, _sizes in _LAB22_TRITON.items():
    WORKLOADS[_profile].update(_sizes)


# vLLM Lab 2.2 · 03 (quantization) and 04 (optimization matrix): evaluation tokens for perplexity,
# window length (stride = half of it), new tokens for batch-1 decode speed; 04's shared-prefix
# requests and new tokens, and whether the compiled-engine row runs (1) or is skipped (0) -
# a compiled vLLM engine takes 100-170 s to start on a 2-core CPU.
_LAB22_QUANT_OPT = {
    "ci": {"ppl_tokens": 256, "ppl_window": 128, "quant_decode_tokens": 8,
           "opt_prompts": 6, "opt_new_tokens": 32, "opt_compiled": 0},
    "cpu": {"ppl_tokens": 1024, "ppl_window": 256, "quant_decode_tokens": 32,
            "opt_prompts": 32, "opt_new_tokens": 64, "opt_compiled": 1},
    "gpu": {"ppl_tokens": 8192, "ppl_window": 512, "quant_decode_tokens": 64,
            "opt_prompts": 256, "opt_new_tokens": 128, "opt_compiled": 1},
}
for _profile, _sizes in _LAB22_QUANT_OPT.items():
    WORKLOADS[_profile].update(_sizes)

@dataclass(frozen=True)
class CourseConfig:
    profile: str
    cache_dir: Path
    repo_root: Path = REPO_ROOT

    @property
    def model_dir(self) -> Path:
        """The course model as a Hugging Face folder (COURSE_MODEL overrides)."""
        override = os.environ.get("COURSE_MODEL")
        return Path(override).expanduser() if override else self.cache_dir / "models" / "SmolLM2-135M-Instruct"

    @property
    def model_name(self) -> str:
        return self.model_dir.name

    @property
    def wheel_dir(self) -> Path:
        return self.cache_dir / "wheels"

    @property
    def triton_dir(self) -> Path:
        return self.cache_dir / "triton"

    @property
    def tritonserver_bin(self) -> Path:
        return self.triton_dir / "pytriton" / "tritonserver" / "bin" / "tritonserver"

    @property
    def triton_backends_dir(self) -> Path:
        return self.triton_dir / "pytriton" / "tritonserver" / "backends"

    @property
    def triton_python_env(self) -> Path:
        """The Python environment Triton's Python-backend stub runs model code in."""
        return self.repo_root / ".venv-triton"

    def workload(self) -> dict[str, int]:
        return dict(WORKLOADS[self.profile])


@lru_cache(maxsize=1)
def config() -> CourseConfig:
    return CourseConfig(profile=detect_profile(), cache_dir=default_cache_dir())


def profile() -> str:
    return config().profile


def workload(name: str | None = None):
    """All workload sizes of the current profile, or one of them by name."""
    sizes = config().workload()
    return sizes if name is None else sizes[name]
