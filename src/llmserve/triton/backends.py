"""One model, four runtimes: build the artefacts from the same weights, validate each with its own tool, compare.

    module = build_classifier()                                   # triton_course_models.classifier
    built = build_repository(module, [RUNTIMES_REPO, NATIVE_REPO], workdir)
    built.artefacts["classifier_onnxruntime"]                     # [Artefact(path, size, validated_by), ...]
    rows = agreement(reference_logits, {"onnxruntime": logits, ...})

`build_repository` copies every model folder of the given repositories into `workdir` and writes into each
version folder the artefact its config.pbtxt asks for:

| config.pbtxt says                                    | artefact written             | validated with                      |
|------------------------------------------------------|------------------------------|-------------------------------------|
| python backend, `runtime` = torch_eager              | `weights.pt` (state dict)    | loaded back into a fresh module     |
| python backend, `runtime` = torchscript, or platform `pytorch_libtorch` | `model.pt` (traced) | `torch.jit.load`             |
| python backend, `runtime` = onnxruntime, or platform `onnxruntime_onnx` | `model.onnx`        | `onnx.checker.check_model(full_check=True)` |
| python backend, `runtime` = openvino, or backend `openvino`             | `model.xml` + `.bin` | `openvino.Core().read_model`  |

Each artefact is exported once and copied to every model that needs it. The ONNX file comes from
`torch.onnx.export` (the TorchScript-based exporter, `dynamo=False`: about a second here, against ~10 s for
the dynamo exporter on this model), with a dynamic batch dimension; the OpenVINO IR is converted from that
ONNX file with `openvino.convert_model`. Used by Triton Lab 2.3 · 01 and 02.
"""
from __future__ import annotations

import shutil
import tempfile
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from llmserve.triton.model_config import parse_model_config

RUNTIME_OF_PLATFORM = {"pytorch_libtorch": "torchscript", "onnxruntime_onnx": "onnxruntime"}
RUNTIME_OF_BACKEND = {"pytorch": "torchscript", "onnxruntime": "onnxruntime", "openvino": "openvino"}
FILES = {"torch_eager": ["weights.pt"], "torchscript": ["model.pt"], "onnxruntime": ["model.onnx"],
         "openvino": ["model.xml", "model.bin"]}


@dataclass
class Artefact:
    runtime: str
    files: list[Path]
    export_seconds: float
    validated_by: str

    @property
    def size_mib(self) -> float:
        return sum(f.stat().st_size for f in self.files) / 2**20


@dataclass
class BuiltRepository:
    path: Path
    models: dict[str, str] = field(default_factory=dict)       # model name -> runtime
    artefacts: dict[str, Artefact] = field(default_factory=dict)  # runtime -> the artefact exported


def runtime_of_config(config) -> str:
    """Which runtime a parsed ModelConfig needs: its `runtime` parameter (Python backend) or its platform/backend."""
    if config.backend == "python":
        if "runtime" not in config.parameters:
            raise ValueError(f"{config.name}: a Python-backend classifier needs a `runtime` parameter")
        return config.parameters["runtime"].string_value
    if config.platform in RUNTIME_OF_PLATFORM:
        return RUNTIME_OF_PLATFORM[config.platform]
    if config.backend in RUNTIME_OF_BACKEND:
        return RUNTIME_OF_BACKEND[config.backend]
    raise ValueError(f"{config.name}: no artefact known for platform {config.platform!r} / backend {config.backend!r}")


def export_state_dict(module, path: Path) -> str:
    import torch
    torch.save(module.state_dict(), path)
    fresh = type(module)().eval()
    fresh.load_state_dict(torch.load(path, weights_only=True))  # every tensor named and shaped as the module's
    return "load_state_dict(strict)"


def export_torchscript_file(module, example, path: Path) -> str:
    import torch
    with torch.no_grad():  # (under inference_mode the trace's own check takes seconds longer here)
        torch.jit.save(torch.jit.trace(module, (example,)), str(path))
    torch.jit.load(str(path))
    return "torch.jit.load"


