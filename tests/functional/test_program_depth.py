"""Program depth through the till's own calls: tiers, expiry, coupons and gift cards on the same purchase/refund.

These are the edge cases a cashier hits: the receipt that crosses a tier
threshold, a refund after the points expired, a coupon and points on one
receipt, a gift card spent to zero across two receipts.
"""

from __future__ import annotations

from typing import Any

from chalicelib.services.program import sweeps
from chalicelib.storage.loyalty import get_card, ledger_sum
from tests.functional.conftest import Api, TenantKeys
from tests.functional.test_pos_rules import MAIN, balance, buy, new_card, set_program


def purchase(api: Api, key: str, receipt: str, total: int, *, card: str | None = None, redeem: int = 0,
             coupons: list[str] | None = None, gift: list[tuple[str, int]] | None = None,
             category: str = "coffee") -> Any:
    body: dict[str, Any] = {"receipt_id": receipt, "store_id": "msk-01", "total": total,
                            "items": [{"sku": "latte", "category": category, "quantity": 1, "amount": total}]}
    if card:
        body["card_number"] = card
    if redeem:
        body["redeem_points"] = redeem
    if coupons:
        body["coupons"] = coupons
    if gift:
        body["gift_cards"] = [{"card_number": n, "amount": a} for n, a in gift]
    return api.post("/v1/purchases", key, body)


def entries(api: Api, key: str, card: str) -> list[dict[str, Any]]:
    r = api.get(f"/v1/cards/{card}/transactions?limit=200", key)
    assert r.status_code == 200, r.data
    return r.data["items"]


# --- tiers --------------------------------------------------------------------------------

TIERS = {"metric": "spend", "levels": [
    {"id": "base", "name": "Base", "threshold": 0},
    {"id": "silver", "name": "Silver", "threshold": 150_000, "earn_multiplier_bps": 20_000},
]}


def test_the_receipt_crossing_a_threshold_upgrades_after_itself_and_says_so(api: Api, tenant: TenantKeys,
                                                                              clock: Any) -> None:
    set_program(api, tenant, tiers=TIERS)
    card = new_card(api, tenant)
    first = buy(api, tenant.pos, "t-1", card, 100_000)
    assert first.status_code == 200, first.data
    assert (first.data["points_earned"], first.data["tier"], first.data["tier_upgrade"]) == (50, "base", None)

    crossing = buy(api, tenant.pos, "t-2", card, 100_000)  # 200,000 spent: over silver's 150,000 midway
    assert crossing.data["points_earned"] == 50  # priced at the tier the card had when the receipt started
    assert crossing.data["tier"] == "silver"
    assert crossing.data["tier_upgrade"] == {"previous": "base", "tier": "silver"}

    after = buy(api, tenant.pos, "t-3", card, 100_000)
    assert (after.data["points_earned"], after.data["tier_upgrade"]) == (100, None)  # 5% x 2 from now on
    assert api.get(f"/v1/cards/{card}", tenant.support).data["tier"] == "silver"

    ledger = entries(api, tenant.support, card)
    tier_entries = [e for e in ledger if e["type"] == "tier"]
    assert len(tier_entries) == 1
    assert (tier_entries[0]["tier"], tier_entries[0]["previous_tier"], tier_entries[0]["points"]) == (
        "silver", "base", 0)
    assert tier_entries[0]["receipt_id"] == "t-2"
    version = api.get("/v1/programs/main", tenant.admin).data["version"]
    assert {e["rule_version"] for e in ledger} == {version}  # every entry says which rules produced it
    assert ledger_sum(tenant.tenant_id, card) == sum(balance(api, tenant, card)) == 200


