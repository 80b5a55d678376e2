"""The command lines and settings of Triton Lab 2.3 · 03's servers (no process is started): the façade under
uvicorn with its FACADE_* settings, and MLServer from .venv-kserve (or COURSE_MLSERVER_BIN) on free ports."""
import pytest

from llmserve.servers import FacadeServer, MLServerServer, ServerStartError, mlserver_binary, mlserver_status
from llmserve.servers.facade import FACADE_DIR, MLSERVER_MODELS


def test_facade_runs_the_lab_app_with_its_settings_as_environment():
    facade = FacadeServer(triton_url="127.0.0.1:8000", vllm_url="http://127.0.0.1:8001", settings={"timeout_s": 30})
    command = " ".join(facade.command)
    assert "-m uvicorn facade.app:create_app" in command and "--factory" in command
    assert f"--app-dir {FACADE_DIR}" in command and facade.health_url.endswith("/ready")
    assert facade.env["FACADE_TRITON_URL"] == "127.0.0.1:8000" and facade.env["FACADE_VLLM_URL"] == "http://127.0.0.1:8001"
    assert facade.env["FACADE_TIMEOUT_S"] == "30"
    assert facade.model_ids() == ["triton/course_chat", "vllm/course-llm"]
    assert FacadeServer(vllm_url="http://x:1", vllm_model="m").model_ids() == ["vllm/m"]


def test_the_facade_settings_read_the_same_environment():
    import sys
    sys.path.insert(0, str(FACADE_DIR))
    try:
        from facade.settings import Settings
        facade = FacadeServer(triton_url="127.0.0.1:8000", settings={"max_tokens_limit": 64})
        settings = Settings.from_env({k: v for k, v in facade.env.items() if k.startswith("FACADE_")})
    finally:
        sys.path.remove(str(FACADE_DIR))
    assert settings.triton_url == "127.0.0.1:8000" and settings.vllm_url == "" and settings.max_tokens_limit == 64


def test_mlserver_missing_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_MLSERVER_BIN", str(tmp_path / "nowhere" / "mlserver"))
    with pytest.raises(ServerStartError, match="make setup"):
        mlserver_binary()
    found, why = mlserver_status()
    assert not found and "mlserver==" in why


def test_mlserver_command_ports_and_models(monkeypatch, tmp_path):
    fake = tmp_path / "mlserver"
    fake.write_text("#!/bin/sh\n")
    monkeypatch.setenv("COURSE_MLSERVER_BIN", str(fake))
    server = MLServerServer(http_port=18080)
    try:
        assert server.command == [str(fake), "start", str(MLSERVER_MODELS)]
        assert server.env["MLSERVER_HTTP_PORT"] == "18080" and server.env["MLSERVER_HOST"] == "127.0.0.1"
        assert len({server.http_port, server.grpc_port, server.metrics_port}) == 3
        assert server.health_url == "http://127.0.0.1:18080/v2/health/ready"
        assert (MLSERVER_MODELS / "affine" / "model-settings.json").exists()
    finally:
        server.stop()  # never started: removes its working folder
