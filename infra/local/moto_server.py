"""An in-process moto server that is safe to hit from many threads, with replayable persistence.

Why not plain `moto_server`: moto's backends are not concurrency-safe (two parallel
DynamoDB transactions on one item have both succeeded, overdrawing a balance), so the
WSGI app here runs behind a middleware holding ONE global lock per request. Long SQS
polls would hold that lock for their whole wait, so the middleware turns a
`ReceiveMessage` with `WaitTimeSeconds` into short polls, taking the lock only for each.

Persistence uses moto's recorder (`moto.moto_api.recorder`, the object behind
`/moto-api/recorder/*`; file = `MOTO_RECORDER_FILEPATH`). The middleware switches it on
per request, only for requests that change durable state: DynamoDB and S3 writes. It
never records reads (they would only grow the file), nor SQS (receipt handles are random,
so a replayed `DeleteMessage` cannot match and processed jobs would come back) nor
`/moto-api/*` calls. `replay()` re-sends the file over HTTP to this server, like moto's own
`replay-recording` endpoint, but rewritten to the current port and failing loudly (a 5xx
or an unreadable line) instead of silently, so the caller can set a bad file aside.

By default `start()` installs infra/local/moto_patches.py's transaction shim, SQS send fix and
query fix (process-wide, undone by `stop()` if this server installed them): without them a
TransactWriteItems costs O(table size), a SendMessage O(messages in the queue) and a Query
O(table size x log). The query fix caches index partitions; the middleware invalidates them
around every request that may change a table.

The middleware also answers the stack's own pages under `/_local/` (no AWS API): the outbox of every
e-mail and SMS sent (infra/local/outbox.py), `/_local/sms`, and the wallet push recorder
`/_local/wallet-pushes` (infra/local/wallet_recorder.py).

Cognito (`MOTO_ENVIRONMENT`, set by `start()`, restored by `stop()`): moto checks TOTP codes only when told
to, so a wrong MFA code is refused locally as on AWS; and user pool and app client ids are hashes of their
create request instead of random, so replaying the recording gives the pool and client the ids that the
recorded requests after them (users, MFA settings) name.
"""

from __future__ import annotations

import base64
import io
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode, urlparse

import requests

from infra.local import outbox, wallet_recorder
from infra.local.moto_patches import note_write

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# DynamoDB operations that change nothing; everything else (including unknown ones) is recorded.
DYNAMODB_READS = frozenset(
    {
        "GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems", "DescribeTable", "DescribeTimeToLive",
        "DescribeContinuousBackups", "DescribeLimits", "DescribeEndpoints", "ListTables", "ListTagsOfResource",
        "ListBackups", "ListGlobalTables", "ListExports", "ListImports",
    }
)
NOT_RECORDED_SERVICES = frozenset({"sqs", "sts", "iam"})
SHORT_POLL_INTERVAL = 0.1
MOTO_ENVIRONMENT = {
    "MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP": "true",
    "MOTO_COGNITO_IDP_USER_POOL_ID_STRATEGY": "HASH",
    "MOTO_COGNITO_IDP_USER_POOL_CLIENT_ID_STRATEGY": "HASH",
}
"""moto settings read per request (moto.settings), for this process while the server runs."""
REPLAY_DROPPED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "expect"})


class ReplayError(Exception):
    """The recording could not be replayed faithfully; the state it built is incomplete."""


@dataclass
class ReplayResult:
    requests: int
    dropped_torn_line: bool