def test_a_pure_discount_program_by_tiers(api: Api, tenant: TenantKeys, clock: Any) -> None:
    set_program(api, tenant, kind="discount", tiers={"metric": "spend", "levels": [
        {"id": "base", "name": "Base", "threshold": 0, "discount_bps": 300},
        {"id": "gold", "name": "Gold", "threshold": 50_000, "discount_bps": 1_000},
    ]})
    card = new_card(api, tenant)
    first = buy(api, tenant.pos, "d-1", card, 60_000)
    assert first.status_code == 200, first.data
    assert (first.data["discount"], first.data["payable"], first.data["points_earned"]) == (1_800, 58_200, 0)
    assert first.data["tier_upgrade"] == {"previous": "base", "tier": "gold"}  # 58,200 paid >= 50,000
    second = buy(api, tenant.pos, "d-2", card, 10_000)
    assert (second.data["discount"], second.data["payable"]) == (1_000, 9_000)
    refused = buy(api, tenant.pos, "d-3", card, 10_000, redeem=1)
    assert refused.status_code == 422
    assert refused.data["error"]["code"] == "redemption_not_available"


# --- pending and expiry ---------------------------------------------------------------------

def test_pending_points_mature_and_a_refund_inside_the_window_takes_them_first(api: Api, tenant: TenantKeys,
                                                                                clock: Any) -> None:
    set_program(api, tenant, pending_days=14)
    card = new_card(api, tenant)
    buy(api, tenant.pos, "p-1", card, 100_000)
    assert balance(api, tenant, card) == (0, 50)
    clock.advance(days=14)
    assert balance(api, tenant, card) == (50, 0)  # matured by the read itself: no job needed
    buy(api, tenant.pos, "p-2", card, 200_000)
    assert balance(api, tenant, card) == (50, 100)
    r = api.post("/v1/refunds", tenant.pos, {"refund_id": "p-2-r", "receipt_id": "p-2"})
    assert (r.data["points_reversed"], r.data["points_written_off"]) == (100, 0)
    assert balance(api, tenant, card) == (50, 0)  # the matured points were not touched
    assert ledger_sum(tenant.tenant_id, card) == 50


def test_a_refund_after_the_points_expired_takes_nothing_else(api: Api, tenant: TenantKeys, clock: Any) -> None:
    set_program(api, tenant, expiry_days=30)
    card = new_card(api, tenant)
    buy(api, tenant.pos, "e-1", card, 100_000)  # 50 points, expire on day 30
    clock.advance(days=20)
    buy(api, tenant.pos, "e-2", card, 100_000)  # 50 points, expire on day 50
    clock.advance(days=11)
    assert balance(api, tenant, card) == (50, 0)  # e-1's points stopped counting at their expiry

    r = api.post("/v1/refunds", tenant.pos, {"refund_id": "e-1-r", "receipt_id": "e-1"})
    assert r.status_code == 200, r.data
    assert (r.data["points_reversed"], r.data["points_expired"], r.data["balance"]) == (0, 50, 50)

    assert sweeps.run_daily(clock.now())  # the daily sweep writes the expiry entry
    ledger = entries(api, tenant.support, card)
    assert [(e["type"], e["points"]) for e in ledger if e["type"] == "expiry"] == [("expiry", -50)]
    assert ledger_sum(tenant.tenant_id, card) == 50 == balance(api, tenant, card)[0]


# --- coupons ------------------------------------------------------------------------------------

def shared_campaign(api: Api, tenant: TenantKeys, campaign_id: str, code: str, effect: dict[str, int],
                    **limits: Any) -> None:
    body = {"id": campaign_id, "name": campaign_id, "program_id": "main", "mode": "shared", "code": code,
            "effect": effect, "limits": {"uses_per_code": 0, "per_customer": 1, **limits}}
    r = api.post("/v1/coupon-campaigns", tenant.admin, body)
    assert r.status_code == 201, r.data


