"""The TorchScript artefact for Triton's libtorch backend (`platform: "pytorch_libtorch"`).

`export_torchscript` traces the PyTorch module of a Python-backend model into the `model.pt` +
`config.pbtxt` pair a full Triton install serves, and checks it matches eager PyTorch.
"""
from __future__ import annotations

import importlib.util
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from llmserve.triton.model_config import parse_model_config


def load_module_file(path: str | Path, name: str | None = None) -> ModuleType:
    """Import a Python file by path (a model folder's plain-torch module, no Triton imports)."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(name or f"_lab_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def libtorch_position(name: str) -> int | None:
    """The position a libtorch tensor name gives, by the `<name>__<index>` convention (any <name>,
    e.g. INPUT__0, ids__1, OUTPUT__0), or None for a name without one."""
    match = re.fullmatch(r".+__(\d+)", name)
    return int(match.group(1)) if match else None


@dataclass
class TorchScriptExport:
    """Where the libtorch repository was written and how the artefact compares with eager."""
    repository: Path
    model_file: Path
    config_file: Path
    max_abs_diff: float
    checked_shapes: list[tuple[int, ...]] = field(default_factory=list)

    @property
    def size_mib(self) -> float:
        return self.model_file.stat().st_size / 2**20


def export_torchscript(module, example_inputs: Sequence, config_template: str | Path, out_repository: str | Path,
                       *, model_name: str | None = None, check_inputs: Sequence = (), atol: float = 1e-6
                       ) -> TorchScriptExport:
    """Trace `module` into `<out_repository>/<model_name>/1/model.pt` next to a copy of `config_template`.

    The artefact is loaded back with `torch.jit.load` and run on `example_inputs` and each of
    `check_inputs` (each a tensor); every output must match the eager module within `atol`,
    else AssertionError. The config is parsed with Triton's protobuf schema and must name
    `platform: "pytorch_libtorch"` and each tensor by its position (`<name>__<index>`, e.g. INPUT__0).
    """
    import torch

    config_template = Path(config_template)
    config = parse_model_config(config_template.read_text())
    model_name = model_name or config.name or config_template.parent.name
    if config.platform != "pytorch_libtorch" and config.backend != "pytorch":
        raise ValueError(f"{config_template}: not a libtorch configuration (platform {config.platform!r})")
    for kind, tensors in (("input", config.input), ("output", config.output)):
        names = [t.name for t in tensors]
        if not all(libtorch_position(name) == i for i, name in enumerate(names)):
            raise ValueError(f"{config_template}: libtorch names each {kind} by its position, <name>__<index> "
                             f"(e.g. INPUT__0, INPUT__1), got {names}")

    model_dir = Path(out_repository) / model_name
    (model_dir / "1").mkdir(parents=True, exist_ok=True)
    module = module.eval()
    with torch.inference_mode():
        traced = torch.jit.trace(module, tuple(example_inputs))
    model_file = model_dir / "1" / "model.pt"
    torch.jit.save(traced, str(model_file))
    config_file = model_dir / "config.pbtxt"
    shutil.copyfile(config_template, config_file)

    loaded = torch.jit.load(str(model_file)).eval()
    worst, shapes = 0.0, []
    with torch.inference_mode():
        for inputs in [tuple(example_inputs), *((x,) for x in check_inputs)]:
            eager, scripted = module(*inputs), loaded(*inputs)
            if eager.shape != scripted.shape:
                raise AssertionError(f"shape differs: eager {tuple(eager.shape)} vs TorchScript {tuple(scripted.shape)}")
            diff = float((eager - scripted).abs().max()) if eager.numel() else 0.0
            worst = max(worst, diff)
            shapes.append(tuple(inputs[0].shape))
    if worst > atol:
        raise AssertionError(f"TorchScript output differs from eager by {worst:g} (> atol {atol:g})")
    return TorchScriptExport(Path(out_repository), model_file, config_file, worst, shapes)
