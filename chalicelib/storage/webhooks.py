"""Webhook endpoints and their delivery log, in the loyalty table.

<tid>#webhooks                  / endpoint#<id>  doc: the endpoint (url, events, secrets, failure state); version
<tid>#webhook-log#<endpoint id> / <event id>     doc: one event's delivery (status, attempts, last outcome);
                                                 30-day TTL; gsi1pk = the same partition, gsi1sk =
                                                 <first attempt time>#<event id> (the log newest first)

The log item is also the exactly-once guard: an attempt is claimed with a
conditional write (attempt n only after attempt n-1, never after `delivered`
or `failed`), and its outcome is recorded only by the claim's holder.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import DeleteError, PutError, UpdateError

from chalicelib.domain.ids import new_id
from chalicelib.storage import pagination
from chalicelib.storage.documents.common import Versioned
from chalicelib.storage.documents.webhook import EndpointDoc, WebhookDeliveryDoc
from chalicelib.storage.pagination import StoredPage
from chalicelib.storage.tables import LoyaltyRecord, claim_turn, condition_failed, get_item
from chalicelib.storage.tables import stamp as stamp  # the services stamp their own times with it

ENDPOINT_PREFIX = "endpoint#"
LOG_RETENTION = timedelta(days=30)
FINAL = ("delivered", "failed")


class Changed(Exception):
    """The endpoint was written by someone else since it was read."""



def endpoints_pk(tenant_id: str) -> str:
    return f"{tenant_id}#webhooks"


def log_pk(tenant_id: str, endpoint_id: str) -> str:
    return f"{tenant_id}#webhook-log#{endpoint_id}"


# --- endpoints --------------------------------------------------------------------------------

def get_endpoint(tenant_id: str, endpoint_id: str) -> Versioned[EndpointDoc] | None:
    rec = get_item(LoyaltyRecord, endpoints_pk(tenant_id), ENDPOINT_PREFIX + endpoint_id)
    return Versioned(EndpointDoc.of(rec.doc), int(rec.version)) if rec else None


def add_endpoint(tenant_id: str, endpoint_id: str, doc: EndpointDoc, at: datetime) -> None:
    LoyaltyRecord(endpoints_pk(tenant_id), ENDPOINT_PREFIX + endpoint_id, kind="webhook_endpoint", doc=doc.dump(),
                  version=1, at=at).save(condition=LoyaltyRecord.pk.does_not_exist())


def save_endpoint(tenant_id: str, endpoint_id: str, doc: EndpointDoc, version: int, at: datetime) -> int:
    """Replace the endpoint if still at `version` (and not deleted meanwhile); the new version, or Changed."""
    try:
        LoyaltyRecord(endpoints_pk(tenant_id), ENDPOINT_PREFIX + endpoint_id, kind="webhook_endpoint",
                      doc=doc.dump(), version=version + 1, at=at).save(condition=LoyaltyRecord.version == version)
    except PutError as err:
        if condition_failed(err):
            raise Changed(endpoint_id) from None
        raise
    return version + 1


def delete_endpoint(tenant_id: str, endpoint_id: str) -> bool:
    try:
        LoyaltyRecord(endpoints_pk(tenant_id), ENDPOINT_PREFIX + endpoint_id).delete(
            condition=LoyaltyRecord.pk.exists())
    except DeleteError as err:
        if condition_failed(err):
            return False
        raise
    return True


def all_endpoints(tenant_id: str) -> list[EndpointDoc]:
    """Every endpoint of the tenant (at most a handful): one query."""
    return [EndpointDoc.of(rec.doc) for rec in LoyaltyRecord.query(
        endpoints_pk(tenant_id), LoyaltyRecord.sk.startswith(ENDPOINT_PREFIX), consistent_read=True)]


def list_endpoints(tenant_id: str, limit: int, cursor: str | None) -> StoredPage[EndpointDoc]:
    pk = endpoints_pk(tenant_id)
    records, next_cursor = pagination.page_of(
        lambda size, start: LoyaltyRecord.query(pk, LoyaltyRecord.sk.startswith(ENDPOINT_PREFIX), limit=size,
                                                page_size=size, last_evaluated_key=start, consistent_read=True),
        limit=limit, cursor=cursor, hash_attr="pk", hash_value=pk, key_attrs=("pk", "sk"))
    return StoredPage([EndpointDoc.of(r.doc) for r in records], next_cursor)


# --- the delivery log -------------------------------------------------------------------------

def _log_record(tenant_id: str, endpoint_id: str, event_id: str) -> LoyaltyRecord:
    return LoyaltyRecord(log_pk(tenant_id, endpoint_id), event_id)


def claim_attempt(tenant_id: str, endpoint_id: str, event_id: str, event_type: str, attempt: int, now: datetime,
                  lease: timedelta) -> str | None:
    """Take attempt `attempt` of an event; a token for `finish_attempt`, or None when it is not this attempt's
    turn (already delivered or failed, already attempted, or another worker is attempting it right now)."""
    token = new_id(16)
    doc = WebhookDeliveryDoc(type=event_type, status="pending", attempts=attempt, token=token,
                             claimed_at=stamp(now), first_attempt_at=stamp(now), last_attempt_at=stamp(now),
                             last_status_code=None, last_error=None, duration_ms=None, next_attempt_at=None)
    pk = log_pk(tenant_id, endpoint_id)
    fresh = LoyaltyRecord(pk, event_id, kind="webhook_delivery", doc=doc.dump(), at=now,
                          expires_at_epoch=int((now + LOG_RETENTION).timestamp()), gsi1pk=pk,
                          gsi1sk=f"{stamp(now)}#{event_id}")
    return claim_turn(fresh, token, attempt, now, lease, FINAL,
                      (LoyaltyRecord.doc["last_attempt_at"].set(stamp(now)),))


def finish_attempt(tenant_id: str, endpoint_id: str, event_id: str, token: str, changes: dict[str, Any]) -> bool:
    """Record an attempt's outcome, only if this claim still holds it."""
    d = LoyaltyRecord.doc
    try:
        _log_record(tenant_id, endpoint_id, event_id).update(
            actions=[d[k].set(v) for k, v in changes.items()], condition=d["token"] == token)
    except UpdateError as err:
        if condition_failed(err):
            return False
        raise
    return True


