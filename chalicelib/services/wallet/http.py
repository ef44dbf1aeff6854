"""The wallet's HTTP: APNs over HTTP/2 (h2), Google's API and the local stack's recorder over HTTP/1.1 (urllib3).

APNs accepts only HTTP/2, negotiated by ALPN over TLS, with the Pass Type ID
certificate as the client certificate. That is spoken with `h2` (the protocol
state machine, pure Python, ~1 MB with hpack and hyperframe) on a plain TLS
socket: one connection per process and certificate, kept open for the next
pushes (APNs asks providers to reuse connections), reopened once if it broke.
A full client (httpx with HTTP/2) would have added ~5 MB of dependencies to the
Lambda package for this one POST. Everything else (Google's OAuth and Wallet
APIs, the local recorder at `http://`) is HTTP/1.1 through urllib3, which the
project already uses for webhooks. Every call: 5 s at most, no redirects, an
Outcome rather than an exception.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import urllib3

TIMEOUT_SECONDS = 5.0
ERROR_CHARS = 300


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int
    json: Any = None
    http_version: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _Started:
    def __init__(self) -> None:
        self.at = time.monotonic()

    def done(self, status: int | None, error: str | None, body: bytes = b"", version: str = "") -> Outcome:
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = None
        return Outcome(status, error[:ERROR_CHARS] if error else None, int((time.monotonic() - self.at) * 1000),
                       payload, version)


def request(method: str, url: str, body: bytes, headers: dict[str, str],
            cert: tuple[bytes, bytes] | None = None) -> Outcome:
    """HTTP/2 with the client certificate when one is given (APNs), else HTTP/1.1."""
    if cert is not None and url.startswith("https://"):
        return _h2_request(method, url, body, headers, cert)
    return _http1_request(method, url, body, headers)


# --- HTTP/1.1 ------------------------------------------------------------------------------------------

_pool: urllib3.PoolManager | None = None
_pool_lock = threading.Lock()


def _http1_request(method: str, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
    global _pool
    started = _Started()
    with _pool_lock:
        if _pool is None:
            _pool = urllib3.PoolManager(timeout=urllib3.Timeout(total=TIMEOUT_SECONDS), retries=False)
        pool = _pool
    try:
        response = pool.request(method, url, body=body, headers=headers, redirect=False, retries=False)
    except urllib3.exceptions.HTTPError as exc:
        return started.done(None, f"{type(exc).__name__}: {exc}")
    status = int(response.status)
    error = None if 200 <= status < 300 else f"HTTP {status}: {response.data[:200].decode(errors='replace')}"
    return started.done(status, error, response.data, "HTTP/1.1")


# --- HTTP/2 ----------------------------------------------------------------------------------------------

class _H2:
    """One open HTTP/2 connection (TLS, ALPN h2, client certificate)."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext) -> None:
        raw = socket.create_connection((host, port), timeout=TIMEOUT_SECONDS)
        try:
            self.tls = context.wrap_socket(raw, server_hostname=host)
        except BaseException:
            raw.close()
            raise
        if self.tls.selected_alpn_protocol() != "h2":
            self.tls.close()
            raise ConnectionError(f"{host} did not agree to HTTP/2")
        self.conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True,
                                                                                 header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.tls.sendall(self.conn.data_to_send())
        self.authority = host if port == 443 else f"{host}:{port}"

    def send(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        stream = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream, [(":method", method), (":scheme", "https"), (":authority", self.authority),
                                        (":path", path), ("content-length", str(len(body))),
                                        *((k.lower(), v) for k, v in headers.items())])
        self.conn.send_data(stream, body, end_stream=True)
        self.tls.sendall(self.conn.data_to_send())
        status, received = 0, b""
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            data = self.tls.recv(65535)
            if not data:
                raise ConnectionError("the server closed the connection")
            for event in self.conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream:
                    status = _status(event.headers or [])
                elif isinstance(event, h2.events.DataReceived) and event.stream_id == stream:
                    received += event.data
                    self.conn.acknowledge_received_data(event.flow_controlled_length, stream)
                elif isinstance(event, h2.events.StreamReset) and event.stream_id == stream:
                    raise ConnectionError(f"stream reset (error code {event.error_code})")
                elif isinstance(event, h2.events.ConnectionTerminated):
                    raise ConnectionError(f"connection ended by the server ({event.error_code})")
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream:
                    self.tls.sendall(self.conn.data_to_send())
                    return status, received
            self.tls.sendall(self.conn.data_to_send())
        raise TimeoutError("no complete answer in time")

    def close(self) -> None:
        try:
            self.conn.close_connection()
            self.tls.sendall(self.conn.data_to_send())
        except (OSError, h2.exceptions.ProtocolError):
            pass
        self.tls.close()


def _status(headers: Any) -> int:
    """`:status` of a response's headers (str with our header encoding; bytes in h2's types)."""
    for name, value in headers:
        if (name.decode() if isinstance(name, bytes) else name) == ":status":
            return int(value.decode() if isinstance(value, bytes) else value)
    return 0


_h2: dict[tuple[str, int, int], _H2] = {}
_h2_lock = threading.Lock()


def _context(cert: tuple[bytes, bytes]) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.set_alpn_protocols(["h2"])
    handle, path = tempfile.mkstemp(suffix=".pem")  # ssl reads a client certificate only from a file
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(cert[0] + b"\n" + cert[1])
        context.load_cert_chain(path)
    finally:
        os.unlink(path)
    return context


def _h2_request(method: str, url: str, body: bytes, headers: dict[str, str], cert: tuple[bytes, bytes]) -> Outcome:
    started = _Started()
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    key = (host, port, hash(cert))
    with _h2_lock:  # one stream at a time on the shared connection: a worker pushes one device after another
        for attempt in (1, 2):
            connection = _h2.pop(key, None)
            try:
                if connection is None:
                    connection = _H2(host, port, _context(cert))
                status, received = connection.send(method, path, body, headers)
            except (OSError, ssl.SSLError, h2.exceptions.ProtocolError, TimeoutError) as exc:
                if connection is not None:
                    connection.close()
                if attempt == 2 or not isinstance(exc, ConnectionError | ssl.SSLEOFError | BrokenPipeError):
                    return started.done(None, f"{type(exc).__name__}: {exc}", version="HTTP/2")
                continue  # a kept connection the server had closed: once more on a new one
            _h2[key] = connection
            error = None if 200 <= status < 300 else f"HTTP {status}: {received[:200].decode(errors='replace')}"
            return started.done(status, error, received, "HTTP/2")
    raise AssertionError("unreachable")


def close_all() -> None:
    """Close kept connections (tests; a worker keeps its own until the container ends)."""
    global _pool
    with _h2_lock:
        for connection in _h2.values():
            connection.close()
        _h2.clear()
    with _pool_lock:
        if _pool is not None:
            _pool.clear()
        _pool = None
