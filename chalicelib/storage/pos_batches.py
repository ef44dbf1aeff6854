"""Offline receipt batches in the `loyalty` table. Every call takes the tenant.

    <tid>#posbatch#<bid>  / batch                 the header: fingerprint, uploader, progress, counts; version
    <tid>#posbatch#<bid>  / receipts#<tag>#<k>    the valid receipts of chunk k (a JSON array, <= ~300 KB)
    <tid>#posbatch#<bid>  / results#<tag>#<k>     status and result or error of receipts 50k .. 50k+49
    <tid>#posbatches      / <created at>#<bid>    the tenant's batches, newest first

`<tag>` is the start of the batch's body fingerprint, so two different bodies
racing for one batch id never write into each other's chunks: the header
(written last, or in the same transaction) decides which body the batch is.
Records expire after `KEEP_DAYS` (offline receipts older than that are
refused anyway).
"""

from __future__ import annotations

from datetime import datetime

from chalicelib.storage import loyalty, pagination, transactions
from chalicelib.storage.documents.common import Versioned
from chalicelib.storage.documents.pos_batches import BatchChunk, BatchHeader, BatchListing
from chalicelib.storage.pagination import StoredPage
from chalicelib.storage.tables import LoyaltyRecord, get_item
from chalicelib.storage.transactions import Tx

HEADER_SK = "batch"
BATCH_KIND = "pos_batch"
CHUNK_KIND = "pos_batch_chunk"
KEEP_DAYS = 90
RESULTS_PER_ITEM = 50
MAX_TX_ITEMS = 100
MAX_TX_BYTES = 3_500_000
"""TransactWriteItems takes 100 items and 4 MB; beyond this the chunks are written first, the header last."""


def batch_pk(tenant_id: str, batch_id: str) -> str:
    return f"{tenant_id}#posbatch#{batch_id}"


def list_pk(tenant_id: str) -> str:
    return f"{tenant_id}#posbatches"


def _receipts_sk(tag: str, k: int) -> str:
    return f"receipts#{tag}#{k:04d}"


def _results_sk(tag: str, k: int) -> str:
    return f"results#{tag}#{k:04d}"


def _expiry(header: BatchHeader) -> int:
    return loyalty.ttl_epoch(datetime.fromisoformat(header.created_at), KEEP_DAYS)


def _header_record(tenant_id: str, batch_id: str, header: BatchHeader, version: int,
                   at: datetime) -> LoyaltyRecord:
    return LoyaltyRecord(batch_pk(tenant_id, batch_id), HEADER_SK, kind=BATCH_KIND, doc=header.dump(),
                         version=version, at=at, expires_at_epoch=_expiry(header))


def _chunk_record(tenant_id: str, batch_id: str, sk: str, payload: str, header: BatchHeader,
                  at: datetime) -> LoyaltyRecord:
    return LoyaltyRecord(batch_pk(tenant_id, batch_id), sk, kind=CHUNK_KIND, doc=BatchChunk(payload=payload).dump(),
                         version=1, at=at, expires_at_epoch=_expiry(header))


# --- creating ------------------------------------------------------------------------

def create(tenant_id: str, batch_id: str, header: BatchHeader, receipt_chunks: list[str],
           result_chunks: list[str], at: datetime) -> bool:
    """Store a whole batch; False if the batch id is already taken (read it to see by what).

    One transaction when it fits; otherwise the chunks first and the header
    last, so a batch is visible only once all of it is stored.
    """
    tag = header.tag
    chunks = ([_chunk_record(tenant_id, batch_id, _receipts_sk(tag, k), p, header, at)
               for k, p in enumerate(receipt_chunks)]
              + [_chunk_record(tenant_id, batch_id, _results_sk(tag, k), p, header, at)
                 for k, p in enumerate(result_chunks)])
    size = sum(len(p) for p in receipt_chunks) + sum(len(p) for p in result_chunks)
    together = len(chunks) + 2 <= MAX_TX_ITEMS and size <= MAX_TX_BYTES
    if not together:
        with LoyaltyRecord.batch_write() as batch:
            for rec in chunks:
                batch.save(rec)

    def build(tx: Tx) -> None:
        tx.save(_header_record(tenant_id, batch_id, header, 1, at), condition=LoyaltyRecord.pk.does_not_exist())
        tx.save(LoyaltyRecord(list_pk(tenant_id), f"{header.created_at}#{batch_id}", kind=BATCH_KIND,
                              doc=BatchListing(batch_id=batch_id).dump(), version=1, at=at,
                              expires_at_epoch=_expiry(header)),
                condition=LoyaltyRecord.pk.does_not_exist())
        if together:
            for rec in chunks:
                tx.save(rec)

    return transactions.written(build)


# --- reading -------------------------------------------------------------------------

