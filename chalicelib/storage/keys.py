"""API key records. Looked up by (owner partition, key id); only the hash is stored."""

from __future__ import annotations

from datetime import datetime

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from chalicelib.schemas.keys import KeyInfo
from chalicelib.storage import pagination, tables
from chalicelib.storage.pagination import StoredPage
from chalicelib.storage.tables import ApiKeyRecord

ACTIVE = "active"
REVOKED = "revoked"


def get(partition: str, key_id: str) -> ApiKeyRecord | None:
    """Strongly consistent, so a revocation is effective on the very next request."""
    try:
        return ApiKeyRecord.get(partition, key_id, consistent_read=True)
    except DoesNotExist:
        return None


def effective_status(rec: ApiKeyRecord, at: datetime) -> str:
    if rec.status == REVOKED:
        return REVOKED
    if rec.expires_at is not None:
        return REVOKED if rec.expires_at <= at else "expiring"
    return ACTIVE


def to_info(rec: ApiKeyRecord, at: datetime) -> KeyInfo:
    return KeyInfo(
        key_id=rec.sk,
        prefix=rec.prefix,
        role=rec.role,
        name=rec.name,
        owner=rec.pk.split("#", 1)[-1],
        store_id=rec.store_id,
        status=effective_status(rec, at),
        created_at=rec.created_at,
        created_by=rec.created_by,
        revoked_at=rec.revoked_at,
        expires_at=rec.expires_at,
        rotated_to=rec.rotated_to,
    )


def new_record(
    partition: str,
    *,
    key_id: str,
    key_hash: str,
    role: str,
    name: str,
    prefix: str,
    agency_id: str | None,
    store_id: str | None,
    created_at: datetime,
    created_by: str,
) -> ApiKeyRecord:
    return ApiKeyRecord(
        partition,
        key_id,
        key_hash=key_hash,
        role=role,
        name=name,
        prefix=prefix,
        agency_id=agency_id,
        store_id=store_id,
        status=ACTIVE,
        created_at=created_at,
        created_by=created_by,
    )


def add_new(tx: TransactWrite, rec: ApiKeyRecord) -> None:
    tx.save(rec, condition=ApiKeyRecord.pk.does_not_exist())


def revoke(tx: TransactWrite, partition: str, key_id: str, at: datetime, rotated_to: str | None = None) -> None:
    actions: list[Action] = [ApiKeyRecord.status.set(REVOKED), ApiKeyRecord.revoked_at.set(at)]
    if rotated_to:
        actions.append(ApiKeyRecord.rotated_to.set(rotated_to))
    tx.update(
        ApiKeyRecord(partition, key_id),
        actions=actions,
        condition=ApiKeyRecord.pk.exists() & (ApiKeyRecord.status == ACTIVE),
    )


def expire_later(tx: TransactWrite, partition: str, key_id: str, expires_at: datetime, rotated_to: str) -> None:
    tx.update(
        ApiKeyRecord(partition, key_id),
        actions=[ApiKeyRecord.expires_at.set(expires_at), ApiKeyRecord.rotated_to.set(rotated_to)],
        condition=ApiKeyRecord.pk.exists() & (ApiKeyRecord.status == ACTIVE) & ApiKeyRecord.rotated_to.does_not_exist(),
    )


def list_keys(partition: str, limit: int, cursor: str | None) -> StoredPage[ApiKeyRecord]:
    return pagination.page_of(
        lambda size, start: ApiKeyRecord.query(
            partition, limit=size, page_size=size, last_evaluated_key=start, consistent_read=True
        ),
        limit=limit,
        cursor=cursor,
        hash_attr="pk",
        hash_value=partition,
        key_attrs=("pk", "sk"),
    )


def delete_partition_page(partition: str, max_items: int) -> int:
    return tables.delete_partition_page(ApiKeyRecord, partition, max_items)
