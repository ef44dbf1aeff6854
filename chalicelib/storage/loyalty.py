"""Cards, ledgers, receipts, refunds and customers (the `loyalty` table). Every call takes the owner.

The owner ("scope") is a tenant id, or `coalition.<id>` for the cards,
customers and ledgers the partners of a coalition share; receipts and refunds
always belong to the partner tenant that processed them.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple, TypeVar, overload

from chalicelib import clock
from chalicelib.domain.cards import CardState
from chalicelib.schemas.pos import LedgerEntry, MoneyEntry
from chalicelib.storage import pagination
from chalicelib.storage.documents.common import Document, Versioned
from chalicelib.storage.documents.receipts import Receipt, Refund
from chalicelib.storage.pagination import StoredPage
from chalicelib.storage.tables import LoyaltyRecord, doc_of, get_item
from chalicelib.storage.transactions import Tx

D = TypeVar("D", bound=Document)
E = TypeVar("E", LedgerEntry, MoneyEntry)

CARD_SK = "card"
RECEIPT_SK = "receipt"
REFUND_SK = "refund"
ADJUSTMENT_SK = "adjustment"


def coalition_scope(coalition_id: str) -> str:
    """The owner of a coalition's shared cards; a dot never occurs in a tenant id, so no tenant can be it."""
    return f"coalition.{coalition_id}"


def due_pk(scope: str, day: date) -> str:
    return f"{scope}#due#{day.isoformat()}"


def partner_pk(scope: str, partner_id: str) -> str:
    return f"{scope}#partner#{partner_id}"


def breakage_pk(scope: str) -> str:
    return f"{scope}#breakage"


LEDGER_SHARDS = 8


def ledger_shard(number: str) -> int:
    """A card's shard of the by-day ledger index: stable across processes (crc32, not hash())."""
    return zlib.crc32(number.encode()) % LEDGER_SHARDS


def ledger_day_pk(scope: str, day: date, number: str) -> str:
    return f"{scope}#ledger#{day.isoformat()}#{ledger_shard(number)}"


def card_pk(tenant_id: str, number: str) -> str:
    return f"{tenant_id}#card#{number}"


def receipt_pk(tenant_id: str, receipt_id: str) -> str:
    return f"{tenant_id}#receipt#{receipt_id}"


def receipts(tenant_id: str, receipt_ids: list[str]) -> dict[str, Receipt]:
    """Receipt id -> its stored receipt, for those that exist: BatchGetItem, 100 keys per call, not one read each."""
    prefix = receipt_pk(tenant_id, "")
    keys = [(receipt_pk(tenant_id, r), RECEIPT_SK) for r in dict.fromkeys(receipt_ids)]
    return {rec.pk[len(prefix):]: Receipt.load(doc_of(rec)) for rec in LoyaltyRecord.batch_get(keys)}


def refund_pk(tenant_id: str, refund_id: str) -> str:
    return f"{tenant_id}#refund#{refund_id}"


def adjustment_pk(tenant_id: str, adjustment_id: str) -> str:
    return f"{tenant_id}#adjustment#{adjustment_id}"


# --- cards ----------------------------------------------------------------------

def get_card(tenant_id: str, number: str) -> CardState | None:
    rec = get_item(LoyaltyRecord, card_pk(tenant_id, number), CARD_SK)
    return CardState.from_doc(number, int(rec.version), doc_of(rec)) if rec else None


def _card_record(tenant_id: str, card: CardState, version: int, at: datetime) -> LoyaltyRecord:
    """The card, indexed under the day the sweep has work on it (expiring points or money, a tier check)."""
    due = card.next_due
    return LoyaltyRecord(card_pk(tenant_id, card.number), CARD_SK, kind="card", doc=card.to_doc(), version=version,
                         at=at, gsi1pk=due_pk(tenant_id, due.date()) if due else None,
                         gsi1sk=card.number if due else None)


def add_card(tx: Tx, tenant_id: str, card: CardState, at: datetime) -> None:
    """Create a card; fails the transaction if the number is taken."""
    tx.save(_card_record(tenant_id, card, 1, at), condition=LoyaltyRecord.pk.does_not_exist())


