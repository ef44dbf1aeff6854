"""Saved segment definitions in the `loyalty` table. Every call takes the tenant.

    <tid>#segments / segment#<sid>   a segment: name, description, filter; version, created_at

One partition per tenant (a tenant keeps tens of segments, not thousands), so
the list is one query. Segment ids start with their creation time, so the
list comes newest first. Changes are conditional on the version read, so two
admins editing one segment never silently overwrite each other.
"""

from __future__ import annotations

from datetime import datetime

from chalicelib.storage import pagination
from chalicelib.storage.documents.common import Versioned
from chalicelib.storage.documents.segment import SegmentDoc
from chalicelib.storage.pagination import StoredPage
from chalicelib.storage.tables import LoyaltyRecord, get_item
from chalicelib.storage.transactions import Tx

SEGMENT_KIND = "segment"


def segments_pk(tenant_id: str) -> str:
    return f"{tenant_id}#segments"


def _sk(segment_id: str) -> str:
    return f"segment#{segment_id}"


def _segment(rec: LoyaltyRecord) -> Versioned[SegmentDoc]:
    doc = SegmentDoc.of(rec.doc)
    doc.segment_id, doc.updated_at = rec.sk.split("#", 1)[1], rec.at
    return Versioned(doc, int(rec.version))


def get(tenant_id: str, segment_id: str) -> Versioned[SegmentDoc] | None:
    """The segment (with `segment_id` and `updated_at` from the record) and its version, or None."""
    rec = get_item(LoyaltyRecord, segments_pk(tenant_id), _sk(segment_id))
    if rec is None:
        return None
    return _segment(rec)


def add(tx: Tx, tenant_id: str, segment_id: str, doc: SegmentDoc, at: datetime) -> None:
    """A new segment; fails the transaction if the id exists."""
    tx.save(LoyaltyRecord(segments_pk(tenant_id), _sk(segment_id), kind=SEGMENT_KIND, doc=doc.dump(), version=1,
                          at=at), condition=LoyaltyRecord.pk.does_not_exist())


def replace(tx: Tx, tenant_id: str, segment_id: str, doc: SegmentDoc, version: int, at: datetime) -> None:
    """Replace a segment read at `version`; fails the transaction if it changed or was deleted since."""
    tx.save(LoyaltyRecord(segments_pk(tenant_id), _sk(segment_id), kind=SEGMENT_KIND, doc=doc.dump(),
                          version=version + 1, at=at), condition=LoyaltyRecord.version == version)


def delete(tx: Tx, tenant_id: str, segment_id: str, version: int) -> None:
    """Delete a segment read at `version`; fails the transaction if it changed or was deleted since."""
    tx.delete(LoyaltyRecord(segments_pk(tenant_id), _sk(segment_id)), condition=LoyaltyRecord.version == version)


def list_page(tenant_id: str, limit: int, cursor: str | None) -> StoredPage[Versioned[SegmentDoc]]:
    """The tenant's segments, newest first."""
    pk = segments_pk(tenant_id)
    records, next_cursor = pagination.page_of(
        lambda size, start: LoyaltyRecord.query(pk, LoyaltyRecord.sk.startswith("segment#"), scan_index_forward=False,
                                                limit=size, page_size=size, last_evaluated_key=start,
                                                consistent_read=True),
        limit=limit, cursor=cursor, hash_attr="pk", hash_value=pk, key_attrs=("pk", "sk"),
    )
    return StoredPage([_segment(r) for r in records], next_cursor)
