"""Delivery records in the loyalty table: exactly-once claims, weekly caps, per-source counters, mail settings.

<tid>#delivery#<dedup key>          / delivery   state sending (a lease) -> sent | suppressed | failed
<scope>#customer#<cid>              / mailcap#<week>  messages sent to the customer that ISO week (TTL 3 weeks)
<tid>#mailstats#<kind>#<source id>  / counts     doc: {status: n, "<status>:<reason>": n}
<tid>#mail                          / settings   the tenant's mail settings
No personal data here: recipients are customer ids only.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from pynamodb.exceptions import DeleteError, PutError, UpdateError

from chalicelib.storage.customers import customer_pk
from chalicelib.storage.documents.common import raw
from chalicelib.storage.documents.delivery import DeliveryRecord, MailSettingsDoc
from chalicelib.storage.tables import LoyaltyRecord, condition_failed, get_item

DELIVERY_SK = "delivery"
COUNTS_SK = "counts"
SETTINGS_SK = "settings"
DELIVERY_TTL = timedelta(days=120)
CAP_TTL = timedelta(days=21)


def delivery_pk(tenant_id: str, dedup_key: str) -> str:
    return f"{tenant_id}#delivery#{dedup_key}"


def stats_pk(tenant_id: str, source_kind: str, source_id: str) -> str:
    return f"{tenant_id}#mailstats#{source_kind}#{source_id}"


def settings_pk(tenant_id: str) -> str:
    return f"{tenant_id}#mail"



# --- exactly-once claims ------------------------------------------------------------

@dataclass(frozen=True)
class Claim:
    """A claim's answer: our token when the message is ours to send, else the record that holds it."""

    token: str | None
    existing: DeliveryRecord


def claim(tenant_id: str, dedup_key: str, now: datetime, lease: timedelta) -> Claim:
    """Take the message: a token if ours to send, else no token and the existing record.

    A claim is a lease: a worker that died mid-send leaves `sending` behind,
    which another copy may take over once `lease_until` has passed.
    """
    token = uuid.uuid4().hex
    doc = DeliveryRecord(state="sending", token=token, lease_until=(now + lease).isoformat())
    record = LoyaltyRecord(delivery_pk(tenant_id, dedup_key), DELIVERY_SK, kind="delivery", doc=doc.dump(), at=now,
                           expires_at_epoch=int((now + DELIVERY_TTL).timestamp()))
    expired = (LoyaltyRecord.doc["state"] == "sending") & (LoyaltyRecord.doc["lease_until"] < now.isoformat())
    try:
        record.save(condition=LoyaltyRecord.pk.does_not_exist() | expired)
        return Claim(token, DeliveryRecord())
    except PutError as err:
        if not condition_failed(err):
            raise
    existing = get_item(LoyaltyRecord, delivery_pk(tenant_id, dedup_key), DELIVERY_SK)
    return Claim(None, DeliveryRecord.of(existing.doc) if existing else DeliveryRecord(state="sending"))


def finish(tenant_id: str, dedup_key: str, token: str, state: str, now: datetime, *, reason: str | None = None,
           provider_id: str | None = None) -> bool:
    """Record the outcome under our claim; False if the claim was lost (another worker took it over)."""
    given = {"state": state, "token": token, "reason": reason, "provider_id": provider_id, "at": now.isoformat()}
    doc = DeliveryRecord.load({k: v for k, v in given.items() if v is not None})
    record = LoyaltyRecord(delivery_pk(tenant_id, dedup_key), DELIVERY_SK, kind="delivery", doc=doc.dump(), at=now,
                           expires_at_epoch=int((now + DELIVERY_TTL).timestamp()))
    try:
        record.save(condition=LoyaltyRecord.doc["token"] == token)
        return True
    except PutError as err:
        if condition_failed(err):
            return False
        raise


