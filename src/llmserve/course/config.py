"""Where things live and how big the workloads are.

The profile (`ci`, `cpu`, `gpu`) only changes workload sizes, never the code path:
- `gpu` when CUDA is available,
- `ci` when the environment variable CI is true,
- `cpu` otherwise.
`COURSE_PROFILE` overrides the detection. The sizes themselves are in `course.toml`.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PROFILES = ("ci", "cpu", "gpu")

REPO_ROOT = Path(__file__).resolve().parents[3]
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
        """The workload sizes of this profile, from the course manifest (course.toml)."""
        from llmserve.course.manifest import manifest
        return manifest().workload(self.profile)


@lru_cache(maxsize=1)
def config() -> CourseConfig:
    return CourseConfig(profile=detect_profile(), cache_dir=default_cache_dir())


def profile() -> str:
    return config().profile


def workload(name: str | None = None):
    """All workload sizes of the current profile, or one of them by name."""
    sizes = config().workload()
    return sizes if name is None else sizes[name]
