"""Unit tests of llmserve.triton and llmserve.ops.prometheus (no server needed)."""
import json
import shutil

import pytest
from google.protobuf.text_format import ParseError

from llmserve.ops.prometheus import check_prometheus_config, prometheus_config
from llmserve.triton.model_config import config_summary, parse_model_config
from llmserve.triton.torchscript import export_torchscript
from llmserve.triton.tracing import Trace, read_trace_file, trace_stages

LIBTORCH = """name: "tiny"
platform: "pytorch_libtorch"
max_batch_size: 4
input [ { name: "INPUT__0", data_type: TYPE_FP32, dims: [ 3 ] } ]
output [ { name: "OUTPUT__0", data_type: TYPE_FP32, dims: [ 2 ] } ]
"""


def test_parse_model_config_reads_fields_and_rejects_typos():
    summary = config_summary(parse_model_config(LIBTORCH))
    assert summary == {"name": "tiny", "platform": "pytorch_libtorch", "backend": "", "max_batch_size": 4,
                       "input": [("INPUT__0", "TYPE_FP32", [3])], "output": [("OUTPUT__0", "TYPE_FP32", [2])],
                       "dynamic_batching": False}
    with pytest.raises(ParseError):
        parse_model_config(LIBTORCH.replace("TYPE_FP32", "TYPE_FLOAT32"))
    with pytest.raises(ParseError):
        parse_model_config(LIBTORCH + "max_batch_sizes: 3\n")


def _tiny_module():
    import torch
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))


def test_export_torchscript_writes_a_libtorch_model_folder(tmp_path):
    import torch
    template = tmp_path / "config.pbtxt"
    template.write_text(LIBTORCH)
    export = export_torchscript(_tiny_module(), [torch.ones(1, 3)], template, tmp_path / "repo",
                                check_inputs=[torch.randn(4, 3)])
    assert export.model_file == tmp_path / "repo" / "tiny" / "1" / "model.pt"
    assert export.config_file.read_text() == LIBTORCH
    assert export.max_abs_diff <= 1e-6 and export.checked_shapes == [(1, 3), (4, 3)]


def test_export_torchscript_refuses_configs_libtorch_cannot_serve(tmp_path):
    import torch
    template = tmp_path / "config.pbtxt"
    template.write_text(LIBTORCH.replace('platform: "pytorch_libtorch"', 'backend: "python"'))
    with pytest.raises(ValueError, match="not a libtorch configuration"):
        export_torchscript(_tiny_module(), [torch.ones(1, 3)], template, tmp_path / "repo")
    for wrong in ("X", "INPUT__1", "INPUT_0"):  # no index, the wrong position, one underscore
        template.write_text(LIBTORCH.replace("INPUT__0", wrong))
        with pytest.raises(ValueError, match=r"input by its position, <name>__<index>"):
            export_torchscript(_tiny_module(), [torch.ones(1, 3)], template, tmp_path / "repo")


def test_libtorch_names_follow_name_index(tmp_path):
    import torch

    from llmserve.triton.torchscript import libtorch_position
    assert [libtorch_position(n) for n in ("INPUT__0", "ids__1", "OUTPUT__12", "a__b__2")] == [0, 1, 12, 2]
    assert [libtorch_position(n) for n in ("X", "INPUT_0", "__0", "INPUT__x")] == [None] * 4
    template = tmp_path / "config.pbtxt"  # any <name> is valid, not only INPUT / OUTPUT
    template.write_text(LIBTORCH.replace("INPUT__0", "features__0").replace("OUTPUT__0", "logits__0"))
    export = export_torchscript(_tiny_module(), [torch.ones(1, 3)], template, tmp_path / "repo")
    assert export.max_abs_diff <= 1e-6


def test_export_torchscript_detects_a_mismatch(tmp_path):
    import torch

    class DataDependent(torch.nn.Module):  # tracing records only the branch the example input takes
        def forward(self, x):
            if x.sum() > 0:
                return x[:, :2]
            return -x[:, :2]

    template = tmp_path / "config.pbtxt"
    template.write_text(LIBTORCH)
    with pytest.raises(AssertionError, match="differs from eager"):
        export_torchscript(DataDependent(), [torch.ones(1, 3)], template, tmp_path / "repo",
                           check_inputs=[-torch.ones(2, 3)])


def test_prometheus_config_fills_every_placeholder():
    template = "targets: ['${triton_metrics}']\n"
    assert prometheus_config(template, triton_metrics="127.0.0.1:9") == "targets: ['127.0.0.1:9']\n"
    with pytest.raises(KeyError, match="missing"):
        prometheus_config(template)
    with pytest.raises(KeyError, match="unused"):
        prometheus_config(template, triton_metrics="a:1", other="b")


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (make setup-system)")
def test_check_prometheus_config_uses_promtool():
    good = "scrape_configs:\n  - job_name: t\n    static_configs:\n      - targets: ['127.0.0.1:1']\n"
    assert "SUCCESS" in check_prometheus_config(good)
    with pytest.raises(ValueError, match="promtool rejected"):
        check_prometheus_config(good.replace("job_name", "job_nam"))


def test_read_trace_file_merges_entries_per_request(tmp_path):
    entries = [
        {"id": 1, "timestamps": [{"name": "HTTP_RECV_START", "ns": 1000}]},
        {"id": 1, "timestamps": [{"name": "HTTP_RECV_END", "ns": 3000}]},
        {"id": 1, "model_name": "m", "model_version": 1},
        {"id": 2, "model_name": "m", "model_version": 1},
        {"id": 1, "timestamps": [{"name": "REQUEST_START", "ns": 4000}, {"name": "QUEUE_START", "ns": 5000}]},
        {"id": 1, "timestamps": [{"name": "COMPUTE_START", "ns": 9000}]},
    ]
    (tmp_path / "trace.json.0").write_text(json.dumps(entries))
    (tmp_path / "trace.json.1").write_text(json.dumps([{"id": 3, "model_name": "n", "parent_id": 1}]))
    traces = read_trace_file(sorted(tmp_path.glob("trace.json.*")))
    assert [t.id for t in traces] == [1, 2, 3]
    first = traces[0]
    assert first.model_name == "m" and first.model_version == 1
    assert first.timestamps == {"HTTP_RECV_START": 1000, "HTTP_RECV_END": 3000, "REQUEST_START": 4000,
                                "QUEUE_START": 5000, "COMPUTE_START": 9000}
    assert first.duration_us("HTTP_RECV_START", "COMPUTE_START") == 8.0
    assert trace_stages(first) == {"receive request": 2.0, "frontend -> scheduler": 1.0, "queue": 4.0}
    assert traces[2].parent_id == 1


def test_trace_stages_maps_grpc_send_stamps():
    trace = Trace(id=1, timestamps={"GRPC_SEND_START": 10_000, "GRPC_SEND_END": 15_000})
    assert trace_stages(trace) == {"send response": 5.0}


def test_read_until_polls_until_the_statistics_catch_up_and_returns_the_last_reading():
    from llmserve.triton.statistics import read_until

    readings = iter([{"inference_count": 8}, {"inference_count": 9}, {"inference_count": 10}, {"inference_count": 10}])
    calls = []

    def read():
        calls.append(1)
        return next(readings)

    assert read_until(read, lambda s: s["inference_count"] >= 10, interval_s=0) == {"inference_count": 10}
    assert len(calls) == 3
    never = read_until(lambda: {"inference_count": 3}, lambda s: s["inference_count"] >= 10, timeout_s=0.05)
    assert never == {"inference_count": 3}
