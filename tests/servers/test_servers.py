"""Real Triton / Prometheus / vLLM starts, and how their failures are reported."""
import json
import time
from pathlib import Path

import psutil
import pytest

from llmserve.course.config import REPO_ROOT
from llmserve.servers import (
    PrometheusServer,
    ServerStartError,
    TritonServer,
    VLLMServer,
    free_port,
)

REPO = REPO_ROOT
TRITON_FIXTURE = Path(__file__).parent / "fixtures" / "triton_repo"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.server
def test_real_triton_serves_the_fixture_model_over_http_and_grpc():
    import numpy as np
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient
    with TritonServer(TRITON_FIXTURE) as server:
        data = np.arange(8, dtype=np.float32).reshape(2, 4)
        http_input = httpclient.InferInput("INPUT0", [2, 4], "FP32")
        http_input.set_data_from_numpy(data)
        result = server.http_client().infer("add_one", [http_input]).as_numpy("OUTPUT0")
        np.testing.assert_array_equal(result, data + 1)
        grpc_input = grpcclient.InferInput("INPUT0", [2, 4], "FP32")
        grpc_input.set_data_from_numpy(data)
        result = server.grpc_client().infer("add_one", [grpc_input]).as_numpy("OUTPUT0")
        np.testing.assert_array_equal(result, data + 1)
        assert 'nv_inference_request_success{model="add_one",version="1"} 2' in server.metrics_text()
        pid = server.process.pid
    assert not _alive(pid)


@pytest.mark.server
def test_triton_with_a_broken_model_reports_the_server_error(tmp_path):
    broken = tmp_path / "repo" / "broken" / "1"
    broken.mkdir(parents=True)
    (broken.parent / "config.pbtxt").write_text('backend: "python"\nmax_batch_size: 0\n'
                                                'input [ { name: "X" data_type: TYPE_FP32 dims: [ 1 ] } ]\n'
                                                'output [ { name: "Y" data_type: TYPE_FP32 dims: [ 1 ] } ]\n')
    (broken / "model.py").write_text("raise ImportError('deliberately broken model')\n")
    with pytest.raises(ServerStartError) as error:
        TritonServer(tmp_path / "repo").start()
    assert "deliberately broken model" in str(error.value)


@pytest.mark.server
def test_real_prometheus_scrapes_itself():
    config = "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n" \
             "      - targets: ['127.0.0.1:{port}']\n"
    port = free_port()
    with PrometheusServer(config.format(port=port), port=port) as prom:
        deadline = time.monotonic() + 20
        result = []
        while not result and time.monotonic() < deadline:
            result = prom.query('up{job="self"}')
            time.sleep(0.5)  # wait for the first scrape
        assert result and result[0]["value"][1] == "1"
        scraped_at = float(result[0]["value"][0])
        assert prom.query('up{job="self"}', at=scraped_at)[0]["value"][0] == scraped_at
        assert prom.query('up{job="self"}', at=scraped_at - 3600) == []  # before Prometheus started: no sample
        assert prom.value('up{job="self"}') == 1.0 and prom.value('up{job="nobody"}') is None
        assert prom.wait_for_value('up{job="self"}', 1.0, timeout_s=5) == 1.0
        with pytest.raises(TimeoutError, match="expected 2"):
            prom.wait_for_value('up{job="self"}', 2.0, timeout_s=1)


@pytest.mark.server
def test_vllm_server_on_a_broken_model_fails_with_its_log(tmp_path):
    folder = tmp_path / "broken-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architectures": ["NoSuchArchitecture"],
                                                     "model_type": "no-such-type"}))
    with pytest.raises(ServerStartError) as error:
        VLLMServer(model=folder, start_timeout=240).start()
    message = str(error.value)
    assert "exited with code" in message and "Last lines of its log" in message


@pytest.mark.server
def test_vllm_server_runs_one_engine_process_on_cpu_and_leaves_nothing():
    with VLLMServer(max_model_len=512, start_timeout=300) as server:
        names = [p.name() for p in psutil.Process(server.process.pid).children(recursive=True)]
        members = [server.process.pid, *(p.pid for p in psutil.Process(server.process.pid).children(recursive=True))]
        reply = server.openai_client().chat.completions.create(
            model=server.served_model_name, max_tokens=12, temperature=0,
            messages=[{"role": "user", "content": "What is the capital of France?"}])
    assert server.single_engine_process
    assert "VLLM::EngineCore" in names and "VLLM::Worker" not in names, names
    assert "Paris" in reply.choices[0].message.content
    assert not [pid for pid in members if _alive(pid)], "vLLM processes outlived the with block"
