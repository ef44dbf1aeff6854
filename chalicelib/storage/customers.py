"""Customer records in the loyalty table: no personal fields, only ids, tags, consents, stats and referrals.

Layout of a record's `doc`: `profile` (tags, preferred channel, acquisition),
`consents` (kind -> latest decision), `referral`, `stats`, `status`,
`merged_into`, `erased_at`. Profile changes replace whole sections under the
record's version; stats are only ever changed by atomic ADDs inside the
purchase and refund transactions, so neither can overwrite the other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, NamedTuple

from pynamodb.exceptions import PutError
from pynamodb.expressions.condition import Condition

from chalicelib.domain.customers import SHARDS, PurchaseStats, empty_stats, shard_of
from chalicelib.domain.ids import new_id
from chalicelib.storage import pagination
from chalicelib.storage.documents.common import Document, Versioned, raw
from chalicelib.storage.documents.customer import (
    CardLink,
    ConsentState,
    CustomerDoc,
    ReferralCode,
    ReferralSection,
    Stats,
)
from chalicelib.storage.pagination import StoredPage
from chalicelib.storage.tables import LoyaltyRecord, get_item
from chalicelib.storage.transactions import Tx

CUSTOMER_SK = "customer"
REFERRAL_SK = "referral"
SECTIONS = ("profile", "consents", "referral", "status", "merged_into", "erased_at", "updated_at")


def customer_pk(scope: str, customer_id: str) -> str:
    return f"{scope}#customer#{customer_id}"


def move_items(scope: str, from_customer: str, to_customer: str, sk_prefix: str,
               rewrite: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> int:
    """Merging duplicates: move one customer's items under `sk_prefix` to another; how many were written.

    Each item is copied under the same sort key (an item the kept customer already
    has wins, so a rerun writes nothing twice), then the original is deleted: a
    merge interrupted halfway is finished by running it again. `rewrite` adjusts
    the copied document (a customer id inside it).
    """
    moved = 0
    for rec in LoyaltyRecord.query(customer_pk(scope, from_customer), LoyaltyRecord.sk.startswith(sk_prefix),
                                   consistent_read=True):
        doc = raw(rec.doc)
        copy = LoyaltyRecord(customer_pk(scope, to_customer), rec.sk, kind=rec.kind,
                             doc=rewrite(doc) if rewrite else doc, at=rec.at, version=rec.version,
                             gsi1pk=rec.gsi1pk, gsi1sk=rec.gsi1sk)
        try:
            copy.save(condition=LoyaltyRecord.pk.does_not_exist())
            moved += 1
        except PutError as err:
            if err.cause_response_code != "ConditionalCheckFailedException":
                raise
        rec.delete()
    return moved


def referral_pk(scope: str, code: str) -> str:
    return f"{scope}#referral#{code}"


def list_pk(scope: str, shard: int) -> str:
    return f"{scope}#customers#{shard:02d}"


def _customer(rec: LoyaltyRecord) -> CustomerDoc:
    doc = CustomerDoc.of(rec.doc)
    doc.created_at = rec.at
    return doc


def get(scope: str, customer_id: str) -> Versioned[CustomerDoc] | None:
    """The record's doc (with `created_at`, the record's time) and version, or None."""
    rec = get_item(LoyaltyRecord, customer_pk(scope, customer_id), CUSTOMER_SK)
    return Versioned(_customer(rec), int(rec.version)) if rec else None


def _stored(value: Any) -> Any:
    """A section as stored: a document dumped, anything else as given."""
    return value.dump() if isinstance(value, Document) else value


def add(tx: Tx, scope: str, customer_id: str, doc: CustomerDoc, at: datetime) -> None:
    """A new customer record (fails if the id exists), listed in its shard of the scope's customer index."""
    body = {"stats": empty_stats(), "status": "active", **doc.dump()}
    tx.save(LoyaltyRecord(customer_pk(scope, customer_id), CUSTOMER_SK, kind="customer", doc=body, version=1, at=at,
                          gsi1pk=list_pk(scope, shard_of(customer_id)), gsi1sk=customer_id),
            condition=LoyaltyRecord.pk.does_not_exist())


def update(tx: Tx, scope: str, customer_id: str, version: int, sections: dict[str, Any],
           stats_read: Stats | None = None) -> None:
    """Replace whole sections of the record if it is still at `version`.

    Stats move by ADDs that do not bump the version, so a write that must not
    race them (a merge replacing `stats`) passes the stats it read: the write
    then also requires the receipt and refund counts to be unchanged.
    """
    unknown = set(sections) - set(SECTIONS) - {"stats"}
    if unknown:
        raise ValueError(f"not an updatable section: {sorted(unknown)}")
    if "stats" in sections and stats_read is None:
        raise ValueError("replacing stats needs the stats read (stats_read)")
    actions = [LoyaltyRecord.doc[name].set(_stored(value)) for name, value in sections.items() if value is not None]
    actions += [LoyaltyRecord.doc[name].remove() for name, value in sections.items() if value is None]
    actions.append(LoyaltyRecord.version.add(1))
    condition = LoyaltyRecord.version == version
    if stats_read is not None:
        stats = LoyaltyRecord.doc["stats"]
        condition &= stats["purchase_count"] == stats_read.purchase_count
        condition &= stats["refund_count"] == stats_read.refund_count
    tx.update(LoyaltyRecord(customer_pk(scope, customer_id), CUSTOMER_SK), actions=actions, condition=condition)


