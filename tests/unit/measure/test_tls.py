"""llmserve.measure.tls against an in-thread HTTP server, plain and with TLS (a certificate made with openssl)."""
import http.server
import ssl
import threading

import pytest

from llmserve.measure.tls import KeptAlive, new_connection_request, tls_context


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keeps connections open unless the client says close

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.connections.add(self.client_address)
        body = b"ok\n" if self.path == "/health" else b"no\n"
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def pki(test_pki):
    return test_pki


@pytest.fixture(params=["http", "https"])
def server(request, pki):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.connections = set()
    if request.param == "https":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki / "server.crt", pki / "server.key")
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, (tls_context(str(pki / "ca.crt")) if request.param == "https" else None)
    httpd.shutdown()
    httpd.server_close()


def test_a_new_connection_is_timed_in_three_parts(server):
    httpd, context = server
    timing = new_connection_request("127.0.0.1", httpd.server_address[1], "/health", context=context)
    assert timing.status == 200
    assert timing.connect_ms > 0 and timing.request_ms > 0
    assert timing.total_ms == pytest.approx(timing.connect_ms + timing.handshake_ms + timing.request_ms)
    if context is None:
        assert timing.handshake_ms < 1 and timing.tls_version is None
    else:
        assert timing.handshake_ms > 0 and timing.tls_version.startswith("TLSv1.")


def test_kept_alive_requests_share_one_connection(server):
    httpd, context = server
    with KeptAlive("127.0.0.1", httpd.server_address[1], context=context) as connection:
        times_ms = [connection.request("/health") for _ in range(5)] + [connection.request("/missing")]
    assert connection.statuses == [200] * 5 + [404] and all(t > 0 for t in times_ms)
    assert len(httpd.connections) == 1  # one client address:port for all six requests


def test_a_certificate_from_another_ca_is_refused(pki, tmp_path):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "server.crt", pki / "server.key")
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            new_connection_request("127.0.0.1", httpd.server_address[1], "/health", context=tls_context(None))
    finally:
        httpd.shutdown()
        httpd.server_close()
