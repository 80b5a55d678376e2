"""The TorchScript artefact for Triton's libtorch backend (`platform: "pytorch_libtorch"`).

`export_torchscript` traces the PyTorch module of a Python-backend model into the `model.pt` +
`config.pbtxt` pair a full Triton install serves, and checks it matches eager PyTorch.
"""
from __future__ import annotations

import importlib.util
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
    `platform: "pytorch_libtorch"` and the libtorch tensor names INPUT__0 / OUTPUT__0.
    """
    import torch

    config_template = Path(config_template)
    config = parse_model_config(config_template.read_text())
    model_name = model_name or config.name or config_template.parent.name
    if config.platform != "pytorch_libtorch" and config.backend != "pytorch":
        raise ValueError(f"{config_template}: not a libtorch configuration (platform {config.platform!r})")
    names = [t.name for t in config.input] + [t.name for t in config.output]
    if not all(n.startswith(("INPUT__", "OUTPUT__")) for n in names):
        raise ValueError(f"{config_template}: libtorch tensors are named INPUT__<i> / OUTPUT__<i>, got {names}")

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