def export_onnx(module, example, path: Path, *, input_name: str = "X", output_name: str = "LOGITS") -> str:
    """torch.onnx.export with a dynamic batch dimension, then onnx.checker with full shape inference."""
    import onnx
    import torch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter announces the dynamo one
        torch.onnx.export(module, (example,), str(path), input_names=[input_name], output_names=[output_name],
                          dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}}, dynamo=False)
    onnx.checker.check_model(str(path), full_check=True)  # raises onnx.checker.ValidationError
    return f"onnx.checker (full_check), opset {onnx.load(str(path)).opset_import[0].version}"


def export_openvino(onnx_path: Path, xml_path: Path) -> str:
    """ONNX -> OpenVINO IR (model.xml + model.bin), read back with OpenVINO's reader."""
    import openvino
    openvino.save_model(openvino.convert_model(str(onnx_path)), str(xml_path), compress_to_fp16=False)
    model = openvino.Core().read_model(str(xml_path))
    shapes = ", ".join(f"{p.get_any_name()}{p.get_partial_shape()}" for p in [*model.inputs, *model.outputs])
    return f"openvino.Core().read_model ({shapes})"


def build_repository(module, sources: Iterable[str | Path], destination: str | Path, *,
                     example=None) -> BuiltRepository:
    """Copy every model folder of `sources` into `destination` and write each version folder's artefact
    (exported from `module`, once per runtime). Returns what was built and how each artefact was validated."""
    import torch
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    example = example if example is not None else torch.zeros(2, module.embed.in_features)
    built = BuiltRepository(destination)
    with tempfile.TemporaryDirectory(prefix="artefacts-") as exports:  # outside the repository: Triton would
        for source in sources:                                          # take any folder in it for a model
            for model_dir in sorted(p for p in Path(source).iterdir() if (p / "config.pbtxt").is_file()):
                config = parse_model_config((model_dir / "config.pbtxt").read_text())
                runtime = runtime_of_config(config)
                if runtime not in built.artefacts:
                    built.artefacts[runtime] = _export(runtime, module, example, Path(exports), built)
                target = destination / model_dir.name
                shutil.copytree(model_dir, target, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
                (target / "1").mkdir(exist_ok=True)
                for file in built.artefacts[runtime].files:
                    shutil.copyfile(file, target / "1" / file.name)
                built.models[model_dir.name] = runtime
        for runtime, artefact in built.artefacts.items():  # point at the copies, which outlive the exports
            model = next((m for m, r in built.models.items() if r == runtime), None)
            if model is not None:
                artefact.files = [destination / model / "1" / f.name for f in artefact.files]
    built.artefacts = {r: a for r, a in built.artefacts.items() if r in built.models.values()}
    return built


def _export(runtime: str, module, example, folder: Path, built: BuiltRepository) -> Artefact:
    began = time.perf_counter()
    files = [folder / name for name in FILES[runtime]]
    if runtime == "torch_eager":
        how = export_state_dict(module, files[0])
    elif runtime == "torchscript":
        how = export_torchscript_file(module, example, files[0])
    elif runtime == "onnxruntime":
        how = export_onnx(module, example, files[0])
    elif runtime == "openvino":
        if "onnxruntime" not in built.artefacts:
            built.artefacts["onnxruntime"] = _export("onnxruntime", module, example, folder, built)
        how = export_openvino(built.artefacts["onnxruntime"].files[0], files[0])
    else:
        raise ValueError(f"unknown runtime {runtime!r}")
    return Artefact(runtime, files, time.perf_counter() - began, how)


def agreement(reference: np.ndarray, outputs: Mapping[str, np.ndarray]) -> list[dict]:
    """One row per runtime: the largest |logit - reference logit| and the share of rows with the same arg-max."""
    reference = np.asarray(reference)
    decisions = reference.argmax(axis=1)
    rows = []
    for name, logits in outputs.items():
        logits = np.asarray(logits)
        if logits.shape != reference.shape:
            raise ValueError(f"{name}: shape {logits.shape} differs from the reference {reference.shape}")
        same = logits.argmax(axis=1) == decisions
        rows.append({"runtime": name, "max_abs_diff": float(np.abs(logits - reference).max()),
                     "same_decisions": float(same.mean()), "differing_rows": int((~same).sum())})
    return rows


def decision_margin(logits: np.ndarray) -> np.ndarray:
    """Per row: the top logit minus the runner-up (how far a row is from changing its decision)."""
    top2 = np.sort(np.asarray(logits), axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]
