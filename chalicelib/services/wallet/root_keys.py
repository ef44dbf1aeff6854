"""Google's root signing keys for Google Wallet callbacks: fetched on a schedule, kept until they expire.

Google publishes them at `https://pay.google.com/gp/m/issuer/keys` (setting `google_callback_keys_url`) as
`{"keys": [{"keyValue": base64 DER P-256 key, "protocolVersion": "ECv2SigningOnly", "keyExpiration": ms}]}` and
rotates them, listing a new key before the old one expires. The `wallet_google_keys` schedule (app.py) calls
`refresh`: the fetched keys replace the stored ones, and a stored key that is no longer listed stays until its
`keyExpiration` (a callback signed before the rotation still verifies). A failed fetch (no answer, an error status,
an answer with no usable key) changes nothing and is logged. The callback verifier (google_callbacks) takes the
stored keys (re-read at most every 5 minutes per container) besides any in the credentials document.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from chalicelib.domain import passes as rules
from chalicelib.observability import logger
from chalicelib.services.wallet import http
from chalicelib.settings import settings
from chalicelib.storage import passes as store

CACHE_SECONDS = 300.0
MAX_KEYS = 20

RootKey = tuple[str, str, str]
"""(keyValue, protocolVersion, keyExpiration), as the credentials document holds them too."""

_cache: list[tuple[float, tuple[RootKey, ...]]] = []
_lock = threading.Lock()


def public_key(value: str) -> ec.EllipticCurvePublicKey | None:
    """A base64 DER SubjectPublicKeyInfo of a P-256 key, or None."""
    try:
        key = load_der_public_key(base64.b64decode(value, validate=True))
    except (ValueError, binascii.Error):
        return None
    return key if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1) else None


def current() -> tuple[RootKey, ...]:
    """The stored keys (what the last good fetch gave, plus older ones not yet expired), cached 5 minutes."""
    now = time.monotonic()
    with _lock:
        if _cache and _cache[0][0] > now:
            return _cache[0][1]
    stored, _ = store.google_root_keys()
    keys = tuple((k["keyValue"], k.get("protocolVersion", ""), k.get("keyExpiration", "")) for k in stored)
    with _lock:
        _cache[:] = [(now + CACHE_SECONDS, keys)]
    return keys


def forget() -> None:
    with _lock:
        _cache.clear()


def usable(answer: Any) -> list[dict[str, str]]:
    """The keys of Google's answer that can verify a callback (a P-256 key, our protocol); [] for anything else."""
    if not isinstance(answer, dict) or not isinstance(answer.get("keys"), list):
        return []
    found = []
    for entry in answer["keys"][:MAX_KEYS]:
        if not isinstance(entry, dict) or not isinstance(entry.get("keyValue"), str):
            continue
        expiration = str(entry.get("keyExpiration", ""))
        if entry.get("protocolVersion") != rules.CALLBACK_PROTOCOL or not expiration.isdigit():
            continue
        if public_key(entry["keyValue"]) is not None:
            found.append({"keyValue": entry["keyValue"], "protocolVersion": rules.CALLBACK_PROTOCOL,
                          "keyExpiration": expiration})
    return found


def refresh(now: datetime) -> str:
    """Fetch Google's keys and store them with the older ones not yet expired: "stored" or "kept" (logged)."""
    url = settings.google_callback_keys_url
    if not url:
        logger.info("google root keys: no URL configured, nothing fetched")
        return "kept"
    outcome = http.request("GET", url, b"", {"Accept": "application/json"})
    fetched = usable(outcome.json) if outcome.ok else []
    if not fetched:
        logger.warning("google root keys not refreshed: the old keys are kept",
                       extra={"status_code": outcome.status_code, "error": outcome.error or "no usable key"})
        return "kept"
    listed = {k["keyValue"] for k in fetched}
    old, _ = store.google_root_keys()
    kept = [k for k in old if k.get("keyValue") not in listed and rules.key_usable(k.get("keyExpiration", ""), now)]
    store.save_google_root_keys(fetched + kept, now)
    forget()
    logger.info("google root keys refreshed", extra={"fetched": len(fetched), "kept_until_expiry": len(kept)})
    return "stored"
