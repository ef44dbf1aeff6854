"""The till's rules through the API: issuance, activation, earning, redemption, refunds, exactly-once, ledger."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain.cards import generate_number
from chalicelib.storage.loyalty import ledger_sum
from tests.functional.conftest import Api, TenantKeys

MAIN = {"name": "Main program", "earning": {"rate_bps": 500}, "redemption": {"point_value": 100, "max_share_bps": 3000}}


def set_program(api: Api, tenant: TenantKeys, **changes: Any) -> dict:
    r = api.put("/v1/programs/main", tenant.admin, {**MAIN, **changes})
    assert r.status_code == 200, r.data
    return r.data


def new_card(api: Api, tenant: TenantKeys, phone: str | None = "+79161234567", **extra: Any) -> str:
    body: dict[str, Any] = {"program_id": "main", **extra}
    if phone:
        body["customer"] = {"phone": phone, "first_name": "Anna"}
    r = api.post("/v1/cards", tenant.pos, body)
    assert r.status_code == 201, r.data
    return r.data["number"]


def buy(api: Api, key: str, receipt: str, card: str, amount: int, redeem: int = 0, store: str = "msk-01",
        category: str = "coffee", **extra: Any) -> Any:
    body = {"receipt_id": receipt, "card_number": card, "store_id": store, "total": amount,
            "items": [{"sku": "latte", "category": category, "quantity": 1, "amount": amount}], **extra}
    if redeem:
        body["redeem_points"] = redeem
    return api.post("/v1/purchases", key, body)


def balance(api: Api, tenant: TenantKeys, card: str) -> tuple[int, int]:
    data = api.get(f"/v1/cards/{card}", tenant.pos).data
    return data["balance"], data["pending"]


def assert_ledger_matches(api: Api, tenant: TenantKeys, card: str) -> None:
    spendable, pending = balance(api, tenant, card)
    assert ledger_sum(tenant.tenant_id, card) == spendable + pending


# --- issuance and activation ---------------------------------------------------------

def test_virtual_card_issued_to_a_customer_by_phone_in_any_format(api: Api, tenant: TenantKeys) -> None:
    r = api.post("/v1/cards", tenant.pos, {"program_id": "main", "customer": {"phone": "8 (916) 123-45-67"}})
    assert r.status_code == 201
    card = r.data
    assert card["status"] == "active" and card["kind"] == "virtual" and card["balance"] == 0
    assert len(card["number"]) == 13 and card["customer_id"]
    found = api.get("/v1/customers/lookup?phone=%2B7%20916%20123%2045%2067", tenant.support)
    assert found.status_code == 200
    assert found.data["customer"]["phone"] == "+79161234567"
    assert [c["number"] for c in found.data["cards"]] == [card["number"]]
    second = api.post("/v1/cards", tenant.pos, {"program_id": "main", "customer": {"phone": "+79161234567"}})
    assert second.data["customer_id"] == card["customer_id"], "one customer per phone"
    bad = api.post("/v1/cards", tenant.pos, {"program_id": "main", "customer": {"phone": "123"}})
    assert bad.status_code == 400 and bad.data["error"]["details"][0]["field"] == "customer.phone"
    assert api.get("/v1/customers/lookup?phone=%2B79990000000", tenant.pos).status_code == 404


def test_activation_on_first_purchase(api: Api, tenant: TenantKeys) -> None:
    set_program(api, tenant, activation="first_purchase")
    card = new_card(api, tenant)
    assert api.get(f"/v1/cards/{card}", tenant.pos).data["status"] == "issued"
    r = buy(api, tenant.pos, "r1", card, 10_000)
    assert r.data["card_activated"] is True and r.data["points_earned"] == 5
    assert api.get(f"/v1/cards/{card}", tenant.pos).data["status"] == "active"
    assert buy(api, tenant.pos, "r2", card, 10_000).data["card_activated"] is False


def test_activation_on_registration_blocks_redemption_until_a_customer_is_attached(
    api: Api, tenant: TenantKeys
) -> None:
    set_program(api, tenant, activation="registration")
    number = generate_number("", 13)
    plastic = api.post("/v1/cards", tenant.admin, {"program_id": "main", "kind": "plastic", "number": number})
    assert plastic.status_code == 201 and plastic.data["status"] == "issued"
    assert buy(api, tenant.pos, "r1", number, 100_000).data["points_earned"] == 50
    refused = buy(api, tenant.pos, "r2", number, 10_000, redeem=10)
    assert refused.status_code == 422 and refused.data["error"]["code"] == "card_not_active"
    registered = api.post("/v1/cards", tenant.pos, {"program_id": "main", "kind": "plastic", "number": number,
                                                     "customer": {"phone": "+79160000001"}})
    assert registered.status_code == 200 and registered.data["status"] == "active"
    assert buy(api, tenant.pos, "r2", number, 10_000, redeem=10).status_code == 200
    again = api.post("/v1/cards", tenant.pos, {"program_id": "main", "kind": "plastic", "number": number,
                                                "customer": {"phone": "+79160000002"}})
    assert again.status_code == 409 and again.data["error"]["code"] == "card_exists"


def test_plastic_numbers_must_pass_luhn(api: Api, tenant: TenantKeys) -> None:
    number = generate_number("2775", 16)
    broken = number[:-1] + str((int(number[-1]) + 1) % 10)
    r = api.post("/v1/cards", tenant.admin, {"program_id": "main", "kind": "plastic", "number": broken})
    assert r.status_code == 400 and r.data["error"]["code"] == "invalid_card_number"
    r = api.post("/v1/cards", tenant.admin, {"program_id": "main", "kind": "virtual", "number": number})
    assert r.status_code == 400


def test_blocked_card_is_refused_with_its_reason_and_unblocking_restores_it(api: Api, tenant: TenantKeys) -> None:
    card = new_card(api, tenant)
    blocked = api.post(f"/v1/cards/{card}/block", tenant.admin, {"reason": "reported stolen"})
    assert blocked.data["status"] == "blocked" and blocked.data["block_reason"] == "reported stolen"
    refused = buy(api, tenant.pos, "r1", card, 10_000)
    assert refused.status_code == 422 and refused.data["error"]["code"] == "card_blocked"
    assert "reported stolen" in refused.data["error"]["message"]
    assert api.post(f"/v1/cards/{card}/block", tenant.pos, {"reason": "x" * 5}).status_code == 403
    assert api.post(f"/v1/cards/{card}/unblock", tenant.admin).data["status"] == "active"
    assert buy(api, tenant.pos, "r1", card, 10_000).status_code == 200
    actions = [e["action"] for e in api.get("/v1/audit", tenant.admin).data["items"]]
    assert actions[:2] == ["card.unblocked", "card.blocked"]


# --- earning and redemption ---------------------------------------------------------------

def test_purchase_earns_and_redeems_with_exact_money(api: Api, tenant: TenantKeys) -> None:
    card = new_card(api, tenant)
    first = buy(api, tenant.pos, "r1", card, 100_000)
    assert first.status_code == 200
    assert {k: first.data[k] for k in ("points_earned", "points_redeemed", "discount", "payable", "balance")} == {
        "points_earned": 50, "points_redeemed": 0, "discount": 0, "payable": 100_000, "balance": 50}
    second = buy(api, tenant.pos, "r2", card, 50_000, redeem=50)
    assert {k: second.data[k] for k in ("points_earned", "points_redeemed", "discount", "payable", "balance")} == {
        "points_earned": 22, "points_redeemed": 50, "discount": 5_000, "payable": 45_000, "balance": 22}
    assert_ledger_matches(api, tenant, card)


def test_redeeming_more_than_allowed_is_a_422_with_the_maximum(api: Api, tenant: TenantKeys) -> None:
    card = new_card(api, tenant)
    buy(api, tenant.pos, "r1", card, 1_000_000)  # 500 points
    over_share = buy(api, tenant.pos, "r2", card, 10_000, redeem=31)
    assert over_share.status_code == 422
    err = over_share.data["error"]
    assert err["code"] == "redeem_exceeds_limit"
    assert err["details"] == [{"field": "redeem_points", "issue": "allowed maximum: 30"}]
    assert "30% of the receipt" in err["message"]
    over_balance = buy(api, tenant.pos, "r3", card, 10_000_000, redeem=501)
    assert over_balance.data["error"]["details"][0]["issue"] == "allowed maximum: 500"
    set_program(api, tenant, redemption={"point_value": 100, "max_share_bps": 3000, "min_balance": 1000})
    below_min = buy(api, tenant.pos, "r4", card, 100_000, redeem=10)
    assert below_min.data["error"]["details"][0]["issue"] == "allowed maximum: 0"
    assert balance(api, tenant, card) == (500, 0), "refused purchases change nothing"


def test_quote_gives_the_purchase_answer_and_writes_nothing(api: Api, tenant: TenantKeys) -> None:
    card = new_card(api, tenant)
    buy(api, tenant.pos, "r1", card, 200_000)
    body = {"receipt_id": "r2", "card_number": card, "store_id": "msk-01", "total": 50_000, "redeem_points": 100,
            "items": [{"sku": "cake", "category": "food", "quantity": 2, "amount": 50_000}]}
    quote = api.post("/v1/purchases/quote", tenant.pos, body)
    assert quote.status_code == 200
    assert api.get(f"/v1/cards/{card}/transactions", tenant.pos).data["items"][0]["receipt_id"] == "r1"
    assert balance(api, tenant, card) == (100, 0)
    done = api.post("/v1/purchases", tenant.pos, body)
    assert {**quote.data, "replayed": False} == done.data


def test_rules_from_the_program_apply_at_the_till(api: Api, tenant: TenantKeys) -> None:
    api.post("/v1/stores", tenant.admin, {"id": "spb-01", "name": "Nevsky", "region": "spb"})
    api.post("/v1/stores", tenant.admin, {"id": "kzn-01", "name": "Kazan", "region": "kazan"})
    set_program(api, tenant, store_ids=["msk-01"], regions=["spb"],
                earning={"rate_bps": 500, "excluded_categories": ["tobacco"], "category_multipliers": {"coffee": 20000},
                         "min_receipt": 5_000})
    card = new_card(api, tenant)
    assert buy(api, tenant.pos, "r1", card, 10_000).data["points_earned"] == 10  # coffee doubled
    assert buy(api, tenant.pos, "r2", card, 10_000, category="tobacco").data["points_earned"] == 0
    assert buy(api, tenant.pos, "r3", card, 4_999, category="food").data["points_earned"] == 0
    assert buy(api, tenant.pos, "r4", card, 10_000, store="spb-01", category="food").data["points_earned"] == 5
    outside = buy(api, tenant.pos, "r5", card, 10_000, store="kzn-01")
    assert outside.status_code == 422 and outside.data["error"]["code"] == "store_not_in_program"
    unknown = buy(api, tenant.pos, "r6", card, 10_000, store="nowhere")
    assert unknown.status_code == 422 and unknown.data["error"]["details"][0]["field"] == "store_id"


def test_store_bound_pos_key_only_sells_in_its_store(api: Api, tenant: TenantKeys) -> None:
    api.post("/v1/stores", tenant.admin, {"id": "spb-01", "name": "Nevsky"})
    till = api.post("/v1/keys", tenant.admin, {"role": "pos", "name": "till", "store_id": "msk-01"}).data["secret"]
    card = new_card(api, tenant)
    assert buy(api, till, "r1", card, 10_000).status_code == 200
    other = buy(api, till, "r2", card, 10_000, store="spb-01")
    assert other.status_code == 403 and "bound to store 'msk-01'" in other.data["error"]["message"]


def test_purchase_by_phone_and_ambiguity(api: Api, tenant: TenantKeys) -> None:
    card = new_card(api, tenant, phone="+79035550000")
    by_phone = api.post("/v1/purchases", tenant.pos, {
        "receipt_id": "r1", "phone": "8 903 555-00-00", "store_id": "msk-01", "total": 10_000,
        "items": [{"sku": "latte", "category": "coffee", "amount": 10_000}]})
    assert by_phone.status_code == 200 and by_phone.data["card_number"] == card
    new_card(api, tenant, phone="+79035550000")
    ambiguous = api.post("/v1/purchases", tenant.pos, {
        "receipt_id": "r2", "phone": "+79035550000", "store_id": "msk-01", "total": 10_000,
        "items": [{"sku": "latte", "category": "coffee", "amount": 10_000}]})
    assert ambiguous.status_code == 422 and ambiguous.data["error"]["code"] == "ambiguous_card"


def test_purchase_body_is_validated(api: Api, tenant: TenantKeys) -> None:
    card = new_card(api, tenant)
    cases = [
        ({"total": 10_000, "items": [{"sku": "a", "amount": 9_000}]}, "body"),
        ({"total": 100.5, "items": [{"sku": "a", "amount": 100}]}, "total"),
        ({"total": 100, "items": [{"sku": "a", "amount": -100}]}, "items[0].amount"),
        ({"total": 100, "items": []}, "items"),
        ({"total": 100, "items": [{"sku": "a", "amount": 100}], "redeem_points": -1}, "redeem_points"),
    ]
    for extra, field in cases:
        body = {"receipt_id": "rx", "card_number": card, "store_id": "msk-01", **extra}
        r = api.post("/v1/purchases", tenant.pos, body)
        assert r.status_code == 400, (extra, r.data)
        assert field in [d["field"] for d in r.data["error"]["details"]], (field, r.data)
    both = api.post("/v1/purchases", tenant.pos, {"receipt_id": "rx", "card_number": card, "phone": "+79161234567",
                                                   "store_id": "msk-01", "total": 1,
                                                   "items": [{"sku": "a", "amount": 1}]})
    assert both.status_code == 400
    assert ledger_sum(tenant.tenant_id, card) == 0


# --- exactly once ------------------------------------------------------------------------

def test_same_receipt_same_body_is_a_replay_and_different_body_is_refused(api: Api, tenant: TenantKeys) -> None:
    card = new_card(api, tenant)
    first = buy(api, tenant.pos, "r1", card, 100_000)
    again = buy(api, tenant.pos, "r1", card, 100_000)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.data == {**first.data, "replayed": True}
    other = buy(api, tenant.pos, "r1", card, 100_001)
    assert other.status_code == 422 and other.data["error"]["code"] == "idempotency_key_reused"
    assert balance(api, tenant, card) == (50, 0)
    api.post(f"/v1/cards/{card}/block", tenant.admin, {"reason": "lost"})
    late_retry = buy(api, tenant.pos, "r1", card, 100_000)
    assert late_retry.status_code == 200 and late_retry.data["replayed"] is True, "a retry gets its answer"


def test_receipt_ids_are_scoped_to_the_tenant(api: Api, tenant: TenantKeys, other_tenant: TenantKeys) -> None:
    mine = new_card(api, tenant)
    theirs = new_card(api, other_tenant)
    assert buy(api, tenant.pos, "shared-1", mine, 10_000).data["replayed"] is False
    assert buy(api, other_tenant.pos, "shared-1", theirs, 10_000).data["replayed"] is False
    assert buy(api, tenant.pos, "r2", theirs, 10_000).status_code == 404
    assert api.get(f"/v1/cards/{theirs}", tenant.support).status_code == 404
    assert api.get(f"/v1/cards/{theirs}/transactions", tenant.pos).status_code == 404
    refund = api.post("/v1/refunds", tenant.pos, {"refund_id": "f", "receipt_id": "shared-1"})
    assert refund.data["card_number"] == mine


def test_idempotency_key_header_on_card_issuance(api: Api, tenant: TenantKeys, other_tenant: TenantKeys) -> None:
    body = {"program_id": "main", "customer": {"phone": "+79161112233"}}
    first = api.post("/v1/cards", tenant.pos, body, headers={"Idempotency-Key": "issue-1"})
    again = api.post("/v1/cards", tenant.pos, body, headers={"Idempotency-Key": "issue-1"})
    assert first.status_code == again.status_code == 201
    assert again.data == first.data and again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    changed = api.post("/v1/cards", tenant.pos, {**body, "kind": "plastic"}, headers={"Idempotency-Key": "issue-1"})
    assert changed.status_code == 422 and changed.data["error"]["code"] == "idempotency_key_reused"
    theirs = api.post("/v1/cards", other_tenant.pos, body, headers={"Idempotency-Key": "issue-1"})
    assert theirs.status_code == 201 and theirs.data["number"] != first.data["number"]
    cards = api.get("/v1/customers/lookup?phone=%2B79161112233", tenant.pos).data["cards"]
    assert len(cards) == 1
    invalid = api.post("/v1/cards", tenant.pos, body, headers={"Idempotency-Key": "x" * 300})
    assert invalid.status_code == 400 and invalid.data["error"]["code"] == "invalid_idempotency_key"


def test_idempotency_key_in_flight_is_409(api: Api, tenant: TenantKeys) -> None:
    from datetime import UTC, datetime, timedelta

    from chalicelib.storage import idempotency as store

    store.claim(tenant.tenant_id, "POST /v1/cards", "busy-1", "whatever", datetime.now(UTC), timedelta(seconds=60))
    r = api.post("/v1/cards", tenant.pos, {"program_id": "main"}, headers={"Idempotency-Key": "busy-1"})
    assert r.status_code == 422, "held for a different body: that is a reuse, whatever its state"
    fp_claim = api.post("/v1/cards", tenant.pos, {"program_id": "main"}, headers={"Idempotency-Key": "busy-2"})
    assert fp_claim.status_code == 201
    from chalicelib.services.pos.idempotency import fingerprint

    store.claim(tenant.tenant_id, "POST /v1/cards", "busy-3", fingerprint("POST", "/v1/cards", b'{"program_id": "main"}'),
                datetime.now(UTC), timedelta(seconds=60))
    busy = api.post("/v1/cards", tenant.pos, {"program_id": "main"}, headers={"Idempotency-Key": "busy-3"})
    assert busy.status_code == 409 and busy.data["error"]["code"] == "idempotency_in_flight"
    assert busy.headers["Retry-After"] == "1"


# --- refunds ----------------------------------------------------------------------------

def test_partial_refunds_by_amount_and_lines_never_exceed_the_receipt(api: Api, tenant: TenantKeys) -> None:
    card = new_card(api, tenant)
    buy(api, tenant.pos, "r0", card, 1_000_000)  # 500 points to spend
    purchase = api.post("/v1/purchases", tenant.pos, {
        "receipt_id": "r1", "card_number": card, "store_id": "msk-01", "total": 100_000, "redeem_points": 200,
        "items": [{"sku": "beans", "category": "coffee", "quantity": 2, "amount": 60_000},
                  {"sku": "mug", "category": "goods", "quantity": 1, "amount": 40_000}]})
    assert purchase.data["points_earned"] == 40 and purchase.data["points_redeemed"] == 200
    by_line = api.post("/v1/refunds", tenant.pos, {"refund_id": "f1", "receipt_id": "r1",
                                                   "items": [{"sku": "mug", "quantity": 1, "amount": 40_000}]})
    assert by_line.status_code == 200
    assert {k: by_line.data[k] for k in ("amount_refunded", "points_reversed", "points_returned")} == {
        "amount_refunded": 40_000, "points_reversed": 16, "points_returned": 80}
    too_much = api.post("/v1/refunds", tenant.pos, {"refund_id": "f2", "receipt_id": "r1",
                                                    "items": [{"sku": "mug", "quantity": 1, "amount": 1}]})
    assert too_much.status_code == 422 and too_much.data["error"]["code"] == "refund_exceeds_line"
    over = api.post("/v1/refunds", tenant.pos, {"refund_id": "f3", "receipt_id": "r1", "amount": 60_001})
    assert over.status_code == 422 and over.data["error"]["code"] == "refund_exceeds_receipt"
    rest = api.post("/v1/refunds", tenant.pos, {"refund_id": "f4", "receipt_id": "r1"})
    assert {k: rest.data[k] for k in ("amount_refunded", "points_reversed", "points_returned")} == {
        "amount_refunded": 60_000, "points_reversed": 24, "points_returned": 120}
    done = api.post("/v1/refunds", tenant.pos, {"refund_id": "f5", "receipt_id": "r1", "amount": 1})
    assert done.status_code == 422 and done.data["error"]["code"] == "already_refunded"
    assert balance(api, tenant, card) == (500, 0)
    assert_ledger_matches(api, tenant, card)
    replay = api.post("/v1/refunds", tenant.pos, {"refund_id": "f1", "receipt_id": "r1",
                                                  "items": [{"sku": "mug", "quantity": 1, "amount": 40_000}]})
    assert replay.data == {**by_line.data, "replayed": True} and replay.headers["Idempotent-Replayed"] == "true"
    assert api.post("/v1/refunds", tenant.pos, {"refund_id": "f9", "receipt_id": "nope"}).status_code == 404


@pytest.mark.parametrize(("policy", "expected_balance", "written_off"), [
    ("negative_balance", -30, 0), ("write_off", 0, 30)])
def test_refund_of_already_spent_points_follows_the_program_policy(
    api: Api, tenant: TenantKeys, policy: str, expected_balance: int, written_off: int
) -> None:
    set_program(api, tenant, redemption={"point_value": 100, "max_share_bps": 10_000, "refund_spent_policy": policy})
    card = new_card(api, tenant)
    buy(api, tenant.pos, "r1", card, 100_000)  # +50
    buy(api, tenant.pos, "r2", card, 3_000, redeem=30)  # -30, +0
    r = api.post("/v1/refunds", tenant.pos, {"refund_id": "f1", "receipt_id": "r1"})
    assert (r.data["points_reversed"], r.data["points_written_off"], r.data["balance"]) == (
        50 - written_off, written_off, expected_balance)
    assert_ledger_matches(api, tenant, card)
    later = buy(api, tenant.pos, "r3", card, 100_000)
    assert later.data["balance"] == expected_balance + 50, "debt is repaid from the next accrual"


def test_pending_points_and_a_refund_inside_the_window(api: Api, tenant: TenantKeys) -> None:
    set_program(api, tenant, pending_days=14)
    card = new_card(api, tenant)
    r = buy(api, tenant.pos, "r1", card, 100_000)
    assert (r.data["balance"], r.data["pending"]) == (0, 50)
    refused = buy(api, tenant.pos, "r2", card, 100_000, redeem=10)
    assert refused.status_code == 422 and "no spendable points" in refused.data["error"]["message"]
    refund = api.post("/v1/refunds", tenant.pos, {"refund_id": "f1", "receipt_id": "r1", "amount": 50_000})
    assert (refund.data["points_reversed"], refund.data["balance"], refund.data["pending"]) == (25, 0, 25)
    assert_ledger_matches(api, tenant, card)


# --- ledger and adjustments ----------------------------------------------------------------

def test_ledger_is_newest_first_paginated_and_sums_to_the_balance(api: Api, tenant: TenantKeys) -> None:
    card = new_card(api, tenant)
    for i in range(5):
        buy(api, tenant.pos, f"r{i}", card, 10_000 * (i + 1))
    first = api.get(f"/v1/cards/{card}/transactions?limit=3", tenant.support).data
    rest = api.get(f"/v1/cards/{card}/transactions?limit=3&cursor={first['cursor']}", tenant.support).data
    entries = first["items"] + rest["items"]
    assert first["has_more"] is True and rest["has_more"] is False
    assert [e["receipt_id"] for e in entries] == ["r4", "r3", "r2", "r1", "r0"]
    assert [e["points"] for e in entries] == [25, 20, 15, 10, 5]
    assert [e["balance_after"] for e in entries] == [75, 50, 30, 15, 5]
    assert_ledger_matches(api, tenant, card)


def test_manual_adjustment_needs_a_reason_is_audited_and_applied_once(api: Api, tenant: TenantKeys) -> None:
    card = new_card(api, tenant)
    no_reason = api.post(f"/v1/cards/{card}/adjustments", tenant.admin, {"points": 100, "adjustment_id": "a1"})
    assert no_reason.status_code == 400 and no_reason.data["error"]["details"][0]["field"] == "reason"
    body = {"points": 100, "reason": "goodwill: broken machine", "adjustment_id": "a1"}
    first = api.post(f"/v1/cards/{card}/adjustments", tenant.admin, body)
    again = api.post(f"/v1/cards/{card}/adjustments", tenant.admin, body)
    assert first.status_code == again.status_code == 201 and first.data == again.data
    assert first.data["type"] == "adjustment" and first.data["balance_after"] == 100
    debit = api.post(f"/v1/cards/{card}/adjustments", tenant.admin,
                     {"points": -101, "reason": "correction", "adjustment_id": "a2"})
    assert debit.status_code == 422 and debit.data["error"]["code"] == "insufficient_points"
    assert api.post(f"/v1/cards/{card}/adjustments", tenant.pos, body).status_code == 403
    audit = [e for e in api.get("/v1/audit", tenant.admin).data["items"] if e["action"] == "card.adjusted"]
    assert len(audit) == 1 and audit[0]["detail"]["reason"] == "goodwill: broken machine"
    assert balance(api, tenant, card) == (100, 0)
    assert_ledger_matches(api, tenant, card)


def test_discount_program_gives_a_discount_and_no_points(api: Api, tenant: TenantKeys) -> None:
    set_program(api, tenant, kind="discount", discount={"percent_bps": 750}, earning={"rate_bps": 0})
    card = new_card(api, tenant)
    r = buy(api, tenant.pos, "r1", card, 10_001)
    assert (r.data["discount"], r.data["payable"], r.data["points_earned"]) == (750, 9_251, 0)
    refused = buy(api, tenant.pos, "r2", card, 10_000, redeem=1)
    assert refused.status_code == 422 and refused.data["error"]["code"] == "redemption_not_available"
