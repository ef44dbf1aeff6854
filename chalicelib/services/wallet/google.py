"""Google Wallet: the "Save to Google Wallet" link of a card, and the PATCH that updates its loyalty object.

The link is `https://pay.google.com/gp/v/save/<JWT>`: claims iss (the service
account's e-mail), aud "google", typ "savetowallet", iat, origins and
payload.loyaltyClasses/loyaltyObjects, signed RS256 with the service account's
key (cryptography; no JWT library needed for one algorithm). Saving creates the
class and the object on Google's side; afterwards a change of the card PATCHes
`<api>/loyaltyObject/<id>` with a bearer token from the service account (the
OAuth 2.0 JWT-bearer grant, scope wallet_object.issuer), and a change of the
tenant's look (name, colour, logo, language) PATCHes `<api>/loyaltyClass/<id>`
(Google ignores the class of save links once it holds one).
"""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from chalicelib import clock
from chalicelib.domain import passes as rules
from chalicelib.schemas.wallet import ClassUpdateMessage, GoogleSaveLink
from chalicelib.services.wallet import cards, http
from chalicelib.services.wallet.credentials import Credentials, load
from chalicelib.settings import settings
from chalicelib.storage import passes as store
from chalicelib.storage import queues

SCOPE = "https://www.googleapis.com/auth/wallet_object.issuer"
TOKEN_MARGIN_SECONDS = 300

_token: dict[str, tuple[float, str]] = {}
_token_lock = threading.Lock()


def sign(claims: dict[str, Any], creds: Credentials) -> str:
    """An RS256 JWT of the claims, with the service account's key (its key id in the header)."""
    signing_input = rules.jwt_signing_input(claims, creds.google_key_id or None)
    signature = creds.google_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return rules.jwt(signing_input, signature)


def class_id(creds: Credentials, tenant_id: str) -> str:
    return rules.google_id(creds.google_issuer_id, f"loyalty-{tenant_id}")


def object_id(creds: Credentials, tenant_id: str, serial: str) -> str:
    return rules.google_id(creds.google_issuer_id, f"{tenant_id}-{serial}")


def origins() -> list[str]:
    """Where the save button may be shown: the console and the public API's origins."""
    found = [o for o in (*settings.console_origins, _origin(settings.public_base_url),
                         _origin(settings.console_base_url)) if o]
    return list(dict.fromkeys(found))


def save_link(tenant_id: str, number: str) -> GoogleSaveLink:
    """The card's save link (its pass is made on first request); the pass is then updated on Google's side too."""
    creds = load()
    found = cards.ensure(tenant_id, number)
    if not found.stored.doc.google:
        _mark_google(found)
    cls = cards.google_class(tenant_id, class_id(creds, tenant_id))
    tag = rules.next_tag(None, clock.now())
    if store.offer_google_class(tenant_id, rules.class_fingerprint(cls), tag, clock.now()):
        # The tenant's first link since classes are tracked: Google may hold a class from an older link (without
        # today's fields): one PATCH brings it up to date (404, final, when Google holds none yet).
        queues.send(settings.wallet_queue, ClassUpdateMessage(tenant_id=tenant_id, tag=tag).model_dump(mode="json"))
    oid = object_id(creds, tenant_id, found.serial)
    obj = rules.google_object(oid, cls["id"], cards.face(found.card), cards.branding(tenant_id).language)
    token = sign(rules.save_claims(creds.google_email, origins(), cls, obj, clock.now()), creds)
    return GoogleSaveLink(serial_number=found.serial, object_id=oid, save_url=rules.GOOGLE_SAVE_URL + token)


def update_object(tenant_id: str, found: cards.CardPass, creds: Credentials) -> http.Outcome:
    """PATCH the loyalty object with the card as it is now (404: never saved to a wallet, nothing to update)."""
    oid = object_id(creds, tenant_id, found.serial)
    body = rules.google_object(oid, class_id(creds, tenant_id), cards.face(found.card),
                               cards.branding(tenant_id).language)
    return _patch(f"loyaltyObject/{oid}", body, creds)


def update_class(tenant_id: str, creds: Credentials) -> http.Outcome:
    """PATCH the tenant's loyalty class with its look as it is now: Google keeps the class a save link inserted
    first and ignores the class of later links (404: no member ever saved a card, so Google holds no class)."""
    cid = class_id(creds, tenant_id)
    return _patch(f"loyaltyClass/{cid}", cards.google_class(tenant_id, cid), creds)


def _patch(path: str, body: dict[str, Any], creds: Credentials) -> http.Outcome:
    token = access_token(creds)
    if isinstance(token, http.Outcome):
        return token
    return http.request("PATCH", f"{settings.google_wallet_api}/{path}", rules.canonical_json(body),
                        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})


def access_token(creds: Credentials) -> str | http.Outcome:
    """A bearer token for the Wallet API, kept until 5 minutes before it expires; the failed outcome otherwise."""
    now = time.time()
    with _token_lock:
        hit = _token.get(creds.google_email)
    if hit is not None and hit[0] > now:
        return hit[1]
    issued = int(now)
    assertion = sign({"iss": creds.google_email, "scope": SCOPE, "aud": settings.google_token_url,
                      "iat": issued, "exp": issued + 3600}, creds)
    body = urlencode({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}).encode()
    outcome = http.request("POST", settings.google_token_url, body,
                           {"Content-Type": "application/x-www-form-urlencoded"})
    if not outcome.ok or not isinstance(outcome.json, dict) or "access_token" not in outcome.json:
        return outcome if not outcome.ok else http.Outcome(outcome.status_code, "no access_token in the answer", 0)
    lifetime = int(outcome.json.get("expires_in") or 3600)
    token = str(outcome.json["access_token"])
    with _token_lock:
        _token[creds.google_email] = (now + max(lifetime - TOKEN_MARGIN_SECONDS, 60), token)
    return token


def forget_token() -> None:
    with _token_lock:
        _token.clear()


def _mark_google(found: cards.CardPass) -> None:
    """Remember that the card went to Google Wallet, so its updates PATCH the object (once; a lost race is fine)."""
    doc = found.stored.doc.model_copy()
    doc.google = True
    try:
        store.save_pass(found.tenant_id, doc, found.stored.version, clock.now())
    except store.Changed:
        latest = store.get_pass(found.tenant_id, found.serial)
        if latest is not None and not latest.doc.google:
            latest.doc.google = True
            store.save_pass(found.tenant_id, latest.doc, latest.version, clock.now())


def _origin(url: str) -> str:
    parts = url.split("/")
    return "/".join(parts[:3]) if url.startswith(("http://", "https://")) and len(parts) >= 3 else ""
