"""Append-only audit trail per owner partition (tenant, agency, platform)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pynamodb.transactions import TransactWrite

from chalicelib.domain.ids import new_id
from chalicelib.schemas.audit import AuditEntry
from chalicelib.storage import pagination, tables
from chalicelib.storage.pagination import StoredPage
from chalicelib.storage.tables import AuditRecord

RETENTION = timedelta(days=400)


def entry(partition: str, *, action: str, actor: str, at: datetime, target: str | None = None,
          detail: dict[str, Any] | None = None) -> AuditRecord:
    return AuditRecord(
        partition, f"{at.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{new_id(8)}", action=action, actor=actor,
        target=target, detail=detail or {}, at=at, expires_at_epoch=int((at + RETENTION).timestamp()),
    )


def add(tx: TransactWrite, rec: AuditRecord) -> None:
    tx.save(rec)


def put(rec: AuditRecord) -> None:
    rec.save()


def list_entries(partition: str, limit: int, cursor: str | None) -> StoredPage[AuditEntry]:
    """Newest first."""
    records, next_cursor = pagination.page_of(
        lambda size, start: AuditRecord.query(partition, scan_index_forward=False, limit=size, page_size=size,
                                              last_evaluated_key=start),
        limit=limit, cursor=cursor, hash_attr="pk", hash_value=partition, key_attrs=("pk", "sk"),
    )
    items = [AuditEntry(at=r.at, action=r.action, actor=r.actor, target=r.target,
                        detail={k: str(v) for k, v in r.detail.as_dict().items()}) for r in records]
    return StoredPage(items, next_cursor)


def delete_partition_page(partition: str, max_items: int) -> int:
    return tables.delete_partition_page(AuditRecord, partition, max_items)
