"""The wallet's one HTTP client: APNs over HTTP/2, Google's API, and the local stack's recorder.

httpx with HTTP/2 enabled (h2): APNs accepts only HTTP/2, negotiated by ALPN
over TLS, with the Pass Type ID certificate as the client certificate. Plain
`http://` URLs (the local stack's recording endpoint) are spoken in HTTP/1.1 by
the same client: HTTP/2 without TLS would need prior knowledge, which Google's
API and the recorder do not need. One client per certificate, kept for the
process, so a worker reuses its APNs connection across pushes.
"""

from __future__ import annotations

import json
import os
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

TIMEOUT_SECONDS = 5.0
ERROR_CHARS = 300

_clients: dict[str, httpx.Client] = {}
_lock = threading.Lock()


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


def _client(cert: tuple[bytes, bytes] | None) -> httpx.Client:
    key = "" if cert is None else str(hash(cert))
    with _lock:
        found = _clients.get(key)
        if found is None:
            context = ssl.create_default_context()
            if cert is not None:
                _load_chain(context, *cert)
            found = httpx.Client(http2=True, verify=context, timeout=TIMEOUT_SECONDS, follow_redirects=False)
            _clients[key] = found
        return found


def _load_chain(context: ssl.SSLContext, certificate_pem: bytes, key_pem: bytes) -> None:
    """ssl loads a client certificate only from files: written to a private temporary file, read, removed."""
    handle, path = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(certificate_pem + b"\n" + key_pem)
        context.load_cert_chain(path)
    finally:
        os.unlink(path)


def request(method: str, url: str, body: bytes, headers: dict[str, str],
            cert: tuple[bytes, bytes] | None = None) -> Outcome:
    """One request, 5 s at most, no redirects; the outcome, never an exception."""
    started = time.monotonic()

    def done(status: int | None, error: str | None, payload: Any = None, version: str = "") -> Outcome:
        return Outcome(status, error[:ERROR_CHARS] if error else None, int((time.monotonic() - started) * 1000),
                       payload, version)

    try:
        response = _client(cert).request(method, url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return done(None, f"{type(exc).__name__}: {exc}")
    except (OSError, ssl.SSLError) as exc:
        return done(None, f"{type(exc).__name__}: {exc}")
    try:
        payload = response.json() if response.content else None
    except (ValueError, json.JSONDecodeError):
        payload = None
    error = None if response.is_success else f"HTTP {response.status_code}: {response.text[:200]}"
    return done(response.status_code, error, payload, response.http_version)


def close_all() -> None:
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()