def release(tenant_id: str, dedup_key: str, token: str) -> None:
    """Give the claim back (the send may be retried); a claim already taken over is left alone."""
    record = LoyaltyRecord(delivery_pk(tenant_id, dedup_key), DELIVERY_SK)
    try:
        record.delete(condition=(LoyaltyRecord.doc["token"] == token) & (LoyaltyRecord.doc["state"] == "sending"))
    except DeleteError as err:
        if not condition_failed(err):
            raise


def get_delivery(tenant_id: str, dedup_key: str) -> DeliveryRecord | None:
    rec = get_item(LoyaltyRecord, delivery_pk(tenant_id, dedup_key), DELIVERY_SK)
    return DeliveryRecord.of(rec.doc) if rec else None


# --- weekly cap --------------------------------------------------------------------------

def sent_in_week(scope: str, customer_id: str, week: str) -> int:
    rec = get_item(LoyaltyRecord, customer_pk(scope, customer_id), f"mailcap#{week}")
    return int(rec.version) if rec else 0


def count_against_cap(scope: str, customer_id: str, week: str, cap: int, now: datetime) -> bool:
    """Add one message to the customer's week unless it already holds `cap` (0 = no cap); False if full."""
    record = LoyaltyRecord(customer_pk(scope, customer_id), f"mailcap#{week}")
    condition = None if cap == 0 else (LoyaltyRecord.pk.does_not_exist() | (LoyaltyRecord.version < cap))
    try:
        record.update(actions=[LoyaltyRecord.version.add(1), LoyaltyRecord.kind.set("mailcap"),
                               LoyaltyRecord.at.set(now),
                               LoyaltyRecord.expires_at_epoch.set(int((now + CAP_TTL).timestamp()))],
                      condition=condition)
        return True
    except UpdateError as err:
        if condition_failed(err):
            return False
        raise


def uncount(scope: str, customer_id: str, week: str) -> None:
    """Take back a message that was counted but not sent (the provider was unavailable)."""
    record = LoyaltyRecord(customer_pk(scope, customer_id), f"mailcap#{week}")
    try:
        record.update(actions=[LoyaltyRecord.version.add(-1)],
                      condition=LoyaltyRecord.pk.exists() & (LoyaltyRecord.version > 0))
    except UpdateError as err:
        if not condition_failed(err):
            raise


# --- per-source counters -------------------------------------------------------------

def add_counts(tenant_id: str, source_kind: str, source_id: str, status: str, reason: str | None,
               now: datetime) -> None:
    """One more message of `status` (and `status:reason`) for a campaign or trigger; ADDs, so workers never clash."""
    record = LoyaltyRecord(stats_pk(tenant_id, source_kind, source_id), COUNTS_SK)
    record.update(actions=[LoyaltyRecord.doc.set(LoyaltyRecord.doc | {}), LoyaltyRecord.kind.set("mailstats"),
                           LoyaltyRecord.at.set(now)])
    names = [status] + ([f"{status}:{reason.split(':', 1)[0]}"] if reason else [])
    record.update(actions=[LoyaltyRecord.doc[name].add(1) for name in names])


def counts(tenant_id: str, source_kind: str, source_id: str) -> dict[str, int]:
    rec = get_item(LoyaltyRecord, stats_pk(tenant_id, source_kind, source_id), COUNTS_SK)
    return {k: int(v) for k, v in raw(rec.doc).items()} if rec else {}


# --- settings -----------------------------------------------------------------------------

def get_settings(tenant_id: str) -> MailSettingsDoc | None:
    rec = get_item(LoyaltyRecord, settings_pk(tenant_id), SETTINGS_SK)
    return MailSettingsDoc.of(rec.doc) if rec else None


def put_settings(tenant_id: str, doc: MailSettingsDoc, now: datetime) -> None:
    LoyaltyRecord(settings_pk(tenant_id), SETTINGS_SK, kind="mail_settings", doc=doc.dump(), at=now).save()