def _service(environ: dict[str, Any]) -> str:
    """The signing service from the SigV4 credential scope (`Credential=AKID/date/region/SERVICE/aws4_request`)."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    marker = "Credential="
    if marker in auth:
        scope = auth.split(marker, 1)[1].split(",", 1)[0].split("/")
        if len(scope) >= 4:
            return str(scope[3]).lower()
    return ""


def should_record(environ: dict[str, Any]) -> bool:
    """Whether replaying this request is needed to rebuild durable state."""
    if environ.get("PATH_INFO", "").startswith("/moto-api/"):
        return False
    if environ.get("REQUEST_METHOD", "GET") in ("GET", "HEAD", "OPTIONS"):
        return False
    service = _service(environ)
    if service in NOT_RECORDED_SERVICES:
        return False
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if service == "dynamodb" or target.startswith("DynamoDB_"):
        return target.rsplit(".", 1)[-1] not in DYNAMODB_READS
    return True


def changes_tables(environ: dict[str, Any]) -> bool:
    """Whether this request may change a DynamoDB table (a write, or a moto-api reset): index caches go stale."""
    if environ.get("PATH_INFO", "").startswith("/moto-api/"):
        return True
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    return target.startswith("DynamoDB_") and target.rsplit(".", 1)[-1] not in DYNAMODB_READS


def _read_body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _with_body(environ: dict[str, Any], body: bytes) -> dict[str, Any]:
    copy = dict(environ)
    copy["wsgi.input"] = io.BytesIO(body)
    copy["CONTENT_LENGTH"] = str(len(body))
    return copy


class SerialisingMiddleware:
    """Runs every moto request under one lock and decides, per request, whether moto records it."""

    def __init__(self, app: WSGIApp) -> None:
        from moto.moto_api import recorder

        self.app = app
        self.lock = threading.Lock()
        self.recording = False
        self._recorder = recorder

    def _call_locked(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., Any]:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        writes = changes_tables(environ)
        sends = _service(environ) in MESSAGE_SERVICES
        with self.lock:
            if writes:
                note_write()
            if self.recording and should_record(environ):
                self._recorder.start_recording()
            else:
                self._recorder.stop_recording()
            result = self.app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
                if writes:
                    note_write()
                if sends:
                    outbox.stamp_new()
        return captured["status"], captured["headers"], body

    def _long_poll(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """Emulate a long `ReceiveMessage` with short ones, so the wait does not hold the lock."""
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        body = _read_body(environ)
        wait, short = 0, body
        if target == "AmazonSQS.ReceiveMessage":  # JSON protocol (botocore >= 1.31)
            payload = json.loads(body or b"{}")
            wait = int(payload.get("WaitTimeSeconds") or 0)
            short = json.dumps({**payload, "WaitTimeSeconds": 0}).encode()
        elif not target and _service(environ) == "sqs" and b"Action=ReceiveMessage" in body:  # query protocol
            form = dict(parse_qsl(body.decode()))
            wait = int(form.get("WaitTimeSeconds") or 0)
            short = urlencode({**form, "WaitTimeSeconds": "0"}).encode()
        if wait <= 0:
            return None
        deadline = time.monotonic() + wait
        while True:
            status, headers, out = self._call_locked(_with_body(environ, short))
            got = b'"Messages"' in out or b"<Message>" in out
            if got or not status.startswith("200") or time.monotonic() >= deadline:
                return status, headers, out
            time.sleep(SHORT_POLL_INTERVAL)

    def _local_page(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """The stack's own pages under /_local/ (not AWS APIs), or None for a request meant for moto."""
        path = environ.get("PATH_INFO", "")
        recorded = wallet_recorder.handle(environ)  # the APNs / Google Wallet stand-in (its own lock)
        if recorded is not None:
            return recorded
        if path not in LOCAL_PAGES:
            return None
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return "405 Method Not Allowed", [("Allow", "GET, HEAD"), ("Content-Type", "text/plain")], b"GET only\n"
        to = dict(parse_qsl(environ.get("QUERY_STRING", ""))).get("to", "")
        json_type = ("Content-Type", "application/json; charset=utf-8")
        with self.lock:
            if path == SMS_OUTBOX_PATH:
                return "200 OK", [json_type], json.dumps(sms_outbox(), ensure_ascii=False).encode()
            if path == outbox.OUTBOX_JSON_PATH:
                found = {"messages": [m.to_json() for m in outbox.messages(to)]}
                return "200 OK", [json_type], json.dumps(found, ensure_ascii=False).encode()
            if path == outbox.OUTBOX_PATH:
                page = outbox.render_html(to).encode()
                return "200 OK", [("Content-Type", "text/html; charset=utf-8"), *PAGE_HEADERS], page
            if path == outbox.OUTBOX_HTML_PATH:
                message_id = dict(parse_qsl(environ.get("QUERY_STRING", ""))).get("id", "")
                part = outbox.html_part(message_id)
                if part is None:
                    return "404 Not Found", [("Content-Type", "text/plain; charset=utf-8")], b"No such HTML part\n"
                return "200 OK", [("Content-Type", "text/html; charset=utf-8"), *HTML_PART_HEADERS], part.encode()
        return "200 OK", [("Content-Type", "text/css; charset=utf-8"), *PAGE_HEADERS], outbox.stylesheet()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        page = self._local_page(environ)
        if page is not None:
            status, headers, body = page
            start_response(status, [*headers, ("Content-Length", str(len(body)))])
            return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]
        if environ.get("PATH_INFO", "").startswith("/moto-api/recorder/"):
            # moto's replay-recording endpoint calls back into this server: locking here would deadlock.
            return self.app(environ, start_response)
        is_sqs = _service(environ) == "sqs" or environ.get("HTTP_X_AMZ_TARGET", "").startswith("AmazonSQS.")
        response = self._long_poll(environ) if is_sqs else None
        status, headers, body = response or self._call_locked(environ)
        start_response(status, headers)
        return [body]


