"""Signed public links (unsubscribe, survey invitations): HMAC-SHA256 over the claims, no storage needed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any


class BadLink(ValueError):
    """The token is malformed, tampered with, for another purpose, or expired."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: str, purpose: str, claims: dict[str, Any], expires_at: datetime | None = None) -> str:
    """A compact token `<claims>.<mac>`; the purpose is inside the MAC so a link for one use never works for another."""
    if not secret:
        raise RuntimeError("LINK_SECRET is not set for this stage")
    body = {"p": purpose, **claims}
    if expires_at is not None:
        body["exp"] = int(expires_at.timestamp())
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()[:20]
    return f"{payload}.{_b64(mac)}"


def verify(secret: str, purpose: str, token: str, now: datetime) -> dict[str, Any]:
    """The claims of a valid token; BadLink otherwise (compared in constant time)."""
    if not secret:
        raise RuntimeError("LINK_SECRET is not set for this stage")
    try:
        payload, mac = token.split(".")
        expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()[:20]
        if not hmac.compare_digest(expected, _unb64(mac)):
            raise BadLink("signature mismatch")
        body = json.loads(_unb64(payload))
    except (ValueError, TypeError) as exc:
        raise BadLink(str(exc)) from None
    if not isinstance(body, dict) or body.pop("p", None) != purpose:
        raise BadLink("wrong purpose")
    exp = body.pop("exp", None)
    if exp is not None and now.timestamp() > int(exp):
        raise BadLink("expired")
    return body
