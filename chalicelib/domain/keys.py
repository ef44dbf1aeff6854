"""API key format, generation and verification (pure).

A key looks like `lp_pos_coffee-house.k7hx2mq9rtaw.<43 url-safe chars>`:
  * `lp_pos` tells its role at a glance (`plt`, `agy`, `adm`, `pos`, `sup`);
  * `coffee-house` is the owner scope (tenant or agency id, or `platform`),
    which is also the storage partition the key record lives in;
  * `k7hx2mq9rtaw` is the key id, shown in listings and audit logs;
  * the rest is 256 bits of randomness, never stored.

Only SHA-256 of the whole key is stored. A slow hash (bcrypt) protects
low-entropy passwords; a 256-bit random secret cannot be brute-forced, and the
authorizer runs on every request, so a fast hash is the right tool here.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from chalicelib.domain.ids import new_id
from chalicelib.domain.roles import ROLE_BY_CODE, ROLE_CODES, Role

KEY_PREFIX = "lp"
SECRET_BYTES = 32
_KEY_RE = re.compile(
    r"lp_(?P<code>[a-z]{3})_(?P<owner>[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?)"
    r"\.(?P<key_id>[a-z2-9]{12})\.(?P<secret>[A-Za-z0-9_-]{43})"
)
MAX_KEY_LENGTH = 128


@dataclass(frozen=True)
class ParsedKey:
    role: Role
    owner: str
    key_id: str


@dataclass(frozen=True)
class NewKey:
    """A freshly minted key: `plaintext` is shown once and then forgotten."""

    plaintext: str
    key_id: str
    key_hash: str
    display_prefix: str


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def mint(role: Role, owner: str) -> NewKey:
    key_id = new_id(12)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    prefix = f"{KEY_PREFIX}_{ROLE_CODES[role]}_{owner}.{key_id}"
    plaintext = f"{prefix}.{secret}"
    return NewKey(plaintext=plaintext, key_id=key_id, key_hash=hash_key(plaintext), display_prefix=prefix)


def parse(plaintext: str) -> ParsedKey | None:
    """Split a presented key into its public parts; None if malformed."""
    if not plaintext or len(plaintext) > MAX_KEY_LENGTH:
        return None
    match = _KEY_RE.fullmatch(plaintext)
    if not match:
        return None
    role = ROLE_BY_CODE.get(match["code"])
    if role is None:
        return None
    return ParsedKey(role=role, owner=match["owner"], key_id=match["key_id"])


def bearer_token(authorization_header: str | None) -> str | None:
    """Extract the token from `Authorization: Bearer <key>` (scheme case-insensitive)."""
    if not authorization_header:
        return None
    scheme, _, token = authorization_header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def matches(plaintext: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key(plaintext), stored_hash)