SMS_OUTBOX_PATH = "/_local/sms"
"""Every SMS this embedded AWS "sent" (moto keeps them in memory, no real gateway), as JSON."""
LOCAL_PAGES = frozenset({SMS_OUTBOX_PATH, outbox.OUTBOX_PATH, outbox.OUTBOX_JSON_PATH, outbox.OUTBOX_CSS_PATH,
                         outbox.OUTBOX_HTML_PATH})
MESSAGE_SERVICES = frozenset({"ses", "sns"})
"""Requests to these may send a message: the outbox stamps what they sent (SES v2 signs as "ses" too)."""
PAGE_HEADERS = [("Content-Security-Policy", outbox.CONTENT_SECURITY_POLICY), ("X-Content-Type-Options", "nosniff"),
                ("Referrer-Policy", "no-referrer"), ("Cache-Control", "no-store")]
HTML_PART_HEADERS = [("Content-Security-Policy", outbox.HTML_PART_POLICY), ("X-Content-Type-Options", "nosniff"),
                     ("Referrer-Policy", "no-referrer"), ("Cache-Control", "no-store")]


def sms_outbox() -> list[dict[str, str]]:
    """The SMS moto's SNS kept, oldest first: what a new user (or an end-to-end test) reads a code from."""
    from moto.sns.models import sns_backends

    out = []
    for account in sns_backends.values():
        for region, backend in account.items():
            out += [{"id": mid, "to": to, "text": text, "region": region}
                    for mid, (to, text) in backend.sms_messages.items()]
    return out


def _request_handler(base: type[Any], verbose: bool) -> type[Any]:
    """moto's request handler, without an access-log line per AWS call unless verbose (errors still log)."""

    class Handler(base):  # type: ignore[misc]
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            if verbose:
                super().log_request(code, size)

    return Handler


