"""Test keys for wallet passes on the local stack and in tests: made once, kept in `<state dir>/wallet/wallet.json`.

`make run` (infra/local/run.py) and the test fixtures call `ensure()`: if the
file exists nothing happens, else a throwaway chain is generated: a root CA
(stands in for Apple's root), a "WWDR" intermediate signed by it, and a Pass
Type ID certificate for the configured pass type id signed by the intermediate;
plus an RSA key for a made-up Google service account and the pass-token secret.
The file has the shape of the deployed secret (services/wallet/credentials.py),
with the root CA added (`apple_root_ca`) so a test or a curious developer can
verify a pass: `openssl smime -verify -binary -inform DER -in signature
-content manifest.json -CAfile ca.pem`. Nothing here is trusted by any real
device or by Google: real keys are configured as docs/guides/wallet-passes.md says.

Written to a temporary file and hard-linked into place, so two processes
starting at once (parallel tests) never see half a file, and the first one wins.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import secrets
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

FILE_NAME = "wallet.json"
GOOGLE_ACCOUNT = "wallet@loyalty-local.iam.gserviceaccount.com"
GOOGLE_ISSUER_ID = "3388000000000000001"
VALID_DAYS = 3650


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _certificate(subject: x509.Name, key: rsa.RSAPrivateKey, issuer: x509.Name, issuer_key: rsa.RSAPrivateKey,
                 ca: bool) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
               .not_valid_after(now + timedelta(days=VALID_DAYS))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=not ca, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False, key_agreement=False,
                                            key_cert_sign=ca, crl_sign=ca, encipher_only=False,
                                            decipher_only=False), critical=True))
    return builder.sign(issuer_key, hashes.SHA256())


def generate(pass_type_id: str, team_id: str) -> dict[str, Any]:
    """A complete test credentials document (slow-ish: four RSA keys, about a second)."""
    root_key, wwdr_key, pass_key, google_key = _key(), _key(), _key(), _key()
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Loyalty Local Test Root CA (not Apple)")])
    wwdr_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Loyalty Local Test WWDR (not Apple)")])
    pass_name = x509.Name([
        x509.NameAttribute(NameOID.USER_ID, pass_type_id),
        x509.NameAttribute(NameOID.COMMON_NAME, f"Pass Type ID: {pass_type_id}"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, team_id),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Loyalty Local Test"),
    ])
    root = _certificate(root_name, root_key, root_name, root_key, ca=True)
    wwdr = _certificate(wwdr_name, wwdr_key, root_name, root_key, ca=True)
    certificate = _certificate(pass_name, pass_key, wwdr_name, wwdr_key, ca=False)
    return {
        "apple_certificate": _cert_pem(certificate), "apple_key": _pem(pass_key), "apple_wwdr": _cert_pem(wwdr),
        "apple_root_ca": _cert_pem(root),
        "google_service_account": {"type": "service_account", "client_email": GOOGLE_ACCOUNT,
                                   "private_key_id": secrets.token_hex(20), "private_key": _pem(google_key)},
        "google_issuer_id": GOOGLE_ISSUER_ID,
        "token_secret": secrets.token_urlsafe(32),
        **google_callback_keys(),
    }


def google_callback_keys() -> dict[str, Any]:
    """A test root signing key for Google Wallet callbacks (P-256): its public half as Google publishes root keys
    (`google_callback_keys`), and its private half (`google_callback_root_private_key`) for local tools and tests
    to sign callbacks as Google would. Never a real Google key."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return {
        "google_callback_keys": {"keys": [{"keyValue": base64.b64encode(public).decode(),
                                           "protocolVersion": "ECv2SigningOnly",
                                           "keyExpiration": str(4_102_444_800_000)}]},
        "google_callback_root_private_key": key.private_bytes(serialization.Encoding.PEM,
                                                              serialization.PrivateFormat.PKCS8,
                                                              serialization.NoEncryption()).decode(),
    }


def ensure(directory: Path, pass_type_id: str, team_id: str) -> bool:
    """Generate the test credentials into `directory` unless they exist; True if this call made them."""
    target = directory / FILE_NAME
    if target.exists():
        _add_callback_keys(target)
        return False
    directory.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".wallet-", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(generate(pass_type_id, team_id), out, indent=1)
        os.chmod(temporary, 0o600)
        try:
            os.link(temporary, target)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(temporary)


def _add_callback_keys(target: Path) -> None:
    """A credentials file made before callbacks gets its test callback key (written whole, then renamed).

    Under an exclusive lock, re-read inside it: test processes started together add one key, not one each.
    """
    if "google_callback_keys" in json.loads(target.read_text(encoding="utf-8")):
        return
    with open(target.parent / ".wallet.lock", "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        raw = json.loads(target.read_text(encoding="utf-8"))
        if "google_callback_keys" in raw:
            return
        raw.update(google_callback_keys())
        handle, temporary = tempfile.mkstemp(prefix=".wallet-", dir=target.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(raw, out, indent=1)
        os.chmod(temporary, 0o600)
        os.replace(temporary, target)


def ensure_configured() -> bool:
    """`ensure()` for the configured `dir:` credentials (local and test stages); False when configured otherwise."""
    from chalicelib.settings import settings

    kind, _, where = settings.wallet_credentials.partition(":")
    if kind != "dir" or not where:
        return False
    return ensure(Path(where), settings.wallet_pass_type_id, settings.wallet_team_id)
