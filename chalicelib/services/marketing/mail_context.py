"""What a message template knows about one customer, and where to send it.

Personal fields (first and last name, phone, e-mail) are read from the
personal-data table at send time and go only into the rendered message,
never into the loyalty table, the queue message or logs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from chalicelib import clock
from chalicelib.domain.cards import CardState
from chalicelib.domain.templating import RenderError
from chalicelib.services.customers import customers
from chalicelib.services.program import catalog
from chalicelib.settings import settings
from chalicelib.storage import customers as records
from chalicelib.storage import loyalty

EXPIRY_HORIZON_DAYS = 365
"""`expiring_points` and `expiring_date` look this far ahead for the soonest expiry."""
UNSUBSCRIBE_PATH = "/v1/public/unsubscribe/one-click"


def variables(tenant_id: str, scope: str, customer_id: str, *, coupon_code: str | None = None,
              extra: dict[str, Any] | None = None, channel: str = "email") -> dict[str, Any]:
    """The template variables of one customer now; RenderError if the customer does not exist in `scope`."""
    if records.get(scope, customer_id) is None:
        raise RenderError(f"customer {customer_id!r} does not exist")
    at = clock.now()
    tenant = catalog.tenant(tenant_id)
    tz = ZoneInfo(catalog.timezone(tenant_id))
    person = customers.person(scope, customer_id)
    cards = _cards(scope, customer_id)
    expiring_points, expiring_date = _soonest_expiry(cards, at, tz)
    return {
        "first_name": person.first_name,
        "last_name": person.last_name,
        "balance": sum(card.wallet.spendable(at) for card in cards),
        "tier": next((card.tier for card in cards if card.tier), None),
        "expiring_points": expiring_points,
        "expiring_date": expiring_date,
        "coupon_code": coupon_code,
        "unsubscribe_url": unsubscribe_url(scope, customer_id, channel),
        "tenant_name": tenant.name if tenant else None,
        "extra": dict(extra or {}),
    }


def contact(scope: str, customer_id: str, channel: str) -> str | None:
    """The customer's phone (sms) or e-mail (email) from the personal-data table, if any."""
    person = customers.person(scope, customer_id)
    value = person.phone if channel == "sms" else person.email
    return str(value) if value else None


def unsubscribe_url(scope: str, customer_id: str, channel: str) -> str:
    """The one-click withdrawal link for this channel's consent (absolute once a public base URL is configured)."""
    token = customers.unsubscribe_token(scope, customer_id, "sms" if channel == "sms" else "email")
    return f"{settings.public_base_url}{UNSUBSCRIBE_PATH}?token={token}"


def list_unsubscribe_headers(scope: str, customer_id: str) -> dict[str, str]:
    """RFC 2369 + RFC 8058 one-click headers for an e-mail: mail clients show an unsubscribe button that POSTs
    to the same link. Only with an absolute link (PUBLIC_BASE_URL set): a relative one is useless in a header."""
    if not settings.public_base_url:
        return {}
    return {"List-Unsubscribe": f"<{unsubscribe_url(scope, customer_id, 'email')}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def _cards(scope: str, customer_id: str) -> list[CardState]:
    found = (loyalty.get_card(scope, number) for number in records.card_numbers(scope, customer_id))
    return [card for card in found if card is not None]


def _soonest_expiry(cards: list[CardState], at: datetime, tz: ZoneInfo) -> tuple[int, str | None]:
    """The points expiring on the soonest local day that has an expiry (all cards), and that day."""
    by_day: dict[str, int] = {}
    for card in cards:
        for moment, points in card.wallet.expiring(at, at + timedelta(days=EXPIRY_HORIZON_DAYS)):
            day = moment.astimezone(tz).date().isoformat()
            by_day[day] = by_day.get(day, 0) + points
    if not by_day:
        return 0, None
    day = min(by_day)
    return by_day[day], day
