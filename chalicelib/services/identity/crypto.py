"""The stage's keys for staff sessions, derived from its one secret (each purpose its own key).

CSRF tokens are MACed with one key; refresh and access tokens kept between
requests are sealed (AES-GCM) with another, so a copy of the table alone
holds no usable Cognito token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib.settings import settings


def purpose_key(purpose: str) -> bytes:
    if not settings.link_secret:
        raise RuntimeError("LINK_SECRET is not set for this stage")
    return hmac.new(settings.link_secret.encode(), f"staff-identity|{purpose}".encode(), hashlib.sha256).digest()


def csrf_key() -> bytes:
    return purpose_key("csrf")


def seal(plaintext: str, context: str) -> str:
    """Encrypt a token, bound to what it belongs to (`context`: a session or sign-in id)."""
    if not plaintext:
        return ""
    nonce = os.urandom(12)
    sealed = AESGCM(purpose_key("seal")).encrypt(nonce, plaintext.encode(), context.encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(sealed: str, context: str) -> str | None:
    """The token, or None if it was sealed for another context or tampered with."""
    if not sealed:
        return None
    try:
        raw = base64.urlsafe_b64decode(sealed.encode())
        return AESGCM(purpose_key("seal")).decrypt(raw[:12], raw[12:], context.encode()).decode()
    except (InvalidTag, ValueError):
        return None


def token_hash(secret: str) -> str:
    """How invitation and reset tokens are kept: a keyed hash, so a copy of the table cannot forge a link."""
    return hmac.new(purpose_key("links"), secret.encode(), hashlib.sha256).hexdigest()
