"""Reading a Triton `config.pbtxt` with Triton's own protobuf schema: a typo or a wrong enum raises."""
from __future__ import annotations


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


# -- lint: what Triton would refuse at load time, found before a server starts ------------------------------


def lint_model_config(message, model_dir=None) -> list[str]:
    """Problems of one parsed ModelConfig that make Triton refuse the model (or break clients), in words.

    Checks the rules Triton's loader applies (dims are >= 1 or -1, a data type on every tensor, unique tensor
    names, `max_batch_size` >= 0 and > 0 for a batcher, preferred batch sizes within it, reshape sizes), and,
    with `model_dir`, the files: the folder is named like the model, it has numbered version folders, the
    versions a `specific` policy names exist, and a Python-backend version has its `model.py`.
    """
    from pathlib import Path

    from tritonclient.grpc import model_config_pb2

    problems = []
    name = message.name or (Path(model_dir).name if model_dir else "")
    batching = message.max_batch_size > 0
    if message.max_batch_size < 0:
        problems.append(f"max_batch_size {message.max_batch_size}: must be 0 (no batching) or a positive size")
    if not message.backend and not message.platform:
        problems.append("neither `backend` nor `platform` is set: Triton cannot tell which backend runs it")
    for kind, tensors in (("input", message.input), ("output", message.output)):
        if not tensors and kind == "output" and not _completes_itself(message, model_dir):
            problems.append("no output declared (and no auto_complete_config in model.py to declare one)")
        seen = set()
        for tensor in tensors:
            where = f"{kind} {tensor.name or '(unnamed)'}"
            if not tensor.name:
                problems.append(f"{kind} without a name")
            elif tensor.name in seen:
                problems.append(f"{where}: declared twice")
            seen.add(tensor.name)
            if tensor.data_type == model_config_pb2.TYPE_INVALID:
                problems.append(f"{where}: no data_type")
            if not tensor.dims and not (batching and tensor.HasField("reshape")):
                problems.append(f"{where}: no dims (a scalar per request is dims: [ 1 ])")
            bad = [d for d in tensor.dims if d == 0 or d < -1]
            if bad:
                problems.append(f"{where}: dims {list(tensor.dims)}: each dimension must be >= 1, or -1 for a "
                                "variable size")
            if tensor.HasField("reshape") and -1 not in tensor.dims and -1 not in tensor.reshape.shape:
                elements = _product(tensor.dims)
                reshaped = _product(tensor.reshape.shape)
                if elements != reshaped:
                    problems.append(f"{where}: reshape {list(tensor.reshape.shape)} holds {reshaped} elements, "
                                    f"dims {list(tensor.dims)} hold {elements}")
    if message.HasField("dynamic_batching"):
        if not batching:
            problems.append("dynamic_batching needs max_batch_size > 0")
        too_big = [b for b in message.dynamic_batching.preferred_batch_size if b > message.max_batch_size]
        if batching and too_big:
            problems.append(f"preferred_batch_size {too_big} > max_batch_size {message.max_batch_size}")
    if model_dir is not None:
        problems += _lint_model_files(message, Path(model_dir), name)
    return problems


def _completes_itself(message, model_dir) -> bool:
    """A Python model may declare its tensors in `auto_complete_config`; Triton asks it at load time."""
    from pathlib import Path

    if message.backend != "python" or model_dir is None:
        return False
    return any("def auto_complete_config" in path.read_text() for path in Path(model_dir).glob("*/model.py"))


def _product(dims) -> int:
    result = 1
    for d in dims:
        result *= d
    return result


def _lint_model_files(message, model_dir, name: str) -> list[str]:
    problems = []
    if message.name and message.name != model_dir.name:
        problems.append(f"name {message.name!r} differs from its folder {model_dir.name!r}: Triton refuses it")
    versions = sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())
    if not versions:
        problems.append("no version folder (1/, 2/, ...)")
    if message.version_policy.HasField("specific"):
        missing = [v for v in message.version_policy.specific.versions if v not in versions]
        if missing:
            problems.append(f"version_policy names versions {missing}, which have no folder")
    if message.backend == "python":
        filename = message.default_model_filename or "model.py"
        lacking = [v for v in versions if not (model_dir / str(v) / filename).is_file()]
        if lacking:
            problems.append(f"python backend: versions {lacking} have no {filename}")
    return problems


def lint_repository(repository) -> dict[str, list[str]]:
    """Every model folder of a repository -> its problems ([] when clean). A config that does not parse is
    one problem carrying the parser's message (line and column)."""
    from pathlib import Path

    results = {}
    for model_dir in sorted(p for p in Path(repository).iterdir() if p.is_dir()):
        config_path = model_dir / "config.pbtxt"
        if not config_path.is_file():
            results[model_dir.name] = ["no config.pbtxt"]
            continue
        try:
            message = parse_model_config(config_path.read_text())
        except Exception as error:  # google.protobuf.text_format.ParseError
            results[model_dir.name] = [f"config.pbtxt does not parse: {error}"]
            continue
        results[model_dir.name] = lint_model_config(message, model_dir)
    return results
