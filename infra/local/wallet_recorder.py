"""The local stack's stand-in for APNs and the Google Wallet API: it records every wallet push the app sends.

Served by the moto server's middleware under `/_local/wallet-pushes` (run.py
points APNS_URL, GOOGLE_WALLET_API and GOOGLE_TOKEN_URL here):

    POST  /_local/wallet-pushes/apns/3/device/<push token>      an APNs push: recorded, 200 (410 for dead...)
    POST  /_local/wallet-pushes/google/token                    an access token for the PATCHes (made up)
    PATCH /_local/wallet-pushes/google/loyaltyObject/<id>       a Google object update: recorded, 200
    PATCH /_local/wallet-pushes/google/loyaltyClass/<id>        a Google class update (the tenant's look): recorded
    GET   /_local/wallet-pushes/google/keys                     Google's root signing keys for callbacks: the local
                                                                test root key (GOOGLE_CALLBACK_KEYS_URL)
    GET   /_local/wallet-pushes                                 every push recorded, newest first (JSON)

The outbox page lists them as "wallet push" entries beside e-mail and SMS.
Speaks HTTP/1.1 (werkzeug): the app uses HTTP/2 only for an https APNs URL
(services/wallet/http.py), and HTTP/1.1 for this plain-http recorder. Kept in
memory only.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from typing import Any

from infra.local import outbox

PREFIX = "/_local/wallet-pushes"
GONE_PREFIX = "dead"
"""A push token starting with `dead` answers 410 Unregistered, as APNs does for a pass removed from a device."""
MAX_KEPT = 1000
MAX_BODY = 64 * 1024

_lock = threading.Lock()
_pushes: list[dict[str, Any]] = []
_sequence = itertools.count(1)

Answer = tuple[str, list[tuple[str, str]], bytes]
JSON = ("Content-Type", "application/json; charset=utf-8")


_keys: list[tuple[str, Any]] = []
"""What the keys endpoint answers instead of the local credentials' test key (tests: a rotation, a failure)."""


def serve_keys(status: str | None = None, body: Any = None) -> None:
    """Answer the keys endpoint with `status` and `body` (JSON) from now on; no argument: the test key again."""
    _keys[:] = [(status, body)] if status is not None else []


def _local_keys() -> Answer:
    """The local credentials' `google_callback_keys` (infra/local/wallet_keys.py), as Google publishes its keys."""
    if _keys:
        status, body = _keys[0]
        return _json(status, body)
    from pathlib import Path

    from chalicelib.settings import settings
    from infra.local import wallet_keys

    kind, _, where = settings.wallet_credentials.partition(":")
    target = Path(where) / wallet_keys.FILE_NAME
    if kind != "dir" or not target.is_file():
        return _json("404 Not Found", {"error": "no local wallet credentials"})
    raw = json.loads(target.read_text(encoding="utf-8"))
    return _json("200 OK", raw.get("google_callback_keys") or {"keys": []})


def pushes() -> list[dict[str, Any]]:
    """Every recorded push, newest first."""
    with _lock:
        return list(reversed(_pushes))


def clear() -> None:
    with _lock:
        _pushes.clear()


def record(kind: str, target: str, headers: dict[str, str], body: str) -> dict[str, Any]:
    entry = {"id": f"push-{next(_sequence)}", "kind": kind, "target": target, "sent_at": time.time(),
             "headers": headers, "body": body}
    with _lock:
        _pushes.append(entry)
        del _pushes[:-MAX_KEPT]
    outbox.stamp(f"wallet:{entry['id']}")
    return entry


def _json(status: str, value: Any) -> Answer:
    return status, [JSON], json.dumps(value, ensure_ascii=False).encode()


def handle(environ: dict[str, Any]) -> Answer | None:
    """The recorder's answer to a request under PREFIX, or None for any other path."""
    path = environ.get("PATH_INFO", "")
    if path != PREFIX and not path.startswith(PREFIX + "/"):
        return None
    method = environ.get("REQUEST_METHOD", "GET")
    rest = path[len(PREFIX):]
    if method in ("GET", "HEAD") and rest in ("", "/"):
        return _json("200 OK", {"pushes": pushes()})
    if method == "GET" and rest == "/google/keys":
        return _local_keys()
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(min(length, MAX_BODY)).decode("utf-8", errors="replace") if length else ""
    headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
    if method == "POST" and rest.startswith("/apns/3/device/"):
        token = rest.removeprefix("/apns/3/device/")
        if not token or not all(c in "0123456789abcdefABCDEF" for c in token):
            return _json("400 Bad Request", {"reason": "BadDeviceToken"})
        if not headers.get("apns-topic"):
            return _json("400 Bad Request", {"reason": "MissingTopic"})
        if token.lower().startswith(GONE_PREFIX):
            return _json("410 Gone", {"reason": "Unregistered", "timestamp": int(time.time() * 1000)})
        record("apns", token, {k: v for k, v in headers.items() if k.startswith("apns-")}, body)
        return "200 OK", [("apns-id", secrets.token_hex(16))], b""
    if method == "POST" and rest == "/google/token":
        return _json("200 OK", {"access_token": "local-" + secrets.token_urlsafe(16), "expires_in": 3600,
                                "token_type": "Bearer"})
    if method == "PATCH" and rest.startswith("/google/loyaltyObject/"):
        if not headers.get("authorization", "").startswith("Bearer "):
            return _json("401 Unauthorized", {"error": {"code": 401, "message": "no bearer token"}})
        entry = record("google", rest.removeprefix("/google/loyaltyObject/"), {}, body)
        return _json("200 OK", json.loads(entry["body"] or "{}"))
    if method == "PATCH" and rest.startswith("/google/loyaltyClass/"):
        if not headers.get("authorization", "").startswith("Bearer "):
            return _json("401 Unauthorized", {"error": {"code": 401, "message": "no bearer token"}})
        entry = record("google_class", rest.removeprefix("/google/loyaltyClass/"), {}, body)
        return _json("200 OK", json.loads(entry["body"] or "{}"))
    return _json("404 Not Found", {"error": "not a wallet recorder endpoint"})
