"""Plastic card series in the `loyalty` table. Every call takes the tenant.

    <tid>#series        / series#<sid>  a series: program, format, count, progress (`created`), status; version
    <tid>#series#<sid>  / chunk#<k>     the numbers of chunk k, claimed before its cards are written
    <tid>#card#<number> / card          the cards themselves (as `storage.loyalty` writes them), with `series_id`

Series records share one partition per tenant so the tenant's series can be
listed (newest first: series ids start with their creation time). A chunk
record fixes which numbers chunk k is made of before any card is written, so a
redelivered job rewrites the same numbers instead of inventing more; the print
list is read back from the chunk records in order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from pynamodb.exceptions import PutError

from chalicelib.domain.cards import CardState
from chalicelib.storage import loyalty, pagination
from chalicelib.storage.documents.card import CardFacts
from chalicelib.storage.documents.card_series import SeriesChunk, SeriesDoc
from chalicelib.storage.documents.common import Versioned
from chalicelib.storage.pagination import StoredPage
from chalicelib.storage.tables import LoyaltyRecord, condition_failed, get_item
from chalicelib.storage.transactions import Tx

SERIES_KIND = "card_series"
CHUNK_KIND = "card_series_chunk"


def series_list_pk(tenant_id: str) -> str:
    return f"{tenant_id}#series"


def series_pk(tenant_id: str, series_id: str) -> str:
    return f"{tenant_id}#series#{series_id}"


def _series_sk(series_id: str) -> str:
    return f"series#{series_id}"


def _chunk_sk(index: int) -> str:
    return f"chunk#{index:06d}"


@dataclass(frozen=True)
class ClaimedChunk:
    """A chunk as read: its numbers, the version a swap must still find, and when it was claimed."""

    numbers: list[str]
    version: int
    claimed_at: datetime


# --- series ---------------------------------------------------------------------

def add_series(tx: Tx, tenant_id: str, series_id: str, doc: SeriesDoc, at: datetime) -> None:
    tx.save(LoyaltyRecord(series_list_pk(tenant_id), _series_sk(series_id), kind=SERIES_KIND, doc=doc.dump(),
                          version=1, at=at), condition=LoyaltyRecord.pk.does_not_exist())


def get_series(tenant_id: str, series_id: str) -> Versioned[SeriesDoc] | None:
    """The series with the version `save_series` must still find, or None."""
    rec = get_item(LoyaltyRecord, series_list_pk(tenant_id), _series_sk(series_id))
    if rec is None:
        return None
    return Versioned(SeriesDoc.of(rec.doc), int(rec.version))


def _save_if_unchanged(rec: LoyaltyRecord, version: int) -> bool:
    """Write `rec` only if the stored item is still at `version`; False if someone changed it since."""
    try:
        rec.save(condition=LoyaltyRecord.version == version)
    except PutError as err:
        if condition_failed(err):
            return False
        raise
    return True


def save_series(tenant_id: str, series_id: str, doc: SeriesDoc, version: int, at: datetime) -> bool:
    """Replace a series read at `version`; False if anyone changed it since (the caller re-reads)."""
    rec = LoyaltyRecord(series_list_pk(tenant_id), _series_sk(series_id), kind=SERIES_KIND, doc=doc.dump(),
                        version=version + 1, at=at)
    return _save_if_unchanged(rec, version)


def list_series(tenant_id: str, limit: int, cursor: str | None) -> StoredPage[SeriesDoc]:
    """The tenant's series, newest first."""
    pk = series_list_pk(tenant_id)
    records, next_cursor = pagination.page_of(
        lambda size, start: LoyaltyRecord.query(pk, LoyaltyRecord.sk.startswith("series#"), scan_index_forward=False,
                                                limit=size, page_size=size, last_evaluated_key=start,
                                                consistent_read=True),
        limit=limit, cursor=cursor, hash_attr="pk", hash_value=pk, key_attrs=("pk", "sk"),
    )
    return StoredPage([SeriesDoc.of(r.doc) for r in records], next_cursor)