def record_dropped(tenant_id: str, endpoint_id: str, event_id: str, event_type: str, reason: str,
                   now: datetime) -> None:
    """A delivery not attempted (the endpoint is disabled): shown in the log as failed, unless already final."""
    pk = log_pk(tenant_id, endpoint_id)
    existing = get_item(LoyaltyRecord, pk, event_id)
    before = WebhookDeliveryDoc.of(existing.doc) if existing else None
    if before is not None and before.status in FINAL:
        return
    doc = {**(before.dump() if before is not None else {"type": event_type, "attempts": 0,
                                                   "first_attempt_at": None, "last_attempt_at": None,
                                                   "last_status_code": None, "duration_ms": None}),
           "status": "failed", "last_error": reason, "next_attempt_at": None, "token": None}
    LoyaltyRecord(pk, event_id, kind="webhook_delivery", doc=doc, at=existing.at if existing else now,
                  expires_at_epoch=int((now + LOG_RETENTION).timestamp()), gsi1pk=pk,
                  gsi1sk=existing.gsi1sk if existing else f"{stamp(now)}#{event_id}").save()


def _delivery(rec: LoyaltyRecord) -> WebhookDeliveryDoc:
    doc = WebhookDeliveryDoc.of(rec.doc)
    doc.event_id = rec.sk
    return doc


def get_delivery(tenant_id: str, endpoint_id: str, event_id: str) -> WebhookDeliveryDoc | None:
    rec = get_item(LoyaltyRecord, log_pk(tenant_id, endpoint_id), event_id)
    return _delivery(rec) if rec else None


def list_deliveries(tenant_id: str, endpoint_id: str, limit: int, cursor: str | None
                    ) -> StoredPage[WebhookDeliveryDoc]:
    """Newest first (by first attempt), through the sparse gsi1: eventually consistent, like any index."""
    pk = log_pk(tenant_id, endpoint_id)
    records, next_cursor = pagination.page_of(
        lambda size, start: LoyaltyRecord.due_and_partner.query(pk, scan_index_forward=False, limit=size,
                                                                page_size=size, last_evaluated_key=start),
        limit=limit, cursor=cursor, hash_attr="gsi1pk", hash_value=pk, key_attrs=("pk", "sk", "gsi1pk", "gsi1sk"))
    return StoredPage([_delivery(r) for r in records], next_cursor)
