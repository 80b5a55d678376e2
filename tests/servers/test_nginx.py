"""NginxServer on the real nginx: serves its rendered template, leaves no process (master and workers),
refuses a busy port before starting, surfaces `nginx -t`'s complaint, and is seen by the leak check."""
import os
import socket
import time

import psutil
import pytest
import requests

from llmserve.servers import NginxConfigError, NginxServer, PortInUseError, find_server_processes

TEMPLATE = """worker_processes 2;
events { worker_connections 64; }
http {
    access_log logs/access.log;
    client_body_temp_path {{ prefix }}/tmp/body;
    proxy_temp_path {{ prefix }}/tmp/proxy;
    fastcgi_temp_path {{ prefix }}/tmp/fastcgi;
    uwsgi_temp_path {{ prefix }}/tmp/uwsgi;
    scgi_temp_path {{ prefix }}/tmp/scgi;
    server {
        listen 127.0.0.1:{{ port }};
        location = /healthz { return 200 "{{ greeting }}"; }
        location / { return 418; }
    }
}
"""


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def template(tmp_path):
    path = tmp_path / "nginx.conf.template"
    path.write_text(TEMPLATE)
    return path


@pytest.mark.server
def test_nginx_serves_its_rendered_template_and_leaves_nothing(template):
    server = NginxServer(template, variables={"greeting": "hello"}, health_url="http://127.0.0.1:{port}/healthz",
                         healthy=lambda reply: reply.status_code == 200)
    with server:
        assert requests.get(server.url("port", "/healthz"), timeout=5).text == "hello"
        assert requests.get(server.url("port", "/other"), timeout=5).status_code == 418
        members = [server.process.pid] + [c.pid for c in psutil.Process(server.process.pid).children(recursive=True)]
        assert len(members) == 3  # master + 2 workers
        deadline = time.monotonic() + 5  # a worker writes its log line after it has answered
        while not any('"GET /other HTTP/1.1" 418' in line for line in server.access_log()):
            assert time.monotonic() < deadline, server.access_log()
            time.sleep(0.05)
        marker = f"LLMSERVE_TEST_RUN={os.environ['LLMSERVE_TEST_RUN']}"
        assert any("nginx: master process" in line for line in find_server_processes(marker)), \
            "the notebook leak check must see a running nginx"
        port = server.port_numbers["port"]
    assert not [pid for pid in members if _alive(pid)], "nginx processes outlived the with block"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # the port is free again


@pytest.mark.server
def test_a_busy_port_is_refused_before_starting(template):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        server = NginxServer(template, variables={"greeting": "x", "port": port})
        with pytest.raises(PortInUseError, match=f"port {port} .* already in use"):
            server.start()
        assert server.process is None


@pytest.mark.server
def test_a_config_nginx_rejects_fails_with_nginx_t_output(tmp_path):
    bad = tmp_path / "bad.template"
    bad.write_text(TEMPLATE.replace("worker_connections 64;", "worker_connections {{ greeting }};"))
    server = NginxServer(bad, variables={"greeting": "many"})
    with pytest.raises(NginxConfigError, match='invalid number "many"'):
        server.start()
    assert server.process is None


def test_missing_nginx_is_a_clear_error(template, monkeypatch):
    from llmserve.servers import ServerStartError
    from llmserve.servers import nginx as nginx_module
    monkeypatch.setattr(nginx_module.shutil, "which", lambda name: None)
    monkeypatch.setattr(nginx_module.Path, "exists", lambda self: False)
    with pytest.raises(ServerStartError, match="nginx is not installed: run `make setup-system`"):
        NginxServer(template, variables={"greeting": "x"})