def save_card(tx: Tx, tenant_id: str, card: CardState, at: datetime) -> None:
    """Replace a card read at `card.version`; fails the transaction if anyone changed it since."""
    tx.save(_card_record(tenant_id, card, card.version + 1, at), condition=LoyaltyRecord.version == card.version)


# --- ledger ---------------------------------------------------------------------

def entry_sk(at: datetime, seq: int, entry_id: str) -> str:
    return f"entry#{at.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{seq:02d}#{entry_id}"


def add_entry(tx: Tx, tenant_id: str, number: str, entry: LedgerEntry | MoneyEntry, seq: int) -> None:
    """A ledger entry (points or money); a coalition's entries are also indexed by partner for settlement."""
    doc = entry.model_dump(mode="json", exclude_none=True)
    sk = entry_sk(entry.at, seq, entry.entry_id)
    partner = partner_pk(tenant_id, entry.partner_id) if entry.partner_id else None
    if partner is None and entry.type == "expiry" and tenant_id.startswith("coalition."):
        partner = breakage_pk(tenant_id)  # a coalition's expired points belong to no partner: breakage
    by_day = ledger_day_pk(tenant_id, entry.at.date(), number) if isinstance(entry, LedgerEntry) else None
    tx.save(LoyaltyRecord(card_pk(tenant_id, number), sk, kind="entry", doc=doc, at=entry.at, gsi1pk=partner,
                          gsi1sk=f"{sk}#{number}" if partner else None, gsi2pk=by_day,
                          gsi2sk=f"{sk}#{number}" if by_day else None),
            condition=LoyaltyRecord.pk.does_not_exist())


@overload
def list_entries(tenant_id: str, number: str, limit: int, cursor: str | None) -> StoredPage[LedgerEntry]:
    ...


@overload
def list_entries(tenant_id: str, number: str, limit: int, cursor: str | None,
                 model: type[E]) -> StoredPage[E]:
    ...


def list_entries(tenant_id: str, number: str, limit: int, cursor: str | None,
                 model: Any = LedgerEntry) -> StoredPage[Any]:
    """The card's ledger, newest first (`MoneyEntry` for a gift card)."""
    pk = card_pk(tenant_id, number)
    records, next_cursor = pagination.page_of(
        lambda size, start: LoyaltyRecord.query(pk, LoyaltyRecord.sk.startswith("entry#"), scan_index_forward=False,
                                                limit=size, page_size=size, last_evaluated_key=start,
                                                consistent_read=True),
        limit=limit, cursor=cursor, hash_attr="pk", hash_value=pk, key_attrs=("pk", "sk"),
    )
    return StoredPage([model.model_validate(doc_of(r)) for r in records], next_cursor)


def ledger_sum(tenant_id: str, number: str, field: str = "points") -> int:
    """Sum of every ledger entry of a card (the source of truth the balance must equal); `amount` for money."""
    pk = card_pk(tenant_id, number)
    return sum(int(doc_of(r).get(field, 0)) for r in
               LoyaltyRecord.query(pk, LoyaltyRecord.sk.startswith("entry#"), consistent_read=True))


class CardRow(NamedTuple):
    """A card's item (sk `card`) or one of its ledger entries (sk `entry#...`), as stored."""

    scope: str
    number: str
    sk: str
    doc: dict[str, Any]
    version: int


def card_rows(scope: str | None) -> Iterator[CardRow]:
    """Every card and ledger row of `scope` (every scope if None).

    A filtered Scan, proportional to the table: reconciliation is a rare
    operator job (and the check after tests and load runs), never on a request
    path. Rows of one card are not assumed adjacent.
    """
    marker = "#card#"
    condition = (LoyaltyRecord.pk.startswith(f"{scope}{marker}") if scope is not None
                 else LoyaltyRecord.pk.contains(marker))
    for rec in LoyaltyRecord.scan(condition, consistent_read=True):
        owner, _, number = rec.pk.partition(marker)
        if (scope is not None and owner != scope) or not (rec.sk == CARD_SK or rec.sk.startswith("entry#")):
            continue
        yield CardRow(owner, number, rec.sk, doc_of(rec), int(rec.version or 0))


