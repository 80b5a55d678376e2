"""Four runtimes for the same classifier, each loaded from its own artefact, all with NumPy in and out.

    runner = load_runtime("onnxruntime", version_dir, intra_op_threads=1)
    logits = runner(x)          # x: fp32 [batch, 16] -> fp32 [batch, 4]

| runtime       | artefact in the version folder | what runs it                                   |
|---------------|--------------------------------|------------------------------------------------|
| `torch_eager` | `weights.pt` (a state dict)    | PyTorch, the module's Python `forward`         |
| `torchscript` | `model.pt`                     | `torch.jit.load`: the TorchScript interpreter  |
| `onnxruntime` | `model.onnx`                   | ONNX Runtime's CPU execution provider          |
| `openvino`    | `model.xml` + `model.bin`      | OpenVINO's CPU plugin, f32 precision asked for |

`intra_op_threads` sizes the runtime's thread pool for one operator (torch.set_num_threads, ORT's
intra_op_num_threads, OpenVINO's INFERENCE_NUM_THREADS); inter-op parallelism is off (one operator at a
time), so one stub uses at most that many cores. Each import happens inside its loader, so a stub that
serves ONNX Runtime never imports torch (a difference you can see in its memory).

Used by the Python-backend models of Triton Lab 2.3 (`triton_course_models.backend_model`) and by the
notebook that compares them. onnxruntime and openvino come from 00-Course_Setup/requirements-triton-env.txt.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

RUNTIMES = ("torch_eager", "torchscript", "onnxruntime", "openvino")
ARTEFACTS = {"torch_eager": "weights.pt", "torchscript": "model.pt", "onnxruntime": "model.onnx",
             "openvino": "model.xml"}


def _torch_eager(version_dir: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    import torch

    from triton_course_models.classifier import BlockClassifier
    torch.set_num_threads(threads)
    module = BlockClassifier().eval()
    module.load_state_dict(torch.load(version_dir / ARTEFACTS["torch_eager"], weights_only=True))

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(x)).numpy()
    return run


def _torchscript(version_dir: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    import torch
    torch.set_num_threads(threads)
    module = torch.jit.load(str(version_dir / ARTEFACTS["torchscript"])).eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(x)).numpy()
    return run


def _onnxruntime(version_dir: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    session = onnxruntime.InferenceSession(str(version_dir / ARTEFACTS["onnxruntime"]), options,
                                           providers=["CPUExecutionProvider"])
    input_name, output_name = session.get_inputs()[0].name, session.get_outputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return session.run([output_name], {input_name: x})[0]
    return run


def _openvino(version_dir: Path, threads: int, precision: str | None = "f32") -> Callable[[np.ndarray], np.ndarray]:
    """precision: OpenVINO's INFERENCE_PRECISION_HINT; None keeps the CPU plugin's default (bf16 on a CPU with
    bf16 instructions, f32 elsewhere). The served models ask for f32, so that they match the other runtimes."""
    import openvino
    core = openvino.Core()
    properties = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1}
    if precision is not None:
        properties["INFERENCE_PRECISION_HINT"] = precision
    compiled = core.compile_model(core.read_model(str(version_dir / ARTEFACTS["openvino"])), "CPU", properties)
    request = compiled.create_infer_request()

    def run(x: np.ndarray) -> np.ndarray:
        return np.array(request.infer({0: x})[0], copy=True)  # the request reuses its output buffer
    return run


LOADERS = {"torch_eager": _torch_eager, "torchscript": _torchscript, "onnxruntime": _onnxruntime,
           "openvino": _openvino}


def load_runtime(runtime: str, version_dir: str | Path, intra_op_threads: int = 1, **options
                 ) -> Callable[[np.ndarray], np.ndarray]:
    """A function fp32 [batch, 16] -> fp32 [batch, 4] that runs the artefact of `runtime` in `version_dir`."""
    if runtime not in LOADERS:
        raise ValueError(f"unknown runtime {runtime!r}: one of {', '.join(RUNTIMES)}")
    if intra_op_threads < 1:
        raise ValueError("intra_op_threads must be at least 1")
    version_dir = Path(version_dir)
    artefact = version_dir / ARTEFACTS[runtime]
    if not artefact.is_file():
        raise FileNotFoundError(f"{artefact} is missing: build the repository with "
                                "llmserve.triton.backends.build_repository first")
    return LOADERS[runtime](version_dir, intra_op_threads, **options)
