"""A card's balance, tier or status changed: mark its pass updated and queue the push (services/wallet/updates.py).

Services call `card_changed` after their operation committed (a purchase, a
refund, an adjustment, a block, the daily sweep's expiry or tier review). A
tenant that never issued a pass costs one read per process and minute (the
marker, cached; cards.tenant_has_passes); otherwise the card's pass, if any,
gets a new last-updated tag and one job goes to the wallet queue. Never
raises: the operation already happened; a failure is logged. Light on
purpose (no HTTP client, no cryptography): the till's purchase imports it.

Cards of a coalition's shared base are changed under the coalition's scope;
their passes are the partner tenant's, so changes made through a partner (its
purchases and refunds) reach them at once, and the others (the coalition's
sweep, points maturing with time) with the partner's daily refresh
(`handle_job`, queued after each tenant's sweep), which pushes every pass whose
card shows something else than the pass last did.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from chalicelib import clock
from chalicelib.domain import passes as rules
from chalicelib.observability import logger
from chalicelib.schemas.wallet import ClassUpdateMessage, PassUpdateMessage
from chalicelib.services.wallet import cards
from chalicelib.settings import settings
from chalicelib.storage import directory, loyalty, queues
from chalicelib.storage import passes as store

REFRESH_JOB = "wallet_refresh"
REFRESH_BUDGET_SECONDS = 10.0
"""A refresh job walks passes for this long, then queues itself again from where it stopped."""
PAGE = 100


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


def tenant_look_changed(tenant_id: str) -> str | None:
    """The tenant's name or branding changed: re-push its passes and PATCH its Google class if they show it.

    Called by the tenancy services after the change committed. A tenant that issued passes and whose passes now
    show another name or colours (`rules.look_fingerprint`) gets one refresh job that marks every pass updated
    (each device then downloads it again). Only a tenant whose class was offered in a save link (Google may hold
    it) and whose class now shows something else (its fingerprint) gets a new class tag and one job on the wallet
    queue; the new class tag, or None. Never raises (a failure is logged).
    """
    try:
        if cards.tenant_has_passes(tenant_id) and store.swap_look(
                tenant_id, rules.look_fingerprint(cards.branding(tenant_id)), clock.now()):
            queues.send(settings.jobs_queue, {"job": REFRESH_JOB, "tenant_id": tenant_id, "cursor": None,
                                              "all": True})
    except Exception:
        logger.exception("wallet passes' refresh not queued", extra={"tenant_id": tenant_id})
    try:
        for _ in range(3):  # a concurrent change of the look wrote first: compare with what it recorded
            state = store.google_class_state(tenant_id)
            if state is None:
                return None
            tag, fingerprint, version = state
            now_print = rules.class_fingerprint(cards.google_class(tenant_id))
            if now_print == fingerprint:
                return None
            new_tag = rules.next_tag(tag, clock.now())
            try:
                store.set_google_class(tenant_id, now_print, new_tag, version, clock.now())
            except store.Changed:
                continue
            queues.send(settings.wallet_queue, ClassUpdateMessage(tenant_id=tenant_id, tag=new_tag)
                        .model_dump(mode="json"))
            return str(new_tag)
        raise RuntimeError("the tenant's class record kept changing")
    except Exception:
        logger.exception("wallet class update not queued", extra={"tenant_id": tenant_id})
        return None


def cards_changed(tenant_id: str, numbers: list[str]) -> None:
    for number in dict.fromkeys(numbers):
        card_changed(tenant_id, number)


def customer_erased(tenant_id: str, numbers: list[str], scope: str | None = None) -> int:
    """An erased customer's cards keep no pass: devices unregistered, pass and link deleted; registrations removed.

    With the pass gone its old token is refused (401), no change of the card queues an APNs push or a Google
    PATCH, and a job already queued finds no pass and sends nothing. A card of the erasing tenant's own base has
    passes under that tenant only; a coalition's shared card (`scope` the coalition's, or found there) may have a
    pass under every partner that handed one out, current or former: each of those goes too (`pass_holders`).
    """
    removed = 0
    for number in dict.fromkeys(numbers):
        for holder in pass_holders(tenant_id, number, scope):
            removed += store.delete_card_pass(holder, number)
    return removed


def pass_holders(tenant_id: str, number: str, scope: str | None = None) -> list[str]:
    """The tenants whose wallet passes show this card of the tenant's customer: for a card of the tenant's own
    base the tenant; for a coalition's shared card each partner (current or former, the tenant among them) that has
    no card of its own under that number. `scope` is where the customer's card is (the customer's base); without
    it, the tenant's own base is assumed when it has a card of that number, else the coalition that has one.

    A pass is stored under the tenant that handed it out (cards.ensure) but shows the card wherever that tenant's
    tills find it: a partner's pass of a shared card is a pass of the same customer's card.
    """
    tenant = directory.get_tenant(tenant_id)
    if scope is None:
        scope = tenant_id if loyalty.get_card(tenant_id, number) is not None else None
        for coalition in (tenant.coalitions if tenant and scope is None else []):
            if loyalty.get_card(loyalty.coalition_scope(coalition), number) is not None:
                scope = loyalty.coalition_scope(coalition)
                break
    prefix = loyalty.coalition_scope("")
    if scope is None or not scope.startswith(prefix) or tenant is None:
        return [tenant_id]
    found = directory.get_coalition(tenant.agency_id, scope[len(prefix):])
    partners = [tenant_id, *(found.members if found else []), *(found.former_members if found else [])]
    # A partner with a card of its own under the number shows that one on its pass (its tills look there first).
    return [p for p in dict.fromkeys(partners) if loyalty.get_card(p, number) is None]


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


def start_refresh(scope: str) -> None:
    """After the daily sweep of a scope: queue the refresh of its passes (only a tenant that issued any)."""
    try:
        if scope.startswith(loyalty.coalition_scope("")) or not cards.tenant_has_passes(scope):
            return
        queues.send(settings.jobs_queue, {"job": REFRESH_JOB, "tenant_id": scope, "cursor": None})
    except Exception:
        logger.exception("wallet refresh not queued", extra={"tenant_id": scope})


def handle_job(message: dict[str, Any]) -> None:
    """Push every pass whose card now shows something else than the pass last did (`all`: every pass).

    What no write announces: pending points that matured with time, and any
    change whose update job was lost. A pass is compared by fingerprint (its
    face when last made or pushed); only a difference marks it updated. With
    `all` (the tenant's name or colours changed) every pass is marked.
    """
    tenant_id, cursor, everything = str(message["tenant_id"]), message.get("cursor"), bool(message.get("all"))
    deadline = time.monotonic() + REFRESH_BUDGET_SECONDS
    marked = 0
    while True:
        serials, cursor = store.list_serials(tenant_id, PAGE, cursor)
        for serial in serials:
            found = cards.by_serial(tenant_id, serial)
            if found is None:
                continue
            now_face = rules.face_fingerprint(cards.face(found.card))
            if now_face == found.stored.doc.face and not everything:
                continue
            tag = mark_updated(tenant_id, serial, clock.now())
            if tag is not None:
                queues.send(settings.wallet_queue, PassUpdateMessage(tenant_id=tenant_id, serial=serial, tag=tag)
                            .model_dump(mode="json"))
                marked += 1
        if cursor is None:
            logger.info("wallet refresh done", extra={"tenant_id": tenant_id, "marked": marked})
            return
        if time.monotonic() >= deadline:
            queues.send(settings.jobs_queue, {"job": REFRESH_JOB, "tenant_id": tenant_id, "cursor": cursor,
                                              "all": everything})
            logger.info("wallet refresh continues", extra={"tenant_id": tenant_id, "marked": marked})
            return