def count_receipt(tx: Tx, scope: str, customer_id: str, change: PurchaseStats, at: datetime, *,
                  referral: Versioned[ReferralSection] | None = None) -> None:
    """Add one receipt (or refund) to the customer's stats: atomic ADDs, no read, exactly once with the receipt.

    `referral` = (new referral section, version read): the receipt that
    rewards a referral also marks it, in the same single update of the record
    (a transaction may touch an item once), guarded by the version.
    """
    stats = LoyaltyRecord.doc["stats"]
    actions = [stats["spend"].add(change.spend)]
    if change.purchase:
        actions += [stats["purchase_count"].add(1), stats["stores"][change.store_id].add(1),
                    stats["first_purchase_at"].set(stats["first_purchase_at"] | at.isoformat()),
                    stats["last_purchase_at"].set(at.isoformat())]
    else:
        actions.append(stats["refund_count"].add(1))
    actions += [stats["categories"][name].add(amount) for name, amount in sorted(change.categories.items())]
    condition: Condition = LoyaltyRecord.pk.exists()
    if referral is not None:
        actions += [LoyaltyRecord.doc["referral"].set(referral.doc.dump()), LoyaltyRecord.version.add(1)]
        condition = LoyaltyRecord.version == referral.version
    tx.update(LoyaltyRecord(customer_pk(scope, customer_id), CUSTOMER_SK), actions=actions, condition=condition)


def link_card(tx: Tx, scope: str, customer_id: str, number: str, program_id: str, at: datetime) -> None:
    tx.save(LoyaltyRecord(customer_pk(scope, customer_id), f"card#{number}", kind="card_link",
                          doc=CardLink(program_id=program_id).dump(), at=at))


def unlink_card(tx: Tx, scope: str, customer_id: str, number: str) -> None:
    tx.delete(LoyaltyRecord(customer_pk(scope, customer_id), f"card#{number}"))


def card_links(scope: str, customer_id: str) -> list[tuple[str, str]]:
    """(card number, program id) of each card linked to the customer."""
    pk = customer_pk(scope, customer_id)
    return [(r.sk.split("#", 1)[1], CardLink.of(r.doc).program_id)
            for r in LoyaltyRecord.query(pk, LoyaltyRecord.sk.startswith("card#"), consistent_read=True)]


def card_numbers(scope: str, customer_id: str) -> list[str]:
    return [number for number, _ in card_links(scope, customer_id)]


def add_consent_event(tx: Tx, scope: str, customer_id: str, consent: ConsentState, at: datetime, seq: int) -> None:
    """One line of the consent history: what was decided, when, where, on which text version."""
    sk = f"consent#{at.isoformat()}#{seq:02d}#{consent.kind}#{new_id(6)}"
    tx.save(LoyaltyRecord(customer_pk(scope, customer_id), sk, kind="consent", doc=consent.dump(), at=at),
            condition=LoyaltyRecord.pk.does_not_exist())


def consent_history(scope: str, customer_id: str) -> list[ConsentState]:
    return [ConsentState.of(r.doc) for r in LoyaltyRecord.query(
        customer_pk(scope, customer_id), LoyaltyRecord.sk.startswith("consent#"), consistent_read=True)]


def referral_owner(scope: str, code: str) -> str | None:
    rec = get_item(LoyaltyRecord, referral_pk(scope, code), REFERRAL_SK)
    return ReferralCode.of(rec.doc).customer_id if rec else None


def add_referral_code(tx: Tx, scope: str, code: str, customer_id: str, at: datetime) -> None:
    tx.save(LoyaltyRecord(referral_pk(scope, code), REFERRAL_SK, kind="referral",
                          doc=ReferralCode(customer_id=customer_id).dump(), at=at),
            condition=LoyaltyRecord.pk.does_not_exist())


def delete_referral_code(tx: Tx, scope: str, code: str) -> None:
    tx.delete(LoyaltyRecord(referral_pk(scope, code), REFERRAL_SK))


class CustomerRow(NamedTuple):
    """A customer as listed: the id (from the key) and the stored document."""

    customer_id: str
    doc: CustomerDoc


def list_page(scope: str, shard: int, limit: int, cursor: str | None) -> StoredPage[CustomerRow]:
    """One page of one shard of the scope's customers: (customer id, doc) pairs and the next cursor."""
    pk = list_pk(scope, shard)
    start = pagination.decode(cursor, hash_attr="gsi1pk", hash_value=pk, key_attrs=("gsi1pk", "gsi1sk", "pk", "sk"))
    result = LoyaltyRecord.due_and_partner.query(pk, limit=limit, last_evaluated_key=start)
    rows = [CustomerRow(r.pk.rsplit("#", 1)[1], _customer(r)) for r in result]
    return StoredPage(rows, pagination.encode(result.last_evaluated_key))


def iter_all(scope: str, page: int = 200) -> Iterator[CustomerRow]:
    """Every customer record of the scope, shard by shard (segments, exports, reports)."""
    for shard in range(SHARDS):
        cursor: str | None = None
        while True:
            rows, cursor = list_page(scope, shard, page, cursor)
            yield from rows
            if cursor is None:
                break
