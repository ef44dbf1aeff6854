"""Idempotency-Key records: claim, complete, release. Kept 24 hours (TTL)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import PutError, UpdateError

from chalicelib.storage.documents.common import Versioned
from chalicelib.storage.documents.idempotency import IdempotencyRecord
from chalicelib.storage.tables import LoyaltyRecord, doc_of, get_item

SK = "idempotency"
RETENTION = timedelta(hours=24)


def _pk(partition: str, route: str, key: str) -> str:
    return f"{partition}#idem#{route}#{key}"


def get(partition: str, route: str, key: str) -> Versioned[IdempotencyRecord] | None:
    rec = get_item(LoyaltyRecord, _pk(partition, route, key), SK)
    return Versioned(IdempotencyRecord.load(doc_of(rec)), int(rec.version)) if rec else None


def claim(partition: str, route: str, key: str, fingerprint: str, at: datetime, lease: timedelta,
          *, replacing_version: int | None = None) -> bool:
    """Mark the key in flight; False if someone else holds it (or completed it) meanwhile."""
    rec = LoyaltyRecord(_pk(partition, route, key), SK, kind="idempotency",
                        doc=IdempotencyRecord(state="in_flight", fingerprint=fingerprint,
                                              lease_until=(at + lease).isoformat()).dump(),
                        version=(replacing_version or 0) + 1, at=at,
                        expires_at_epoch=int((at + RETENTION).timestamp()))
    condition = (LoyaltyRecord.pk.does_not_exist() if replacing_version is None
                 else LoyaltyRecord.version == replacing_version)
    try:
        rec.save(condition=condition)
    except PutError as err:
        if err.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def complete(partition: str, route: str, key: str, status: int, body: Any, headers: dict[str, str]) -> None:
    rec = LoyaltyRecord(_pk(partition, route, key), SK)
    try:
        rec.update(actions=[LoyaltyRecord.doc["state"].set("completed"), LoyaltyRecord.doc["status"].set(status),
                            LoyaltyRecord.doc["body"].set(body), LoyaltyRecord.doc["headers"].set(headers)],
                   condition=LoyaltyRecord.pk.exists())
    except UpdateError:
        pass  # the claim expired and was taken over: the newer request records its own answer


def release(partition: str, route: str, key: str) -> None:
    """Forget a claim whose request failed with a server error, so a retry runs again."""
    LoyaltyRecord(_pk(partition, route, key), SK).delete()