def get(tenant_id: str, batch_id: str) -> Versioned[BatchHeader] | None:
    """The batch header with the version `save_progress` must still find, or None."""
    rec = get_item(LoyaltyRecord, batch_pk(tenant_id, batch_id), HEADER_SK)
    return Versioned(BatchHeader.of(rec.doc), int(rec.version)) if rec else None


def _chunks(tenant_id: str, batch_id: str, prefix: str) -> list[str]:
    return [BatchChunk.of(rec.doc).payload for rec in
            LoyaltyRecord.query(batch_pk(tenant_id, batch_id), LoyaltyRecord.sk.startswith(prefix),
                                consistent_read=True)]


def receipt_chunks(tenant_id: str, batch_id: str, tag: str) -> list[str]:
    """Every receipts chunk of the batch, in order."""
    return _chunks(tenant_id, batch_id, f"receipts#{tag}#")


def result_chunks(tenant_id: str, batch_id: str, tag: str) -> list[str]:
    """Every results chunk of the batch, in order."""
    return _chunks(tenant_id, batch_id, f"results#{tag}#")


def some_result_chunks(tenant_id: str, batch_id: str, tag: str, first: int, last: int) -> list[str]:
    """Results chunks first..last in order (one BatchGetItem: a page of a status spans a few)."""
    pk = batch_pk(tenant_id, batch_id)
    records = LoyaltyRecord.batch_get([(pk, _results_sk(tag, k)) for k in range(first, last + 1)],
                                      consistent_read=True)
    return [BatchChunk.of(r.doc).payload for r in sorted(records, key=lambda r: r.sk)]


def save_progress(tenant_id: str, batch_id: str, header: BatchHeader, version: int,
                  changed: dict[int, str], at: datetime) -> bool:
    """The header (if still at `version`) and the results chunks that changed, in one transaction.

    False when another run of the job moved the batch on first: that run carries it on.
    """
    tag = header.tag

    def build(tx: Tx) -> None:
        tx.save(_header_record(tenant_id, batch_id, header, version + 1, at),
                condition=LoyaltyRecord.version == version)
        for k, payload in sorted(changed.items()):
            tx.save(_chunk_record(tenant_id, batch_id, _results_sk(tag, k), payload, header, at))

    return transactions.written(build)


def list_batches(tenant_id: str, limit: int, cursor: str | None) -> StoredPage[BatchHeader]:
    """The tenant's batch headers, newest first."""
    pk = list_pk(tenant_id)
    records, next_cursor = pagination.page_of(
        lambda size, start: LoyaltyRecord.query(pk, scan_index_forward=False, limit=size, page_size=size,
                                                last_evaluated_key=start, consistent_read=True),
        limit=limit, cursor=cursor, hash_attr="pk", hash_value=pk, key_attrs=("pk", "sk"),
    )
    ids = [BatchListing.of(r.doc).batch_id for r in records]
    headers = {rec.pk: BatchHeader.of(rec.doc) for rec in
               LoyaltyRecord.batch_get([(batch_pk(tenant_id, b), HEADER_SK) for b in ids], consistent_read=True)}
    return StoredPage([headers[batch_pk(tenant_id, b)] for b in ids if batch_pk(tenant_id, b) in headers], next_cursor)


def processed(tenant_id: str, receipt_ids: list[str], refund_ids: list[str]) -> tuple[set[str], set[str]]:
    """Which of these receipt and refund ids were already processed (strongly consistent BatchGetItem)."""
    keys = ([(loyalty.receipt_pk(tenant_id, r), loyalty.RECEIPT_SK) for r in dict.fromkeys(receipt_ids)]
            + [(loyalty.refund_pk(tenant_id, r), loyalty.REFUND_SK) for r in dict.fromkeys(refund_ids)])
    if not keys:
        return set(), set()
    receipts, refunds = set(), set()
    receipt_prefix, refund_prefix = loyalty.receipt_pk(tenant_id, ""), loyalty.refund_pk(tenant_id, "")
    for rec in LoyaltyRecord.batch_get(keys, consistent_read=True, attributes_to_get=["pk", "sk"]):
        if rec.sk == loyalty.RECEIPT_SK:
            receipts.add(rec.pk[len(receipt_prefix):])
        else:
            refunds.add(rec.pk[len(refund_prefix):])
    return receipts, refunds


# --- status pages ------------------------------------------------------------------

def decode_position(tenant_id: str, batch_id: str, cursor: str | None) -> int:
    """A status page cursor is a position in the batch, bound to it (a forged one is a 400)."""
    return pagination.decode_position(batch_pk(tenant_id, batch_id), cursor)


def encode_position(tenant_id: str, batch_id: str, position: int) -> str | None:
    return pagination.encode_position(batch_pk(tenant_id, batch_id), position)
