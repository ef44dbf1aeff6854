"""Stored items written by the code before the document models load into them and dump back identically."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.storage.documents.card import CardFacts
from chalicelib.storage.documents.card_series import SeriesChunk, SeriesDoc
from chalicelib.storage.documents.coupons import CouponCode, CouponGrant, CustomerUses
from chalicelib.storage.documents.idempotency import IdempotencyRecord
from chalicelib.storage.documents.operations import Adjustment, GiftSale, GiftTopUp, SweepState, TierAssignment
from chalicelib.storage.documents.pos_batches import BatchChunk, BatchHeader, BatchListing
from chalicelib.storage.documents.receipts import Receipt, Refund

LINE = {"sku": "latte", "category": "coffee", "quantity": 2, "amount": 500, "weight": 500, "refunded_quantity": 0,
        "refunded_amount": 0}
RECEIPT: dict[str, Any] = {
    "card_number": "7001234567890", "card_scope": "coffee-house", "program_id": "main", "store_id": "s1",
    "total": 500, "discount": 0, "points_discount": 0, "payable": 500, "points_earned": 25, "points_redeemed": 0,
    "rule_version": 1, "partner_id": None, "tier_value": 0, "lines": [LINE],
    "coupons": [{"code": "ABC", "campaign_id": "c1", "holder": "card:1", "counted_code": True,
                 "counted_customer": False}],
    "gift_cards": [{"card_number": "9", "scope": "coffee-house", "amount": 100, "returned": 0}],
    "refunded_amount": 0, "refunded_weight_scaled": 0, "points_reversed": 0, "points_returned": 0,
    "at": "2026-01-01T10:00:00+00:00", "purchased_at": "2026-01-01T10:00:00+00:00", "points_expire_at": None,
    "request_hash": "v2:abc", "response": {"receipt_id": "r1", "balance": 25},
}
SERIES: dict[str, Any] = {
    "series_id": "20260101-100000-abc123", "program_id": "main", "name": None, "prefix": "70", "length": 13,
    "count": 1200, "created": 0, "chunk_size": 500, "status": "queued", "error": None,
    "created_at": "2026-01-01T10:00:00+00:00", "completed_at": None,
}
BATCH: dict[str, Any] = {
    "batch_id": "till-1:2026-01-01", "fingerprint": "ab" * 32, "tag": "abababababab", "store_id": None,
    "bound_store": "s1", "principal": {"role": "pos", "key_id": "k1", "owner": "t1", "store_id": "s1"},
    "actor": "key:k1", "created_at": "2026-01-01T10:00:00+00:00", "completed_at": None, "total": 3,
    "to_process": 2, "position": 0, "known": [1], "counts": {"pending": 2, "ok": 0, "duplicate": 0, "error": 1},
    "status": "accepted",
}
OLD_RECEIPT = {k: v for k, v in RECEIPT.items()
               if k not in ("card_scope", "tier_value", "coupons", "gift_cards", "purchased_at", "points_expire_at")}

DOCS = [
    (Receipt, RECEIPT),
    (Receipt, OLD_RECEIPT),
    (Receipt, {**RECEIPT, "card_number": None, "card_scope": None, "program_id": None, "an_unknown_key": 1}),
    (Refund, {"receipt_id": "r1", "request_hash": "h", "response": {"amount_refunded": 5}}),
    (Adjustment, {"request_hash": "h", "entry": {"entry_id": "e", "type": "adjustment", "points": 5}}),
    (TierAssignment, {"request_hash": "h", "card": {"number": "1"}}),
    (GiftSale, {"request_hash": "h", "card_number": "1", "program_id": "gift", "amount": 100, "store_id": "s1",
                "at": "2026-01-01T10:00:00+00:00", "response": {"balance": 100}}),
    (GiftTopUp, {"request_hash": "h", "card_number": "1", "amount": 100, "store_id": None,
                 "at": "2026-01-01T10:00:00+00:00", "response": {"balance": 100}}),
    (SweepState, {"completed": "2026-01-01"}),
    (CardFacts, {"program_id": "main", "kind": "plastic", "status": "active", "issued_at": "2026-01-01T10:00:00+00:00",
                 "wallet": {"lots": []}, "customer_id": "c1", "series_id": "20260101-100000-abc123"}),
    (CardFacts, {"program_id": "main", "kind": "virtual", "status": "issued"}),
    (SeriesDoc, SERIES),
    (SeriesDoc, {**SERIES, "name": "Spring", "created": 1200, "status": "completed",
                 "completed_at": "2026-01-01T10:05:00+00:00"}),
    (SeriesDoc, {**SERIES, "created": 500, "status": "failed", "error": "No free card numbers could be found."}),
    (SeriesChunk, {"numbers": ["7012345678903", "7098765432106"]}),
    (BatchHeader, BATCH),
    (BatchHeader, {**BATCH, "store_id": "s2", "bound_store": None, "principal": {"role": "tenant_admin"},
                   "completed_at": "2026-01-01T10:01:00+00:00", "position": 2, "known": [],
                   "counts": {"pending": 0, "ok": 2, "duplicate": 0, "error": 1}, "status": "done"}),
    (BatchChunk, {"payload": '[{"index":0,"kind":"purchase"}]'}),
    (BatchListing, {"batch_id": "till-1:2026-01-01"}),
    (CouponCode, {"campaign_id": "c1", "uses": 0}),
    (CouponCode, {"campaign_id": "c1"}),
    (CustomerUses, {"uses": 3}),
    (CouponGrant, {"code": "ABC", "campaign_id": "c1", "holder": "cust-1"}),
    (IdempotencyRecord, {"state": "in_flight", "fingerprint": "f", "lease_until": "2026-01-01T10:00:00+00:00"}),
    (IdempotencyRecord, {"state": "completed", "fingerprint": "f", "lease_until": "2026-01-01T10:00:00+00:00",
                         "status": 201, "body": {"id": "x"}, "headers": {"Location": "/x"}}),
]


@pytest.mark.parametrize(("model", "stored"), DOCS)
def test_stored_item_round_trips(model: Any, stored: dict[str, Any]) -> None:
    assert model.load(stored).dump() == stored


def test_old_receipt_reads_with_the_defaults_its_readers_assumed() -> None:
    receipt = Receipt.load(OLD_RECEIPT)
    assert (receipt.coupons, receipt.gift_cards, receipt.card_scope, receipt.tier_value) == ([], [], None, None)
    assert not receipt.keeps_points_expiry and receipt.sold_at == receipt.processed_at
    assert Receipt.load(RECEIPT).keeps_points_expiry


def test_a_refund_update_keeps_unknown_and_absent_keys() -> None:
    receipt = Receipt.load({**OLD_RECEIPT, "legacy": "kept"})
    line = receipt.lines[0].model_copy(update={"refunded_amount": 100})
    after = receipt.model_copy(update={"lines": [line], "refunded_amount": 100, "gift_cards": []}).dump()
    assert after == {**OLD_RECEIPT, "legacy": "kept", "lines": [{**LINE, "refunded_amount": 100}],
                     "refunded_amount": 100, "gift_cards": []}


def test_series_and_batch_headers_built_by_the_services_write_every_key_the_old_dicts_had() -> None:
    assert SeriesDoc(**SERIES).dump() == SERIES
    assert BatchHeader(**BATCH).dump() == BATCH


def test_progress_updates_change_only_the_updated_keys() -> None:
    series = SeriesDoc.load({**SERIES, "legacy": 1}).model_copy(update={"created": 500, "status": "running"})
    assert series.dump() == {**SERIES, "legacy": 1, "created": 500, "status": "running"}
    header = BatchHeader.load(BATCH).model_copy(update={"position": 2, "status": "done"})
    assert header.dump() == {**BATCH, "position": 2, "status": "done"}


def test_card_facts_read_absent_keys_as_no_program_and_no_owner() -> None:
    facts = CardFacts.load({"kind": "plastic"})
    assert (facts.program_id, facts.customer_id, facts.series_id) == ("", None, None)