def test_a_coupon_and_points_on_one_receipt(api: Api, tenant: TenantKeys, clock: Any) -> None:
    set_program(api, tenant)
    shared_campaign(api, tenant, "welcome", "WELCOME10", {"kind": "percent_off", "value": 1_000})
    card = new_card(api, tenant)
    buy(api, tenant.pos, "c-0", card, 200_000)  # 100 points to spend

    quote = api.post("/v1/purchases/quote", tenant.pos, {
        "receipt_id": "c-1", "card_number": card, "store_id": "msk-01", "total": 100_000, "redeem_points": 20,
        "coupons": ["welcome-10"], "items": [{"sku": "latte", "category": "coffee", "amount": 100_000}]})
    assert quote.status_code == 200, quote.data
    r = purchase(api, tenant.pos, "c-1", 100_000, card=card, redeem=20, coupons=["welcome-10"])
    assert r.status_code == 200, r.data
    assert r.data == {**quote.data, "balance": r.data["balance"]}  # the quote consumed nothing
    # 10% off first (10,000), then 20 points (2,000): 88,000 paid in money earns 5% = 44 points
    assert r.data["coupons"] == [{"code": "WELCOME10", "applied": True, "campaign_id": "welcome", "reason": None,
                                  "message": None, "discount": 10_000, "bonus_points": 0}]
    assert (r.data["discount"], r.data["payable"], r.data["points_earned"]) == (12_000, 88_000, 44)

    again = purchase(api, tenant.pos, "c-2", 50_000, card=card, coupons=["WELCOME10", "NOPE-NOPE"])
    assert again.status_code == 200, again.data  # the purchase goes through without them
    assert [(c["code"], c["applied"], c["reason"]) for c in again.data["coupons"]] == [
        ("WELCOME10", False, "customer_limit"), ("NOPENOPE", False, "unknown_code")]
    assert (again.data["discount"], again.data["points_earned"]) == (0, 25)

    refund = api.post("/v1/refunds", tenant.pos, {"refund_id": "c-1-r", "receipt_id": "c-1"})
    assert refund.data["coupons_released"] == ["WELCOME10"]
    assert (refund.data["points_reversed"], refund.data["points_returned"]) == (44, 20)
    reused = purchase(api, tenant.pos, "c-3", 10_000, card=card, coupons=["welcome10"])
    assert reused.data["coupons"][0]["applied"] is True and reused.data["discount"] == 1_000
    assert ledger_sum(tenant.tenant_id, card) == sum(balance(api, tenant, card))


def test_a_single_use_code_serves_one_receipt_and_bonus_coupons_give_points(api: Api, tenant: TenantKeys,
                                                                            clock: Any) -> None:
    set_program(api, tenant)
    shared_campaign(api, tenant, "first", "FIRST1", {"kind": "amount_off", "value": 5_000}, uses_per_code=1,
                    min_receipt=20_000)
    shared_campaign(api, tenant, "bonus", "BONUS50", {"kind": "bonus_points", "value": 50}, categories=["tea"])
    anna, boris = new_card(api, tenant), new_card(api, tenant, phone="+79160000002")
    small = purchase(api, tenant.pos, "s-0", 10_000, card=anna, coupons=["FIRST1", "BONUS50"])
    assert [c["reason"] for c in small.data["coupons"]] == ["below_min_receipt", "no_matching_items"]
    used = purchase(api, tenant.pos, "s-1", 30_000, card=anna, coupons=["FIRST1", "BONUS50"], category="tea")
    assert [c["applied"] for c in used.data["coupons"]] == [True, True]
    assert (used.data["discount"], used.data["points_earned"]) == (5_000, 12 + 50)  # 5% of 25,000 + bonus
    bonus = [e for e in entries(api, tenant.support, anna) if e["type"] == "bonus"]
    assert [(e["points"], e["coupon"]) for e in bonus] == [(50, "BONUS50")]
    late = purchase(api, tenant.pos, "s-2", 30_000, card=boris, coupons=["FIRST1"])
    assert (late.data["coupons"][0]["reason"], late.data["discount"]) == ("used_up", 0)


# --- gift cards -----------------------------------------------------------------------------------

