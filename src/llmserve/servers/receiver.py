"""An HTTP endpoint in a thread of this process that a real server POSTs to: the stand-in for a pager, a chat
channel or a trace collector. No child process: it lives until `stop()` or the end of `with`, on a free port."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from llmserve.servers.base import pick_port


class PostReceiver:
    """Base of the in-thread receivers (`AlertWebhookReceiver`, `OTLPTraceReceiver`).

    A subclass sets `port` (None: a free one) before `start()` and implements `handle_post`, which keeps what it
    received under `self._lock` and returns the HTTP status and headers of the answer."""

    thread_name = "post-receiver"
    port: int | None

    def _init_receiver(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def handle_post(self, path: str, headers, body: bytes) -> tuple[int, dict[str, str]]:
        raise NotImplementedError

    def start(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, headers = receiver.handle_post(self.path, self.headers, body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()

            def log_message(self, *args):  # quiet: the notebook prints what matters
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", pick_port(self.port)), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name=self.thread_name, daemon=True).start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
