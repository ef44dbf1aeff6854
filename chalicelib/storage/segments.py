"""Saved segment definitions in the `loyalty` table. Every call takes the tenant.

    <tid>#segments / segment#<sid>   a segment: name, description, filter; version, created_at

One partition per tenant (a tenant keeps tens of segments, not thousands), so
the list is one query. Segment ids start with their creation time, so the
list comes newest first. Changes are conditional on the version read, so two
admins editing one segment never silently overwrite each other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.storage import pagination
from chalicelib.storage.tables import LoyaltyRecord, get_item
from chalicelib.storage.transactions import Tx

SEGMENT_KIND = "segment"


def segments_pk(tenant_id: str) -> str:
    return f"{tenant_id}#segments"


def _sk(segment_id: str) -> str:
    return f"segment#{segment_id}"


def _as_dict(rec: LoyaltyRecord) -> dict[str, Any]:
    return {**rec.doc.as_dict(), "segment_id": rec.sk.split("#", 1)[1], "version": int(rec.version),
            "updated_at": rec.at}


def get(tenant_id: str, segment_id: str) -> dict[str, Any] | None:
    """The segment's doc with `segment_id`, `version` and `updated_at`, or None."""
    rec = get_item(LoyaltyRecord, segments_pk(tenant_id), _sk(segment_id))
    if rec is None:
        return None
    return _as_dict(rec)


def add(tx: Tx, tenant_id: str, segment_id: str, doc: dict[str, Any], at: datetime) -> None:
    """A new segment; fails the transaction if the id exists."""
    tx.save(LoyaltyRecord(segments_pk(tenant_id), _sk(segment_id), kind=SEGMENT_KIND, doc=doc, version=1, at=at),
            condition=LoyaltyRecord.pk.does_not_exist())


def replace(tx: Tx, tenant_id: str, segment_id: str, doc: dict[str, Any], version: int, at: datetime) -> None:
    """Replace a segment read at `version`; fails the transaction if it changed or was deleted since."""
    tx.save(LoyaltyRecord(segments_pk(tenant_id), _sk(segment_id), kind=SEGMENT_KIND, doc=doc, version=version + 1,
                          at=at), condition=LoyaltyRecord.version == version)


def delete(tx: Tx, tenant_id: str, segment_id: str, version: int) -> None:
    """Delete a segment read at `version`; fails the transaction if it changed or was deleted since."""
    tx.delete(LoyaltyRecord(segments_pk(tenant_id), _sk(segment_id)), condition=LoyaltyRecord.version == version)


def list_page(tenant_id: str, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """The tenant's segments, newest first."""
    pk = segments_pk(tenant_id)
    records, next_cursor = pagination.page_of(
        lambda size, start: LoyaltyRecord.query(pk, LoyaltyRecord.sk.startswith("segment#"), scan_index_forward=False,
                                                limit=size, page_size=size, last_evaluated_key=start,
                                                consistent_read=True),
        limit=limit, cursor=cursor, hash_attr="pk", hash_value=pk, key_attrs=("pk", "sk"),
    )
    return [_as_dict(r) for r in records], next_cursor
