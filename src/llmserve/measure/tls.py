"""What TLS costs per request: a new connection (TCP connect, TLS handshake, request) against a kept-alive one.

    context = tls_context(ca_file)                       # None for plain HTTP
    timing = new_connection_request("127.0.0.1", 8443, "/health", context=context)
    print(timing.connect_ms, timing.handshake_ms, timing.request_ms)
    with KeptAlive("127.0.0.1", 8443, context=context) as connection:
        latencies_ms = [connection.request("/health") for _ in range(100)]

Uses the standard library only (socket, ssl, http.client), so the timings contain no client library's pool
or retry logic: `connect_ms` is the TCP handshake, `handshake_ms` the TLS handshake (0 for plain HTTP), and
`request_ms` one HTTP/1.1 request and its whole answer on the open connection.
"""
from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass


def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """A client context that verifies the server against `ca_file` (default: the system's CAs)."""
    return ssl.create_default_context(cafile=ca_file)


@dataclass(frozen=True)
class ConnectionTiming:
    connect_ms: float
    handshake_ms: float
    request_ms: float
    status: int
    tls_version: str | None

    @property
    def total_ms(self) -> float:
        return self.connect_ms + self.handshake_ms + self.request_ms


def _request(connection: http.client.HTTPConnection, path: str, headers: Mapping[str, str]) -> int:
    connection.request("GET", path, headers=dict(headers))
    response = connection.getresponse()
    response.read()
    return response.status


def new_connection_request(host: str, port: int, path: str, *, context: ssl.SSLContext | None = None,
                           headers: Mapping[str, str] | None = None, timeout: float = 10.0) -> ConnectionTiming:
    """One request on a fresh connection (closed afterwards), timed in its three parts."""
    began = time.perf_counter()
    sock = socket.create_connection((host, port), timeout=timeout)
    connected = time.perf_counter()
    try:
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname=host)  # the handshake happens here
        shaken = time.perf_counter()
        version = sock.version() if context is not None else None
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
        connection.sock = sock
        status = _request(connection, path, {"Connection": "close", **dict(headers or {})})
        done = time.perf_counter()
    finally:
        sock.close()
    return ConnectionTiming(connect_ms=1000 * (connected - began), handshake_ms=1000 * (shaken - connected),
                            request_ms=1000 * (done - shaken), status=status, tls_version=version)


class KeptAlive:
    """One HTTP/1.1 connection kept open (plain, or TLS with `context`); `request(path)` returns milliseconds.

    The connection (and its handshake) is made on entry, not counted in any request."""

    def __init__(self, host: str, port: int, *, context: ssl.SSLContext | None = None,
                 headers: Mapping[str, str] | None = None, timeout: float = 10.0) -> None:
        self.host, self.port, self.context, self.timeout = host, port, context, timeout
        self.headers = dict(headers or {})
        self.connection: http.client.HTTPConnection | None = None
        self.statuses: list[int] = []

    def __enter__(self) -> KeptAlive:
        if self.context is None:
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        else:
            self.connection = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                          context=self.context)
        self.connection.connect()
        return self

    def request(self, path: str) -> float:
        began = time.perf_counter()
        self.statuses.append(_request(self.connection, path, self.headers))
        return 1000 * (time.perf_counter() - began)

    def __exit__(self, *exc) -> None:
        if self.connection is not None:
            self.connection.close()
