"""Each customer's purchases and refunds, by sale time: what campaign results attribute to a mailing.

<scope>#customer#<cid>  / purchase#<sale time>#<tenant>#<receipt id>                    kind purchase
<scope>#customer#<cid>  / purchase#<sale time>#<tenant>#<receipt id>#refund#<refund id>  kind refund

Entries are written inside the purchase and refund transactions, after the
receipt or refund record that makes them exactly-once, so they need no
condition of their own. A refund is keyed by the sale time of the receipt it
refunds (not by when it happened), so it lands next to its purchase: a range
Query over sale times then gives the net money of the sales made in that
range, whenever they were refunded. The sale time is the receipt's
`purchased_at` (an offline receipt's real sale time), written in one fixed
UTC format so that the keys sort as the times do. The tenant in the key keeps
two partners' receipts with the same id apart in a coalition's scope.
No personal data: ids, amounts and store ids only (erasure keeps them, like
the customer's stats); a tenant purge deletes them with every `<tenant>#...`
partition.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, cast

from chalicelib.storage.customers import customer_pk
from chalicelib.storage.tables import LoyaltyRecord, doc_of
from chalicelib.storage.transactions import Tx

PREFIX = "purchase#"
Kind = Literal["purchase", "refund"]


@dataclass(frozen=True)
class Entry:
    purchased_at: datetime
    """Sale time of the receipt (of the refunded receipt, for a refund)."""
    kind: Kind
    receipt_id: str
    total: int
    """Money in minor units: the receipt total, or minus the money refunded."""
    store_id: str
    refund_id: str | None = None


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def add(tx: Tx, scope: str, customer_id: str, *, tenant_id: str, purchased_at: datetime, receipt_id: str,
        total: int, kind: Kind, store_id: str, at: datetime, refund_id: str | None = None) -> None:
    """Queue one entry in the purchase's (or refund's) transaction; `at` is when it was processed."""
    if (kind == "refund") != (refund_id is not None):
        raise ValueError("a refund entry needs its refund_id, a purchase entry none")
    sk = f"{PREFIX}{_stamp(purchased_at)}#{tenant_id}#{receipt_id}" + (f"#refund#{refund_id}" if refund_id else "")
    doc = {"kind": kind, "receipt_id": receipt_id, "total": int(total), "store_id": store_id,
           "purchased_at": _stamp(purchased_at), "tenant_id": tenant_id}
    if refund_id:
        doc["refund_id"] = refund_id
    tx.save(LoyaltyRecord(customer_pk(scope, customer_id), sk, kind="purchase_log", doc=doc, at=at))


def between(scope: str, customer_id: str, start: datetime, end: datetime) -> list[Entry]:
    """Entries of sales made in [start, end), refunds included, oldest sale first (one Query)."""
    if end <= start:
        return []
    condition = LoyaltyRecord.sk.between(f"{PREFIX}{_stamp(start)}", f"{PREFIX}{_stamp(end)}")
    out: list[Entry] = []
    for rec in LoyaltyRecord.query(customer_pk(scope, customer_id), condition):
        doc = doc_of(rec)
        out.append(Entry(purchased_at=datetime.fromisoformat(str(doc["purchased_at"]).replace("Z", "+00:00")),
                         kind=cast(Kind, doc["kind"]), receipt_id=str(doc["receipt_id"]), total=int(doc["total"]),
                         store_id=str(doc["store_id"]), refund_id=doc.get("refund_id")))
    return out