class LocalMotoServer:
    """A threaded moto server on host:port; `start()`/`stop()`, optional recording to `recording_path`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 5000,
        recording_path: Path | None = None,
        verbose: bool = False,
        transaction_shim: bool = True,
    ) -> None:
        self.host = host
        self.verbose = verbose
        self.transaction_shim = transaction_shim
        self._installed_shim = False
        self.port = port
        self.recording_path = recording_path
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.middleware: SerialisingMiddleware | None = None
        self._saved_environment: dict[str, str | None] = {}

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        if self.recording_path is not None:
            # moto reads this once, when moto.moto_api is first imported; set it before that and after.
            os.environ["MOTO_RECORDER_FILEPATH"] = str(self.recording_path)
        os.environ.pop("MOTO_ENABLE_RECORDING", None)  # the middleware decides per request
        self._saved_environment = {name: os.environ.get(name) for name in MOTO_ENVIRONMENT}
        os.environ.update(MOTO_ENVIRONMENT)
        from moto.moto_api import recorder
        from moto.moto_server import werkzeug_app
        from werkzeug.serving import make_server

        if self.recording_path is not None:
            self.recording_path.parent.mkdir(parents=True, exist_ok=True)
            recorder._location = str(self.recording_path)
        recorder.stop_recording()
        if self.transaction_shim:
            from infra.local.moto_patches import (
                install_query_fix,
                install_sqs_send_fix,
                install_transaction_shim,
                is_transaction_shim_installed,
            )

            self._installed_shim = not is_transaction_shim_installed()
            install_transaction_shim()
            install_sqs_send_fix()
            install_query_fix()
        app = werkzeug_app.DomainDispatcherApplication(werkzeug_app.create_backend_app)
        self.middleware = SerialisingMiddleware(app)
        handler = _request_handler(werkzeug_app.MotoRequestHandler, self.verbose)
        self._server = make_server(self.host, self.port, self.middleware, threaded=True, request_handler=handler)
        self.port = self._server.server_port  # port 0 picks a free one
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)
        self._thread.start()

    def start_recording(self) -> None:
        assert self.middleware is not None and self.recording_path is not None
        self.recording_path.touch()
        with self.middleware.lock:
            self.middleware.recording = True

    def stop_recording(self) -> None:
        """Stop after the request in flight, if any, has been written: the file then ends on a whole line."""
        if self.middleware is None:
            return
        with self.middleware.lock:
            self.middleware.recording = False
            self.middleware._recorder.stop_recording()

    def reset(self) -> None:
        """Forget every resource (moto's /moto-api/reset); the recording file is untouched."""
        requests.post(f"{self.url}/moto-api/reset", timeout=30).raise_for_status()

    def replay(self) -> ReplayResult:
        """Re-send the recording to this server; raise ReplayError if the result cannot be trusted.

        A torn last line (the process died mid-write) is dropped and the file repaired,
        so that appending can continue; any other unreadable line fails the replay.
        """
        assert self.recording_path is not None and self.middleware is not None
        if self.middleware.recording:
            raise RuntimeError("replay with recording off, or every request would be recorded twice")
        raw = self.recording_path.read_bytes()
        lines = raw.decode("utf-8", errors="replace").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        entries: list[dict[str, Any]] = []
        torn = False
        for number, line in enumerate(lines, start=1):
            try:
                entries.append(json.loads(line))
            except ValueError as err:
                if number == len(lines):
                    torn = True
                    continue
                raise ReplayError(f"line {number} is not a recorded request: {err}") from err
        if torn or (raw and not raw.endswith(b"\n")):
            self.recording_path.write_text("".join(json.dumps(e) + "\n" for e in entries))
        with requests.Session() as session:
            for number, entry in enumerate(entries, start=1):
                try:
                    self._replay_one(session, entry)
                except ReplayError as err:
                    raise ReplayError(f"line {number}: {err}") from err
                except (requests.RequestException, KeyError, TypeError, ValueError) as err:
                    raise ReplayError(f"line {number}: {type(err).__name__}: {err}") from err
        return ReplayResult(requests=len(entries), dropped_torn_line=torn)

    def _replay_one(self, session: requests.Session, entry: dict[str, Any]) -> None:
        body: Any = entry.get("body") or b""
        if entry.get("body_encoded"):
            body = base64.b64decode(body)
        recorded = urlparse(entry["url"])
        url = f"{self.url}{recorded.path}" + (f"?{recorded.query}" if recorded.query else "")
        headers = {k: v for k, v in entry["headers"].items() if k.lower() not in REPLAY_DROPPED_HEADERS}
        response = session.request(entry["method"], url, headers=headers, data=body, timeout=60)
        if response.status_code >= 500:
            raise ReplayError(f"{entry['method']} {recorded.path} -> {response.status_code}: {response.text[:300]}")

    def stop(self) -> None:
        """Stop serving; the recording is complete on disk when this returns."""
        self.stop_recording()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        for name, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environment = {}
        if self._installed_shim:  # leave in-process moto (e.g. later tests' mock_aws) as this server found it
            from infra.local.moto_patches import uninstall_query_fix, uninstall_sqs_send_fix, uninstall_transaction_shim

            uninstall_transaction_shim()
            uninstall_sqs_send_fix()
            uninstall_query_fix()
            self._installed_shim = False

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
