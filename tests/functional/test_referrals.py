"""Bring a friend: both rewarded once, on the friend's first qualifying purchase, within the referrer's limit."""

from __future__ import annotations

from typing import Any

from tests.functional.conftest import Api, TenantKeys
from tests.functional.test_pos_rules import MAIN, assert_ledger_matches, buy

REFERRAL = {"friend_points": 100, "referrer_points": 200, "min_purchase": 50_000, "max_per_referrer": 1}


def setup_referrer(api: Api, tenant: TenantKeys) -> tuple[str, str, str]:
    r = api.put("/v1/programs/main", tenant.admin, {**MAIN, "referral": REFERRAL})
    assert r.status_code == 200, r.data
    member = api.post("/v1/customers", tenant.admin, {"phone": "+79160000001", "email": "olga@example.com"}).data
    card = api.post("/v1/cards", tenant.pos, {"program_id": "main", "customer": {"phone": "+79160000001"}}).data
    return member["customer_id"], member["referral"]["code"], card["number"]


def friend_card(api: Api, tenant: TenantKeys, phone: str, code: str) -> Any:
    return api.post("/v1/cards", tenant.pos, {"program_id": "main",
                                              "customer": {"phone": phone, "referral_code": code}})


def test_both_rewarded_once_after_the_first_qualifying_purchase(api: Api, tenant: TenantKeys, clock: Any) -> None:
    referrer_id, code, referrer_card = setup_referrer(api, tenant)
    typed = f"{code[:4].lower()}-{code[4:].lower()}"
    issued = friend_card(api, tenant, "+79160000002", typed)
    assert issued.status_code == 201, issued.data
    friend = api.get(f"/v1/customers/{issued.data['customer_id']}", tenant.admin).data
    assert friend["referral"]["referred_by"] == referrer_id and friend["acquisition"] == {"channel": "referral"}
    card = issued.data["number"]

    small = buy(api, tenant.pos, "r1", card, 10_000)
    assert small.data["referral_points"] == 0, "below min_purchase: not qualifying, and not at sign-up either"
    assert api.get(f"/v1/cards/{referrer_card}", tenant.pos).data["balance"] == 0

    quote = api.post("/v1/purchases/quote", tenant.pos, {"receipt_id": "q", "card_number": card, "store_id": "msk-01", "total": 60_000,
                                                         "items": [{"sku": "x", "amount": 60_000}]})
    assert quote.status_code == 200, quote.data
    assert quote.data["referral_points"] == 100
    assert api.get(f"/v1/cards/{referrer_card}", tenant.pos).data["balance"] == 0, "a quote writes nothing"

    qualifying = buy(api, tenant.pos, "r2", card, 60_000)
    assert qualifying.status_code == 200 and qualifying.data["referral_points"] == 100
    assert qualifying.data["balance"] == 5 + 30 + 100
    assert buy(api, tenant.pos, "r2", card, 60_000).data["replayed"] is True
    assert buy(api, tenant.pos, "r3", card, 60_000).data["referral_points"] == 0

    assert api.get(f"/v1/cards/{referrer_card}", tenant.pos).data["balance"] == 200
    ledger = api.get(f"/v1/cards/{referrer_card}/transactions", tenant.admin).data["items"]
    assert [(e["type"], e["points"], e["reason"], e["receipt_id"]) for e in ledger] == [
        ("bonus", 200, f"referral: friend {friend['customer_id']}", None)]
    friend_ledger = api.get(f"/v1/cards/{card}/transactions", tenant.admin).data["items"]
    assert [e["points"] for e in friend_ledger if e["type"] == "bonus"] == [100]
    referrer = api.get(f"/v1/customers/{referrer_id}", tenant.admin).data["referral"]
    assert referrer["friends_rewarded"] == 1 and referrer["referred_by"] is None
    assert api.get(f"/v1/customers/{friend['customer_id']}", tenant.admin).data["referral"]["rewarded_at"] == (
        "2026-11-02T10:00:00Z")
    for number in (card, referrer_card):
        assert_ledger_matches(api, tenant, number)

    second = friend_card(api, tenant, "+79160000003", code).data["number"]
    over_limit = buy(api, tenant.pos, "s1", second, 50_000)
    assert over_limit.data["referral_points"] == 100, "the friend's bonus is not capped"
    assert api.get(f"/v1/cards/{referrer_card}", tenant.pos).data["balance"] == 200, "referrer capped at 1 friend"
    assert api.get(f"/v1/customers/{referrer_id}", tenant.admin).data["referral"]["friends_rewarded"] == 1


def test_self_referral_unknown_codes_and_other_tenants_are_refused(
    api: Api, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    _, code, _ = setup_referrer(api, tenant)
    same_person = api.post("/v1/customers", tenant.admin, {"phone": "+79169999999", "email": "OLGA@example.com",
                                                           "referral_code": code})
    assert same_person.status_code == 422 and same_person.data["error"]["code"] == "referral_self"
    assert same_person.data["error"]["details"][0]["field"] == "referral_code"
    unknown = friend_card(api, tenant, "+79160000004", "ZZZZZZZZ")
    assert unknown.status_code == 422 and unknown.data["error"]["code"] == "unknown_referral_code"
    assert api.get("/v1/customers?phone=%2B79160000004", tenant.admin).status_code == 404, "nothing stored"
    elsewhere = api.post("/v1/customers", other_tenant.admin, {"phone": "+79160000005", "referral_code": code})
    assert elsewhere.status_code == 422 and elsewhere.data["error"]["code"] == "unknown_referral_code"


def test_referral_rules_belong_to_points_programs(api: Api, tenant: TenantKeys) -> None:
    r = api.put("/v1/programs/main", tenant.admin, {**MAIN, "referral": {"min_purchase": 100}})
    assert r.status_code == 400 and "rewards the friend" in str(r.data)
    discount = {"name": "D", "kind": "discount", "discount": {"percent_bps": 500}, "referral": REFERRAL}
    assert api.put("/v1/programs/main", tenant.admin, discount).status_code == 400
