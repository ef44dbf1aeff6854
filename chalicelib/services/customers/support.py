"""The call-center view: one customer found by phone or card, with what an operator needs to answer a call.

Read-only by construction: this module only reads. The operator sees the
balance, tier and recent ledger entries (each with the program rule version
that produced it, to explain "why did I get these points"), and the consents;
contact details are masked, since an operator confirms them with the caller
rather than reading them out.
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers

from chalicelib.domain.phones import normalise
from chalicelib.errors import ApiError, ErrorDetail
from chalicelib.schemas.customers import Consent
from chalicelib.schemas.pos import Card, LedgerEntry
from chalicelib.services.customers import customers
from chalicelib.services.customers.customers import Found
from chalicelib.services.pos import cards
from chalicelib.services.pos.purchases import Located
from chalicelib.storage import customers as records
from chalicelib.storage import loyalty
from chalicelib.storage.documents.person import PersonDoc

RECENT_ENTRIES = 20


@dataclass(frozen=True)
class SupportView:
    customer_id: str
    name: str | None
    phone: str | None
    """Masked."""
    email: str | None
    """Masked."""
    status: str
    consents: list[Consent]
    cards: list[Card]
    recent: list[tuple[str, LedgerEntry]]
    """(card number, entry), newest first, across the customer's points cards."""


def lookup(tenant_id: str, phone: str | None, card: str | None) -> SupportView:
    """The customer with this phone (any format) or card number, in the tenant's bases; 404 otherwise."""
    found = _find(tenant_id, phone, card)
    at = loyalty.now()
    person = customers.person(found.scope, found.customer_id)
    views: list[Card] = []
    recent: list[tuple[str, LedgerEntry]] = []
    for number in records.card_numbers(found.scope, found.customer_id):
        state = loyalty.get_card(found.scope, number)
        if state is None:
            continue
        gift = cards.is_gift(Located(found.scope, state))
        views.append(cards.view(state, at, gift=gift))
        if not gift:
            entries, _ = loyalty.list_entries(found.scope, number, RECENT_ENTRIES, None)
            recent += [(number, cards.redacted(e, tenant_id)) for e in entries]
    recent.sort(key=lambda pair: pair[1].at, reverse=True)
    consents = [Consent.model_validate(c.dump()) for _, c in sorted(found.doc.consents.items())]
    return SupportView(customer_id=found.customer_id, name=_name(person), phone=mask_phone(person.phone),
                       email=mask_email(person.email), status=found.doc.status,
                       consents=consents, cards=views, recent=recent[:RECENT_ENTRIES])


def mask_phone(e164: str | None) -> str | None:
    """`+79161234567` -> `+7 *** ***-45-67`: the country code and the last four digits only."""
    if not e164:
        return None
    try:
        country = phonenumbers.parse(e164).country_code
    except phonenumbers.NumberParseException:
        country = None
    last = e164[-4:]
    return f"+{country} *** ***-{last[:2]}-{last[2:]}" if country else f"*** ***-{last[:2]}-{last[2:]}"


def mask_email(email: str | None) -> str | None:
    """`anna.k@example.com` -> `a***@example.com`."""
    if not email or "@" not in email:
        return None
    local, domain = email.split("@", 1)
    return f"{local[:1]}***@{domain}"


def _name(person: PersonDoc) -> str | None:
    parts = [person.first_name, person.middle_name, person.last_name]
    return " ".join(p for p in parts if p) or None


def _find(tenant_id: str, phone: str | None, card: str | None) -> Found:
    if phone:
        try:
            e164 = normalise(phone)
        except ValueError as exc:
            raise ApiError(400, "validation_error", str(exc), [ErrorDetail("phone", str(exc))]) from None
        found = customers.find_by_phone(tenant_id, e164)
    elif card:
        found = customers.find_by_card(tenant_id, card)
    else:
        raise ApiError(400, "validation_error", "Give phone or card.", [ErrorDetail("phone", "phone or card")])
    if found is None:
        raise ApiError(404, "customer_not_found", "No customer matches.",
                       [ErrorDetail("phone" if phone else "card", "not found")])
    return found
