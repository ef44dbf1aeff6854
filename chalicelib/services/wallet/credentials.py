"""The wallet's keys and certificates, read once per process from configuration.

One JSON document, the same locally and deployed: in `wallet.json` of a
directory (`WALLET_CREDENTIALS=dir:<path>`; `make run` generates a test set,
infra/local/wallet_keys.py) or in a Secrets Manager secret
(`WALLET_CREDENTIALS=secret:<name>`):

    {"apple_certificate": PEM, "apple_key": PEM, "apple_wwdr": PEM,
     "google_service_account": {"client_email": ..., "private_key": PEM, "private_key_id": ...},
     "google_issuer_id": "3388...", "token_secret": "<random, 32+ characters>"}

`token_secret` derives each pass's authentication token (see cards.pass_token),
so no token is stored anywhere.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from chalicelib.errors import ApiError
from chalicelib.settings import settings
from chalicelib.storage import passes as store

FILE_NAME = "wallet.json"


@dataclass(frozen=True)
class Credentials:
    apple_certificate: x509.Certificate
    apple_key: RSAPrivateKey
    apple_wwdr: x509.Certificate
    apple_certificate_pem: bytes
    apple_key_pem: bytes
    google_email: str
    google_key: RSAPrivateKey
    google_key_id: str
    google_issuer_id: str
    token_secret: bytes
    google_callback_root_keys: tuple[tuple[str, str, str], ...] = ()
    """Google's root signing keys for callbacks: (keyValue base64 DER, protocolVersion, keyExpiration ms), as
    https://pay.google.com/gp/m/issuer/keys lists them (locally: infra/local/wallet_keys.py's test key)."""


_cache: dict[str, Credentials] = {}
_lock = threading.Lock()


def not_configured() -> ApiError:
    return ApiError(503, "wallet_not_configured", "Wallet passes are not configured on this deployment.")


def load(source: str | None = None) -> Credentials:
    """The credentials of `source` (the configured one by default), parsed once per process; 503 when unset."""
    source = settings.wallet_credentials if source is None else source
    with _lock:
        hit = _cache.get(source)
    if hit is not None:
        return hit
    kind, _, where = source.partition(":")
    if kind == "dir" and where and (Path(where) / FILE_NAME).is_file():
        raw = json.loads((Path(where) / FILE_NAME).read_text(encoding="utf-8"))
    elif kind == "secret" and where:
        raw = json.loads(store.secret_text(where))
    else:
        raise not_configured()
    parsed = parse(raw)
    with _lock:
        _cache[source] = parsed
    return parsed


def parse(raw: dict[str, Any]) -> Credentials:
    """The JSON document as keys and certificates (a malformed one fails loudly, at first use)."""
    apple_key = serialization.load_pem_private_key(raw["apple_key"].encode(), password=None)
    account = raw["google_service_account"]
    google_key = serialization.load_pem_private_key(account["private_key"].encode(), password=None)
    if not isinstance(apple_key, RSAPrivateKey) or not isinstance(google_key, RSAPrivateKey):
        raise ValueError("the wallet's keys must be RSA keys")
    secret = str(raw["token_secret"])
    if len(secret) < 32:
        raise ValueError("token_secret must have at least 32 characters")
    return Credentials(
        apple_certificate=x509.load_pem_x509_certificate(raw["apple_certificate"].encode()),
        apple_key=apple_key, apple_wwdr=x509.load_pem_x509_certificate(raw["apple_wwdr"].encode()),
        apple_certificate_pem=raw["apple_certificate"].encode(), apple_key_pem=raw["apple_key"].encode(),
        google_email=str(account["client_email"]), google_key=google_key,
        google_key_id=str(account.get("private_key_id") or ""), google_issuer_id=str(raw["google_issuer_id"]),
        token_secret=secret.encode(),
        google_callback_root_keys=tuple((str(k["keyValue"]), str(k.get("protocolVersion", "")),
                                         str(k.get("keyExpiration", ""))) for k in raw.get("google_callback_keys", {})
                                        .get("keys", [])))


def forget() -> None:
    """Read the credentials again on next use (tests; a rotated secret is picked up by new containers anyway)."""
    with _lock:
        _cache.clear()
