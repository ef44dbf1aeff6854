"""A card's pass: finding the card, creating its pass once, and what the pass shows now.

Reads cards straight from storage (not through services.pos, which calls
services.wallet.updates on every change: the two areas must not import each
other), in the same places the till finds them: the tenant's own cards, then
its coalitions' shared ones.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib import clock
from chalicelib.domain import passes as rules
from chalicelib.domain.cards import CardState
from chalicelib.errors import ApiError, ErrorDetail
from chalicelib.schemas.assets import public_path
from chalicelib.settings import settings
from chalicelib.storage import assets, directory, loyalty
from chalicelib.storage import passes as store
from chalicelib.storage.documents.common import Versioned
from chalicelib.storage.documents.wallet_pass import PassDoc

if TYPE_CHECKING:
    from chalicelib.services.wallet.credentials import Credentials

NEGATIVE_CACHE_SECONDS = 60.0
"""A process that did not issue the tenant's first pass learns of it within a minute (updates before are lost)."""

_has_passes: dict[str, float] = {}
"""tenant id -> monotonic time until which "no pass issued" holds."""
_known: set[str] = set()
_lock = threading.Lock()


@dataclass(frozen=True)
class CardPass:
    """A card with its pass, as of now."""

    tenant_id: str
    card: CardState
    stored: Versioned[PassDoc]

    @property
    def serial(self) -> str:
        return self.stored.doc.serial

    @property
    def tag(self) -> int:
        return int(self.stored.doc.tag)


def card_not_found(number: str) -> ApiError:
    message = f"No card {number[:40]} in this program."
    return ApiError(404, "card_not_found", message, [ErrorDetail("number", message)])


def find_card(tenant_id: str, number: str) -> CardState | None:
    """The card wherever this tenant's till would find it, or None."""
    tenant = directory.get_tenant(tenant_id)
    for scope in [tenant_id, *(loyalty.coalition_scope(c) for c in (tenant.coalitions if tenant else []))]:
        card = loyalty.get_card(scope, number)
        if card is not None:
            return card
    return None


def ensure(tenant_id: str, number: str) -> CardPass:
    """The card's pass, made on first request (a serial and a token salt, both random); 404 without the card."""
    card = find_card(tenant_id, number)
    if card is None:
        raise card_not_found(number)
    for _ in range(3):
        serial = store.serial_of_card(tenant_id, number)
        if serial is not None:
            got = store.get_pass(tenant_id, serial)
            if got is not None:
                return CardPass(tenant_id, card, got)
        at = clock.now()
        doc = PassDoc(serial=rules.new_serial(), card_number=number, salt=rules.new_salt(),
                      tag=rules.next_tag(None, at), created_at=at.isoformat(), google=False,
                      face=rules.face_fingerprint(face(card)))
        if store.add_pass(tenant_id, doc, at):
            issued(tenant_id)
            return CardPass(tenant_id, card, Versioned(doc, 1))
    raise ApiError(409, "pass_busy", "The card's pass is being created by another request; retry shortly.")


def by_serial(tenant_id: str, serial: str) -> CardPass | None:
    """The pass and its card, or None (an unknown serial, a card gone with its tenant)."""
    got = store.get_pass(tenant_id, serial) if len(serial) <= 64 else None
    if got is None:
        return None
    card = find_card(tenant_id, got.doc.card_number)
    return CardPass(tenant_id, card, got) if card is not None else None


def face(card: CardState) -> rules.CardFace:
    """What the pass shows, as the till shows it: spendable and pending points now, the tier, the status."""
    at = clock.now()
    return rules.CardFace(number=card.number, balance=card.wallet.spendable(at), pending=card.wallet.pending(at),
                          tier=card.tier, status=card.status.value)


def branding(tenant_id: str) -> rules.Branding:
    """The tenant's name, its member-site primary colour and logo (`Tenant.branding`), so the pass looks like the
    site, and its first language (`Tenant.language`)."""
    tenant = directory.get_tenant(tenant_id)
    if tenant is None:
        return rules.Branding(name=tenant_id)
    return rules.Branding.of_tenant(tenant.name, tenant.branding.primary_colour,
                                    rules.tenant_language(tenant.language), tenant.branding.logo_asset_id)


def logo(tenant_id: str, brand: rules.Branding) -> bytes | None:
    """The bytes of the tenant's logo for its Apple passes (None without one, or if its file is gone)."""
    return assets.read(tenant_id, brand.logo_id) if brand.logo_id else None


def google_callback_url(tenant_id: str) -> str:
    return f"{settings.public_base_url}/v1/wallet/google/{tenant_id}/callback"


def google_class(tenant_id: str, class_id: str = "") -> dict[str, Any]:
    """The tenant's loyalty class as it should look now (its id: google.class_id; empty to fingerprint it). Its
    logo is the tenant's member-site logo if it chose one (a public https URL when deployed), else the stack's
    `GoogleWalletLogoUrl`."""
    brand = branding(tenant_id)
    logo = f"{settings.public_base_url}{public_path(tenant_id, brand.logo_id)}" if brand.logo_id \
        else settings.google_logo_url
    return rules.google_class(class_id, brand, logo, google_callback_url(tenant_id))


def pass_token(creds: Credentials, tenant_id: str, doc: PassDoc) -> str:
    return rules.pass_token(creds.token_secret, tenant_id, doc.serial, doc.salt)


def token_valid(creds: Credentials, tenant_id: str, doc: PassDoc, presented: str | None) -> bool:
    return rules.token_valid(creds.token_secret, tenant_id, doc.serial, doc.salt, presented)


def web_service_url(tenant_id: str) -> str:
    """The pass's webServiceURL: Apple's endpoints hang under it (`<this>/v1/devices/...`)."""
    return f"{settings.public_base_url}/v1/wallet/apple/{tenant_id}"


def issued(tenant_id: str) -> None:
    """This process made the tenant's first pass: updates look for passes from now on, without waiting a minute."""
    with _lock:
        _known.add(tenant_id)
        _has_passes.pop(tenant_id, None)


def forget() -> None:
    with _lock:
        _known.clear()
        _has_passes.clear()


def tenant_has_passes(tenant_id: str) -> bool:
    """Whether the tenant ever issued a pass: once yes, always; "no" is re-read after a minute."""
    now = time.monotonic()
    with _lock:
        if tenant_id in _known:
            return True
        until = _has_passes.get(tenant_id)
        if until is not None and until > now:
            return False
    found = store.has_passes(tenant_id)
    with _lock:
        if found:
            _known.add(tenant_id)
        else:
            _has_passes[tenant_id] = now + NEGATIVE_CACHE_SECONDS
    return found