def all_series(tenant_id: str) -> Iterator[SeriesDoc]:
    """Every series of the tenant (a handful of rows per tenant: used to budget the number space)."""
    for rec in LoyaltyRecord.query(series_list_pk(tenant_id), LoyaltyRecord.sk.startswith("series#"),
                                   consistent_read=True):
        yield SeriesDoc.of(rec.doc)


# --- chunks ---------------------------------------------------------------------

def get_chunk(tenant_id: str, series_id: str, index: int) -> ClaimedChunk | None:
    """Chunk `index`'s numbers, its version and when it was claimed (the cards' `issued_at`)."""
    rec = get_item(LoyaltyRecord, series_pk(tenant_id, series_id), _chunk_sk(index))
    if rec is None:
        return None
    return ClaimedChunk(SeriesChunk.of(rec.doc).numbers, int(rec.version), rec.at)


def claim_chunk(tenant_id: str, series_id: str, index: int, numbers: list[str], at: datetime) -> bool:
    """Fix chunk `index`'s numbers; False if another run claimed it first (then use theirs)."""
    rec = LoyaltyRecord(series_pk(tenant_id, series_id), _chunk_sk(index), kind=CHUNK_KIND,
                        doc=SeriesChunk(numbers=numbers).dump(), version=1, at=at)
    try:
        rec.save(condition=LoyaltyRecord.pk.does_not_exist())
    except PutError as err:
        if condition_failed(err):
            return False
        raise
    return True


def replace_chunk(tenant_id: str, series_id: str, index: int, numbers: list[str], version: int,
                  at: datetime) -> bool:
    """Swap numbers taken by someone else for fresh ones; keeps the claim time; False if changed since."""
    rec = LoyaltyRecord(series_pk(tenant_id, series_id), _chunk_sk(index), kind=CHUNK_KIND,
                        doc=SeriesChunk(numbers=numbers).dump(), version=version + 1, at=at)
    return _save_if_unchanged(rec, version)


def chunk_numbers(tenant_id: str, series_id: str, first: int, last: int) -> list[str]:
    """The numbers of chunks first..last, in order (a page spans one or two chunks: one BatchGetItem)."""
    pk = series_pk(tenant_id, series_id)
    records = LoyaltyRecord.batch_get([(pk, _chunk_sk(i)) for i in range(first, last + 1)], consistent_read=True)
    numbers: list[str] = []
    for rec in sorted(records, key=lambda r: r.sk):
        numbers.extend(SeriesChunk.of(rec.doc).numbers)
    return numbers


def decode_position(tenant_id: str, series_id: str, cursor: str | None) -> int:
    """A print-list cursor is a position in the series, bound to it (a forged one is a 400)."""
    return pagination.decode_position(series_pk(tenant_id, series_id), cursor)


def encode_position(tenant_id: str, series_id: str, position: int) -> str | None:
    return pagination.encode_position(series_pk(tenant_id, series_id), position)


# --- cards ----------------------------------------------------------------------

def card_owners(tenant_id: str, numbers: list[str]) -> dict[str, str | None]:
    """Which of `numbers` are already cards (strongly consistent BatchGetItem): number -> its series id or None."""
    if not numbers:
        return {}
    keys = [(loyalty.card_pk(tenant_id, n), loyalty.CARD_SK) for n in numbers]
    prefix = loyalty.card_pk(tenant_id, "")
    owners: dict[str, str | None] = {}
    for rec in LoyaltyRecord.batch_get(keys, consistent_read=True):
        owners[rec.pk[len(prefix):]] = CardFacts.of(rec.doc).series_id or None
    return owners


def put_new_cards(tenant_id: str, cards: list[CardState], at: datetime) -> None:
    """Write cards the caller has just checked are absent (BatchWriteItem: no conditions; see services)."""
    with LoyaltyRecord.batch_write() as batch:
        for card in cards:
            batch.save(LoyaltyRecord(loyalty.card_pk(tenant_id, card.number), loyalty.CARD_SK, kind="card",
                                     doc=card.to_doc(), version=1, at=at))
