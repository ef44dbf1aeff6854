"""A card's balance, tier or status changed: mark its pass updated and queue the push (services/wallet/updates.py).

Services call `card_changed` after their operation committed (a purchase, a
refund, an adjustment, a block, the daily sweep's expiry or tier review). A
tenant that never issued a pass costs one read per process and minute (the
marker, cached; cards.tenant_has_passes); otherwise the card's pass, if any,
gets a new last-updated tag and one job goes to the wallet queue. Never
raises: the operation already happened; a failure is logged. Light on
purpose (no HTTP client, no cryptography): the till's purchase imports it.

Cards of a coalition's shared base are changed under the coalition's scope;
their passes are the partner tenant's, so only changes made through a
partner (its purchases and refunds) reach them, not the coalition's sweeps.
"""

from __future__ import annotations

from datetime import datetime

from chalicelib import clock
from chalicelib.domain import passes as rules
from chalicelib.observability import logger
from chalicelib.schemas.wallet import PassUpdateMessage
from chalicelib.services.wallet import cards
from chalicelib.settings import settings
from chalicelib.storage import passes as store
from chalicelib.storage import queues


def card_changed(tenant_id: str, number: str) -> str | None:
    """Mark the card's pass updated and queue its push; the new tag, or None (no pass, or a failure logged)."""
    try:
        if not cards.tenant_has_passes(tenant_id):
            return None
        serial = store.serial_of_card(tenant_id, number)
        if serial is None:
            return None
        tag = mark_updated(tenant_id, serial, clock.now())
        if tag is None:
            return None
        queues.send(settings.wallet_queue, PassUpdateMessage(tenant_id=tenant_id, serial=serial, tag=tag)
                    .model_dump(mode="json"))
        return str(tag)
    except Exception:
        logger.exception("wallet pass update not queued", extra={"tenant_id": tenant_id})
        return None


def cards_changed(tenant_id: str, numbers: list[str]) -> None:
    for number in dict.fromkeys(numbers):
        card_changed(tenant_id, number)


def mark_updated(tenant_id: str, serial: str, at: datetime, attempts: int = 5) -> int | None:
    """A new last-updated tag on the pass (re-read if it changed meanwhile); None if the pass is gone."""
    for _ in range(attempts):
        got = store.get_pass(tenant_id, serial)
        if got is None:
            return None
        doc = got.doc
        doc.tag = rules.next_tag(int(doc.tag), at)
        try:
            store.save_pass(tenant_id, doc, got.version, at)
        except store.Changed:
            continue
        return int(doc.tag)
    raise RuntimeError(f"the pass {serial[:6]}... kept changing")
