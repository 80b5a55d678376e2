"""Tools for Triton labs: TorchScript export for libtorch, config validation, Prometheus
scrape configs, and Triton's request-trace files.

- `export_torchscript`: trace a PyTorch module of a Python-backend model into the
  `model.pt` + `config.pbtxt` pair the libtorch backend (`platform: "pytorch_libtorch"`)
  serves on a full Triton install, and check that the artefact matches eager PyTorch.
- `parse_model_config`: read a `config.pbtxt` with Triton's own protobuf schema
  (`tritonclient.grpc.model_config_pb2`): a typo or a wrong enum value raises.
- `prometheus_config`: fill a scrape-config template with the ports of a running server.
- `read_trace_file` / `trace_stages`: Triton's trace file (`--trace-config mode=triton`)
  merged into one record per request, and the time spent between its stages.
"""
from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

# -- config.pbtxt -------------------------------------------------------------------------


def parse_model_config(text: str):
    """`config.pbtxt` text -> `inference.ModelConfig` message; raises ParseError when invalid."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    return text_format.Parse(text, model_config_pb2.ModelConfig())


def config_summary(message) -> dict:
    """The fields a lab discusses, from a parsed ModelConfig (data types as names, e.g. TYPE_FP32)."""
    from tritonclient.grpc import model_config_pb2

    dtype = model_config_pb2.DataType.Name
    return {
        "name": message.name,
        "platform": message.platform,
        "backend": message.backend,
        "max_batch_size": message.max_batch_size,
        "input": [(t.name, dtype(t.data_type), list(t.dims)) for t in message.input],
        "output": [(t.name, dtype(t.data_type), list(t.dims)) for t in message.output],
        "dynamic_batching": message.HasField("dynamic_batching"),
    }


# -- TorchScript artefact for the libtorch backend -----------------------------------------


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


# -- Prometheus ------------------------------------------------------------------------------


def prometheus_config(template: str | Path, **values: object) -> str:
    """A Prometheus config from a template with `${name}` placeholders (e.g. ${metrics_target}).

    Every placeholder must be given and every value used: a forgotten one raises KeyError
    instead of leaving a config Prometheus would reject (or silently scrape nothing with).
    """
    import re
    from string import Template

    text = Path(template).read_text() if isinstance(template, Path) else str(template)
    placeholders = set(re.findall(r"\$\{(\w+)\}", text))
    missing, unused = placeholders - set(values), set(values) - placeholders
    if missing or unused:
        raise KeyError(f"template placeholders {sorted(placeholders)}; missing {sorted(missing)}, "
                       f"unused {sorted(unused)}")
    return Template(text).substitute({k: str(v) for k, v in values.items()})


def check_prometheus_config(text: str) -> str:
    """Validate a Prometheus config with the real `promtool check config`; return its output."""
    import subprocess
    import tempfile

    promtool = shutil.which("promtool")
    if promtool is None:
        raise FileNotFoundError("promtool is not installed: run `make setup-system`")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "prometheus.yml"
        path.write_text(text)
        result = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True)
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise ValueError(f"promtool rejected the config:\n{output}")
    return output


# -- Request traces --------------------------------------------------------------------------


@dataclass
class Trace:
    """One traced request: its model and the nanosecond timestamps of its stages."""
    id: int
    model_name: str | None = None
    model_version: int | None = None
    parent_id: int | None = None
    timestamps: dict[str, int] = field(default_factory=dict)

    def duration_us(self, start: str, end: str) -> float:
        return (self.timestamps[end] - self.timestamps[start]) / 1000


def read_trace_file(path: str | Path | Sequence[str | Path]) -> list[Trace]:
    """Merge the entries of Triton trace file(s) (`mode=triton`) into one Trace per id.

    The server writes one JSON array per file; entries for one request are scattered
    (`{"id": 1, "model_name": ...}`, `{"id": 1, "timestamps": [{"name": ..., "ns": ...}]}`).
    """
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    traces: dict[int, Trace] = {}
    for one in paths:
        for entry in json.loads(Path(one).read_text()):
            trace = traces.setdefault(entry["id"], Trace(id=entry["id"]))
            for key in ("model_name", "model_version", "parent_id"):
                if key in entry:
                    setattr(trace, key, entry[key])
            for stamp in entry.get("timestamps", []):
                trace.timestamps[stamp["name"]] = int(stamp["ns"])
    return [traces[k] for k in sorted(traces)]


# The stages of one request, in order, as (label, from timestamp, to timestamp).
TRACE_STAGES = (
    ("receive request", "HTTP_RECV_START", "HTTP_RECV_END"),
    ("frontend -> scheduler", "HTTP_RECV_END", "REQUEST_START"),
    ("queue", "QUEUE_START", "COMPUTE_START"),
    ("compute input", "COMPUTE_START", "COMPUTE_INPUT_END"),
    ("compute infer", "COMPUTE_INPUT_END", "COMPUTE_OUTPUT_START"),
    ("compute output", "COMPUTE_OUTPUT_START", "COMPUTE_END"),
    ("send response", "HTTP_SEND_START", "HTTP_SEND_END"),
)


def trace_stages(trace: Trace) -> dict[str, float]:
    """Microseconds per stage of one request (the stages whose two timestamps it has; gRPC
    traces have GRPC_* instead of HTTP_* stamps and are mapped the same way)."""
    stamps = {name.replace("GRPC_", "HTTP_"): ns for name, ns in trace.timestamps.items()}
    return {label: (stamps[end] - stamps[start]) / 1000
            for label, start, end in TRACE_STAGES if start in stamps and end in stamps}
