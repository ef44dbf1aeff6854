"""The APNs push speaks HTTP/2 over TLS with the Pass Type ID certificate as the client certificate.

A stand-in APNs (h2 over TLS, ALPN "h2", client certificates required and checked against the test chain)
runs on a loopback port; `updates.apns` must reach it in HTTP/2, present the pass certificate, and send
Apple's pass update: POST /3/device/<token>, apns-topic = the pass type id, body `{}`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from chalicelib.services.wallet import credentials as wallet_credentials
from chalicelib.services.wallet import http as wallet_http
from chalicelib.services.wallet import updates as wallet_updates
from chalicelib.settings import settings
from infra.local import wallet_keys


def _server_certificate(directory: Path) -> tuple[Path, Path, x509.Certificate]:
    """A throwaway CA and a certificate for 127.0.0.1 signed by it: (cert file, key file, CA certificate)."""
    now = datetime.now(UTC)
    ca_key, key = rsa.generate_private_key(65537, 2048), rsa.generate_private_key(65537, 2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test APNs CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
          .not_valid_after(now + timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_file, key_file = directory / "server.pem", directory / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file, ca


@dataclasses.dataclass
class Seen:
    headers: dict[str, str]
    body: bytes
    client_subject: str
    alpn: str | None


class FakeApns:
    """One-connection-at-a-time HTTP/2 server: records each request, answers 200 with an apns-id."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.seen: list[Seen] = []
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            try:
                with self.context.wrap_socket(raw, server_side=True) as tls:
                    self._connection(tls)
            except (OSError, ssl.SSLError):
                continue

    def _connection(self, tls: ssl.SSLSocket) -> None:
        peer = tls.getpeercert() or {}
        subject = ",".join(f"{k}={v}" for rdn in peer.get("subject", ()) for k, v in rdn)
        conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        tls.sendall(conn.data_to_send())
        headers: dict[int, dict[str, str]] = {}
        bodies: dict[int, bytes] = {}
        while True:
            data = tls.recv(65535)
            if not data:
                return
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    headers[event.stream_id] = {
                        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                        for k, v in event.headers}
                elif isinstance(event, h2.events.DataReceived):
                    bodies[event.stream_id] = bodies.get(event.stream_id, b"") + event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    sid = event.stream_id
                    self.seen.append(Seen(headers.get(sid, {}), bodies.get(sid, b""), subject,
                                          tls.selected_alpn_protocol()))
                    conn.send_headers(sid, [(":status", "200"), ("apns-id", f"id-{sid}")], end_stream=True)
            tls.sendall(conn.data_to_send())

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def apns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApns]:
    wallet_keys.ensure_configured()
    creds = json.loads((Path(settings.wallet_credentials.removeprefix("dir:")) / wallet_keys.FILE_NAME).read_text())
    cert_file, key_file, ca = _server_certificate(tmp_path)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    server.set_alpn_protocols(["h2"])
    server.verify_mode = ssl.CERT_REQUIRED  # APNs wants the pass certificate, and checks it
    server.load_verify_locations(cadata=creds["apple_root_ca"] + creds["apple_wwdr"])
    fake = FakeApns(server)
    real = ssl.create_default_context

    def trusting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        context = real(*args, **kwargs)
        context.load_verify_locations(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
        return context

    monkeypatch.setattr(wallet_http.ssl, "create_default_context", trusting)  # trust the stand-in's CA
    monkeypatch.setattr(wallet_updates, "settings",
                        dataclasses.replace(settings, apns_url=f"https://127.0.0.1:{fake.port}"))
    wallet_http.close_all()
    yield fake
    wallet_http.close_all()
    fake.close()


def test_the_pass_update_push_goes_over_http2_with_the_pass_certificate(apns: FakeApns) -> None:
    creds = wallet_credentials.load()
    first = wallet_updates.apns("0a1b2c3d", creds)
    second = wallet_updates.apns("4e5f6a7b", creds)  # the same connection, a second stream
    assert (first.status_code, first.http_version, first.error) == (200, "HTTP/2", None)
    assert (second.status_code, second.http_version) == (200, "HTTP/2")
    assert [s.alpn for s in apns.seen] == ["h2", "h2"] and apns.connections == 1  # the connection is kept
    pushed = apns.seen[0]
    assert (pushed.headers[":method"], pushed.headers[":path"], pushed.body) == ("POST", "/3/device/0a1b2c3d", b"{}")
    assert pushed.headers["apns-topic"] == settings.wallet_pass_type_id
    assert f"userId={settings.wallet_pass_type_id}" in pushed.client_subject
    assert apns.seen[1].headers[":path"] == "/3/device/4e5f6a7b"
