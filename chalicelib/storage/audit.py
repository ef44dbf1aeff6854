"""Append-only audit trail per owner partition (tenant, agency, platform)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pynamodb.transactions import TransactWrite

from chalicelib.domain.identity import split_actor
from chalicelib.domain.ids import new_id
from chalicelib.domain.roles import Role
from chalicelib.schemas.audit import AuditEntry
from chalicelib.storage import pagination, tables
from chalicelib.storage.pagination import StoredPage
from chalicelib.storage.tables import AuditRecord

RETENTION = timedelta(days=400)


def entry(partition: str, *, action: str, actor: str, at: datetime, target: str | None = None,
          detail: dict[str, Any] | None = None) -> AuditRecord:
    """One audit record; a person's actor string (domain.identity.person_actor) is kept as id and e-mail."""
    actor_id, email = split_actor(actor)
    return AuditRecord(
        partition, f"{at.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{new_id(8)}", action=action, actor=actor_id,
        actor_email=email, target=target, detail=detail or {}, at=at,
        expires_at_epoch=int((at + RETENTION).timestamp()),
    )


def add(tx: TransactWrite, rec: AuditRecord) -> None:
    tx.save(rec)


def put(rec: AuditRecord) -> None:
    rec.save()


def list_entries(partition: str, limit: int, cursor: str | None, actor: str | None = None,
                 action: str | None = None) -> StoredPage[AuditEntry]:
    """Newest first; `actor` (a user id, an e-mail or a key id) and `action` (a prefix) filter the entries.

    Filtered in DynamoDB after the key condition, so a filtered page may hold
    fewer than `limit` entries while `has_more` still says whether to go on.
    """
    condition = _filter(actor, action)
    records, next_cursor = pagination.page_of(
        lambda size, start: AuditRecord.query(partition, scan_index_forward=False, limit=size, page_size=size,
                                              last_evaluated_key=start, filter_condition=condition),
        limit=limit, cursor=cursor, hash_attr="pk", hash_value=partition, key_attrs=("pk", "sk"),
    )
    items = [AuditEntry(at=r.at, action=r.action, actor=r.actor, actor_email=r.actor_email, target=r.target,
                        detail={k: str(v) for k, v in r.detail.as_dict().items()}) for r in records]
    return StoredPage(items, next_cursor)


def _filter(actor: str | None, action: str | None) -> Any:
    condition: Any = None
    if actor:
        value = actor.strip()
        condition = ((AuditRecord.actor == value) | (AuditRecord.actor == f"user:{value}")
                     | (AuditRecord.actor_email == value.lower())
                     | AuditRecord.actor.is_in(*(f"{role.value}:{value}" for role in Role)))
    if action:
        by_action = AuditRecord.action.startswith(action.strip())
        condition = by_action if condition is None else condition & by_action
    return condition


def delete_partition_page(partition: str, max_items: int) -> int:
    return tables.delete_partition_page(AuditRecord, partition, max_items)
