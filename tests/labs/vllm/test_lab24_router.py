"""vLLM Lab 2.4 · 01's deploy files and its router: the nginx template renders and passes `nginx -t`, and
vllm-router, started by the course package in front of a tiny stand-in upstream, routes, refuses a malformed
request itself, and follows its upstream's health."""
import http.server
import json
import threading
import time

import pytest
import requests

from llmserve.course.config import REPO_ROOT
from llmserve.servers import VLLMRouterServer, find_server_processes
from llmserve.servers import nginx as nginx_module
from llmserve.servers.nginx import NginxConfigError, placeholders, render_template

LAB = REPO_ROOT / "02-Labs" / "vLLM_Track" / "Lab-2.4-Production_Deployment"
NGINX_TEMPLATE = LAB / "deploy" / "nginx" / "replicas.conf.template"
VALUES = {"replica_a": "127.0.0.1:18001", "replica_b": "127.0.0.1:18002", "port": 18080,
          "fail_timeout_s": 5, "read_timeout_s": 60}


def rendered_nginx(tmp_path, **overrides) -> str:
    return render_template(NGINX_TEMPLATE.read_text(), {**VALUES, "prefix": tmp_path, **overrides})


def test_nginx_template_placeholders_are_the_ones_the_notebook_fills():
    assert placeholders(NGINX_TEMPLATE.read_text()) == {*VALUES, "prefix"}


def test_nginx_config_passes_nginx_t(tmp_path):
    config = tmp_path / "nginx.conf"
    config.write_text(rendered_nginx(tmp_path))
    nginx_module.test_config(config, tmp_path)


def test_nginx_config_is_least_conn_with_one_retry_on_the_other_replica(tmp_path):
    text = rendered_nginx(tmp_path)
    upstream = text[text.index("upstream vllm_replicas"):text.index("server {")]
    assert "least_conn;" in upstream
    assert "server 127.0.0.1:18001 max_fails=1 fail_timeout=5s;" in upstream
    assert "server 127.0.0.1:18002 max_fails=1 fail_timeout=5s;" in upstream
    assert "proxy_next_upstream error timeout http_502 http_503;" in text
    assert "non_idempotent" not in text.split("proxy_next_upstream error")[1].split(";")[0]  # POSTs are not replayed
    assert "proxy_next_upstream_tries 2;" in text
    assert "proxy_buffering off;" in text  # streamed tokens pass through


def test_nginx_t_refuses_a_broken_value(tmp_path):
    config = tmp_path / "nginx.conf"
    config.write_text(rendered_nginx(tmp_path, fail_timeout_s="five"))
    with pytest.raises(NginxConfigError, match="fail_timeout"):
        nginx_module.test_config(config, tmp_path)


class StandIn(http.server.BaseHTTPRequestHandler):
    """An OpenAI-shaped upstream in a few lines: /health and /v1/completions (echoes the prompt)."""

    def log_message(self, *args):
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._send(200, {}) if self.path == "/health" else self._send(404, {"error": "not found"})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.server.prompts.append(body["prompt"])
        self._send(200, {"id": "cmpl-1", "object": "text_completion", "model": body["model"],
                         "choices": [{"index": 0, "text": f"echo: {body['prompt']}", "finish_reason": "length"}]})


@pytest.mark.server
def test_router_routes_refuses_bad_requests_and_follows_upstream_health():
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    upstream.prompts = []
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{upstream.server_address[1]}"
    try:
        with VLLMRouterServer([url], policy="round_robin") as router:
            assert router.workers() == {url: True}
            # the leak check sees it (vllm-router renames its process to "vllm::router")
            assert any(line.startswith(f"{router.process.pid}:") for line in find_server_processes())
            assert requests.get(router.url("/readiness"), timeout=5).status_code == 200
            reply = requests.post(router.url("/v1/completions"), json={"model": "m", "prompt": "ping"}, timeout=10)
            assert reply.status_code == 200 and reply.json()["choices"][0]["text"] == "echo: ping"
            bad = requests.post(router.url("/v1/completions"), json={"model": "m"}, timeout=10)
            assert 400 <= bad.status_code < 500 and "prompt" in bad.text
            assert upstream.prompts == ["ping"]  # the malformed request never reached the upstream
            assert router.metrics().processed == {url: 1}

            upstream.shutdown()
            upstream.server_close()
            deadline = time.monotonic() + 10
            while router.workers()[url] and time.monotonic() < deadline:
                time.sleep(0.1)  # waiting for the router's health checker (every 1 s, 2 failures)
            assert router.workers() == {url: False}
            assert requests.get(router.url("/readiness"), timeout=5).status_code == 503
            assert requests.get(router.url("/liveness"), timeout=5).status_code == 200
            gone = requests.post(router.url("/v1/completions"), json={"model": "m", "prompt": "ping"}, timeout=10)
            assert gone.status_code == 503
        assert not router.running
    finally:
        upstream.server_close()