def due_cards(scope: str, day: date, limit: int, cursor: dict[str, Any] | None
              ) -> tuple[list[str], dict[str, Any] | None]:
    """Card numbers the sweep has work on, indexed under `day` (eventually consistent: re-read each card)."""
    result = LoyaltyRecord.due_and_partner.query(due_pk(scope, day), limit=limit, page_size=limit,
                                                 last_evaluated_key=cursor, attributes_to_get=["pk", "sk", "gsi1sk"])
    numbers = [str(r.gsi1sk) for r in result]
    return numbers, result.last_evaluated_key


def _indexed_entries(index_pk: str, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    low, high = entry_sk(start, 0, ""), entry_sk(end, 0, "")
    for rec in LoyaltyRecord.due_and_partner.query(index_pk, LoyaltyRecord.gsi1sk.between(low, high)):
        if rec.sk < high:
            yield doc_of(rec)


def partner_entries(scope: str, partner_id: str, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    """A coalition partner's ledger entries with start <= at < end, oldest first (an iterator of docs)."""
    return _indexed_entries(partner_pk(scope, partner_id), start, end)


def breakage_entries(scope: str, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    """A coalition's expiry entries (points no partner redeemed) with start <= at < end."""
    return _indexed_entries(breakage_pk(scope), start, end)


# --- receipts, refunds, adjustments: processed requests and their answers ---------------

def get_doc(pk: str, sk: str, model: type[D]) -> Versioned[D] | None:
    """One processed-request record (or other versioned document) as `model`, with its version."""
    rec = get_item(LoyaltyRecord, pk, sk)
    return Versioned(model.load(doc_of(rec)), int(rec.version)) if rec else None


def get_receipt(tenant_id: str, receipt_id: str) -> Versioned[Receipt] | None:
    return get_doc(receipt_pk(tenant_id, receipt_id), RECEIPT_SK, Receipt)


def get_refund(tenant_id: str, refund_id: str) -> Versioned[Refund] | None:
    return get_doc(refund_pk(tenant_id, refund_id), REFUND_SK, Refund)


def add_once(tx: Tx, pk: str, sk: str, kind: str, doc: Document, at: datetime) -> None:
    """Record a processed request; a second one with the same id fails the transaction (exactly once)."""
    tx.save(LoyaltyRecord(pk, sk, kind=kind, doc=doc.dump(), version=1, at=at),
            condition=LoyaltyRecord.pk.does_not_exist())


def replace_versioned(tx: Tx, pk: str, sk: str, kind: str, doc: Document, version: int, at: datetime) -> None:
    """Replace a document read at `version`; fails the transaction if anyone changed it since."""
    tx.save(LoyaltyRecord(pk, sk, kind=kind, doc=doc.dump(), version=version + 1, at=at),
            condition=LoyaltyRecord.version == version)


def now() -> datetime:
    return clock.now()


def ttl_epoch(at: datetime, days: int) -> int:
    return int((at + timedelta(days=days)).timestamp())


def delete_tenant_page(tenant_id: str, max_items: int, cursor: dict[str, Any] | None
                       ) -> tuple[int, dict[str, Any] | None, bool]:
    """Delete up to `max_items` of the tenant's loyalty rows: (deleted, resume cursor, finished).

    A tenant's rows are spread over many partitions (one per card, receipt,
    customer...), so they are found with a filtered Scan of the whole table,
    resumed from `cursor`. That reads every tenant's keys (never their
    attributes) and is proportional to the table, acceptable for a rare
    offboarding job; a GSI on the tenant id would make it proportional to the
    tenant instead.
    """
    prefix = f"{tenant_id}#"
    result = LoyaltyRecord.scan(LoyaltyRecord.pk.startswith(prefix), attributes_to_get=["pk", "sk"],
                                limit=max_items, page_size=max(max_items, 25), last_evaluated_key=cursor)
    deleted = 0
    with LoyaltyRecord.batch_write() as batch:
        for rec in result:
            if not rec.pk.startswith(prefix):  # never delete another tenant's rows, whatever the filter did
                continue
            batch.delete(rec)
            deleted += 1
    last = result.last_evaluated_key
    return deleted, last, deleted < max_items and last is None