def gift_card(api: Api, tenant: TenantKeys, amount: int) -> str:
    r = api.post("/v1/programs", tenant.admin, {"id": "gift", "name": "Gift cards", "kind": "gift"})
    assert r.status_code == 201, r.data
    r = api.post("/v1/gift-cards", tenant.pos, {"sale_id": "sale-1", "program_id": "gift", "amount": amount})
    assert r.status_code == 201, r.data
    return r.data["number"]


def test_a_gift_card_spent_to_zero_across_two_receipts_and_refunded_back(api: Api, tenant: TenantKeys,
                                                                         clock: Any) -> None:
    set_program(api, tenant, **{k: v for k, v in MAIN.items() if k != "name"})
    gift = gift_card(api, tenant, 100_000)
    card = new_card(api, tenant)

    first = purchase(api, tenant.pos, "g-1", 100_000, card=card, gift=[(gift, 60_000)])
    assert first.status_code == 200, first.data
    assert first.data["gift_cards"] == [{"card_number": gift, "amount": 60_000, "balance": 40_000}]
    assert (first.data["to_pay"], first.data["points_earned"]) == (40_000, 50)  # gift money is money: it earns

    second = purchase(api, tenant.pos, "g-2", 40_000, gift=[(gift, 40_000)])  # an anonymous customer
    assert second.status_code == 200, second.data
    assert (second.data["card_number"], second.data["to_pay"], second.data["gift_cards"][0]["balance"]) == (
        None, 0, 0)
    empty = purchase(api, tenant.pos, "g-3", 1_000, gift=[(gift, 1)])
    assert empty.status_code == 422
    assert empty.data["error"]["code"] == "insufficient_funds"
    assert empty.data["error"]["details"] == [{"field": "gift_cards[0].amount", "issue": "at most 0"}]

    half = api.post("/v1/refunds", tenant.pos, {"refund_id": "g-1-r", "receipt_id": "g-1", "amount": 50_000})
    assert half.data["gift_cards"] == [{"card_number": gift, "amount": 30_000, "balance": 30_000}]
    whole = api.post("/v1/refunds", tenant.pos, {"refund_id": "g-2-r", "receipt_id": "g-2"})
    assert (whole.data["card_number"], whole.data["gift_cards"]) == (
        None, [{"card_number": gift, "amount": 40_000, "balance": 70_000}])

    assert api.get(f"/v1/gift-cards/{gift}", tenant.support).data["money"] == 70_000
    assert ledger_sum(tenant.tenant_id, gift, field="amount") == 70_000
    assert get_card(tenant.tenant_id, gift).wallet.total == 0  # no points ever on a money card
    assert ledger_sum(tenant.tenant_id, card) == sum(balance(api, tenant, card))


def test_gift_and_points_cards_are_never_mixed_up(api: Api, tenant: TenantKeys, clock: Any) -> None:
    gift = gift_card(api, tenant, 10_000)
    card = new_card(api, tenant)
    as_loyalty = purchase(api, tenant.pos, "m-1", 1_000, card=gift)
    assert (as_loyalty.status_code, as_loyalty.data["error"]["code"]) == (422, "gift_card_as_loyalty_card")
    as_gift = purchase(api, tenant.pos, "m-2", 1_000, card=card, gift=[(card, 500)])
    assert as_gift.status_code == 400  # the same card twice on one receipt is malformed
    other = new_card(api, tenant, phone="+79160000003")
    points_as_money = purchase(api, tenant.pos, "m-3", 1_000, card=card, gift=[(other, 500)])
    assert (points_as_money.status_code, points_as_money.data["error"]["code"]) == (422, "not_a_gift_card")
    too_much = purchase(api, tenant.pos, "m-4", 1_000, card=card, gift=[(gift, 1_001)])
    assert (too_much.status_code, too_much.data["error"]["code"]) == (422, "gift_exceeds_payable")
    assert api.get(f"/v1/cards/{gift}/transactions", tenant.support).status_code == 404
    assert api.get(f"/v1/gift-cards/{gift}", tenant.support).data["money"] == 10_000  # nothing moved
