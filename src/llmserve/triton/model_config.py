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
