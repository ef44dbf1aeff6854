"""Google Wallet's save and delete callbacks: verified as Google signs them, applied once, for the path's tenant only.

Google posts a PaymentMethodToken-style message, protocol ECv2SigningOnly
(https://developers.google.com/wallet/generic/use-cases/use-callbacks-for-saves-and-deletions; the checks are
Tink's PaymentMethodTokenRecipient's):
1. `intermediateSigningKey.signedKey` is signed (ECDSA P-256, SHA-256, DER) by a root signing key Google publishes
   (fetched on a schedule, services/wallet/root_keys.py, and any in the wallet credentials' `google_callback_keys`),
   over length-prefixed "Google",
   "ECv2SigningOnly" and the signed key; the root key and the intermediate key must not have expired;
2. `signature` is the intermediate key's signature over length-prefixed "GooglePayPasses", our issuer id,
   "ECv2SigningOnly" and `signedMessage`;
3. the message (classId, objectId, eventType save|del, nonce, expTimeMillis) has not expired, names this
   tenant's class and one of its objects, and its nonce was never applied (a replay changes nothing).
Anything else is 401 `invalid_callback` with nothing changed.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from chalicelib import clock
from chalicelib.domain import passes as rules
from chalicelib.errors import ApiError, ErrorDetail, not_found
from chalicelib.schemas.common import SLUG_PATTERN
from chalicelib.schemas.wallet import GoogleCallback, GoogleCallbackAccepted
from chalicelib.services.wallet import google, root_keys
from chalicelib.services.wallet.credentials import Credentials, load
from chalicelib.storage import passes as store

NONCE_KEPT = timedelta(days=30)
"""A nonce is remembered this long past its message's expiry (Google's messages hold for minutes)."""
MAX_VALIDITY_MS = 24 * 3600 * 1000
"""A message holding longer than a day is refused: its nonce is remembered past its expiry, so it cannot replay."""


def refused(reason: str) -> ApiError:
    return ApiError(401, "invalid_callback", f"The Google Wallet callback was refused: {reason}.",
                    [ErrorDetail("signedMessage", reason)])


def receive(tenant_id: str, body: GoogleCallback) -> GoogleCallbackAccepted:
    """Verify the callback and record the save or deletion on the tenant's pass; 401 for anything not genuine."""
    if not re.match(SLUG_PATTERN, tenant_id):
        raise not_found("Tenant")  # never a '#' reaching into another partition
    creds = load()
    roots = (*creds.google_callback_root_keys, *root_keys.current())
    if not roots:
        raise ApiError(503, "wallet_not_configured", "Google Wallet callbacks are not configured on this deployment.")
    event = _verified(creds, roots, body)
    now = clock.now()
    now_ms = int(now.timestamp() * 1000)
    if event.expires_ms <= now_ms:
        raise refused("the message has expired")
    if event.expires_ms - now_ms > MAX_VALIDITY_MS:
        raise refused("the message holds too long to be remembered")
    prefix = google.object_id(creds, tenant_id, "")
    if event.class_id != google.class_id(creds, tenant_id) or not event.object_id.startswith(prefix):
        raise refused("the message names another tenant's pass")
    serial = event.object_id[len(prefix):]
    if not serial or len(serial) > 64:
        raise refused("the message names no pass")
    keep_until = now + timedelta(milliseconds=event.expires_ms - now_ms) + NONCE_KEPT
    outcome = store.apply_google_callback(tenant_id, serial, event.nonce, event.event_type == "save", now,
                                          keep_until)
    if outcome == "replayed":
        raise refused("this message was already received")
    if outcome == "gone":
        raise ApiError(404, "pass_not_found", "No such pass.", [ErrorDetail("objectId", "not found")])
    return GoogleCallbackAccepted(event=event.event_type, serial_number=serial)


def _verified(creds: Credentials, root_keys_now: tuple[root_keys.RootKey, ...], body: GoogleCallback
              ) -> rules.CallbackEvent:
    """The message, once both signatures hold; 401 otherwise."""
    if body.protocol_version != rules.CALLBACK_PROTOCOL:
        raise refused("the protocol is not ECv2SigningOnly")
    now = clock.now()
    signed_key = body.intermediate_signing_key.signed_key
    key_bytes = rules.length_value(rules.CALLBACK_KEY_SENDER, rules.CALLBACK_PROTOCOL, signed_key)
    roots = [_public_key(value) for value, protocol, expiration in root_keys_now
             if protocol == rules.CALLBACK_PROTOCOL and (not expiration or rules.key_usable(expiration, now))]
    if not any(_holds(root, signature, key_bytes) for root in roots if root is not None
               for signature in body.intermediate_signing_key.signatures):
        raise refused("the intermediate signing key is not signed by a Google root key")
    try:
        key = json.loads(signed_key)
        intermediate = _public_key(str(key["keyValue"]))
        usable = rules.key_usable(key["keyExpiration"], now)
    except (ValueError, KeyError, TypeError):
        raise refused("the intermediate signing key is malformed") from None
    if intermediate is None or not usable:
        raise refused("the intermediate signing key is malformed or expired")
    message_bytes = rules.length_value(rules.CALLBACK_SENDER, creds.google_issuer_id, rules.CALLBACK_PROTOCOL,
                                       body.signed_message)
    if not _holds(intermediate, body.signature, message_bytes):
        raise refused("the signature does not hold")
    event = rules.callback_event(body.signed_message)
    if event is None:
        raise refused("the message is malformed")
    return event


_public_key = root_keys.public_key


def _holds(key: ec.EllipticCurvePublicKey, signature: str, data: bytes) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True
