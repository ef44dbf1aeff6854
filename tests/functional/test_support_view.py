"""The call-center view: exact balances, tiers, the ledger with its rule versions, consents, masked contacts;
read-only for the support role everywhere, and blind to other tenants."""

from __future__ import annotations

from typing import Any

from chalicelib.api.registry import routes
from chalicelib.domain.roles import Role
from chalicelib.storage.tables import LoyaltyRecord
from tests.functional.conftest import Api, TenantKeys
from tests.functional.test_pos_rules import buy, set_program
from tests.functional.test_segments import SMS, TIERS

PHONE = "+79161234567"
ANNA = {"phone": PHONE, "email": "anna.k@example.com", "first_name": "Anna", "last_name": "Petrova",
        "consents": [SMS, {"kind": "email", "granted": False, "source": "site", "text_version": "v2"}]}


def issue(api: Api, tenant: TenantKeys, customer: dict[str, Any]) -> dict[str, Any]:
    r = api.post("/v1/cards", tenant.pos, {"program_id": "main", "customer": customer})
    assert r.status_code == 201, r.data
    return r.data


def program_version(api: Api, tenant: TenantKeys) -> int:
    return api.get("/v1/programs/main", tenant.admin).data["version"]


def test_support_sees_balance_tier_ledger_with_rule_versions_consents_and_masked_contacts(
        api: Api, tenant: TenantKeys, clock: Any) -> None:
    set_program(api, tenant, tiers=TIERS)
    v1 = program_version(api, tenant)
    card = issue(api, tenant, ANNA)
    number = card["number"]
    assert buy(api, tenant.pos, "s-1", number, 100_000).data["points_earned"] == 50
    clock.advance(minutes=5)
    assert buy(api, tenant.pos, "s-2", number, 100_000).data["tier"] == "silver"
    clock.advance(minutes=5)
    set_program(api, tenant, tiers=TIERS, earning={"rate_bps": 1000})
    v2 = program_version(api, tenant)
    assert v2 == v1 + 1
    clock.advance(minutes=5)
    assert buy(api, tenant.pos, "s-3", number, 10_000).data["points_earned"] == 20  # 10% x silver's 2
    clock.advance(minutes=5)
    adjusted = api.post(f"/v1/cards/{number}/adjustments", tenant.admin,
                        {"adjustment_id": "adj-1", "points": 7, "reason": "goodwill gesture"})
    assert adjusted.status_code == 201, adjusted.data

    r = api.get(f"/v1/support/customers?phone={PHONE.replace('+', '%2B')}", tenant.support)
    assert r.status_code == 200, r.data
    view = r.data
    assert view["customer"] == {
        "customer_id": card["customer_id"], "name": "Anna Petrova", "phone": "+7 *** ***-45-67",
        "email": "a***@example.com", "status": "active",
        "consents": [
            {"kind": "email", "granted": False, "at": "2026-11-02T10:00:00Z", "source": "site", "text_version": "v2",
             "actor": f"pos:{tenant.pos.split('.')[1]}"},
            {"kind": "sms", "granted": True, "at": "2026-11-02T10:00:00Z", "source": "pos", "text_version": "v1",
             "actor": f"pos:{tenant.pos.split('.')[1]}"},
        ]}
    assert view["cards"] == [{"number": number, "program_id": "main", "status": "active", "balance": 127,
                              "pending": 0, "tier": "silver", "tier_since": "2026-11-02T10:05:00Z", "money": None}]
    got = [(e["type"], e["points"], e["receipt_id"], e["rule_version"], e["reason"]) for e in
           view["recent_transactions"]]
    assert got == [("adjustment", 7, None, v2, "goodwill gesture"), ("accrual", 20, "s-3", v2, None),
                   ("tier", 0, "s-2", v1, "upgrade: qualification 200000 reached silver"),
                   ("accrual", 50, "s-2", v1, None), ("accrual", 50, "s-1", v1, None)]
    assert {e["store_id"] for e in view["recent_transactions"][1:]} == {"msk-01"}
    assert {e["card_number"] for e in view["recent_transactions"]} == {number}
    ats = [e["at"] for e in view["recent_transactions"]]
    assert ats == sorted(ats, reverse=True)
    assert sum(e["points"] for e in view["recent_transactions"]) == 127

    by_card = api.get(f"/v1/support/customers?card={number}", tenant.support)
    assert by_card.status_code == 200 and by_card.data == view
    typed = api.get("/v1/support/customers?phone=8%20916%20123-45-67", tenant.admin)
    assert typed.status_code == 200 and typed.data == view, "the admin may use the view too; any phone format"


def test_recent_transactions_are_the_last_twenty_across_all_cards(api: Api, tenant: TenantKeys, clock: Any) -> None:
    first = issue(api, tenant, {"phone": PHONE})["number"]
    second = issue(api, tenant, {"phone": PHONE})["number"]
    receipts = []
    for i in range(22):
        number = first if i % 3 else second
        assert buy(api, tenant.pos, f"r-{i:02d}", number, 10_000 + i * 100).status_code == 200
        receipts.append(f"r-{i:02d}")
        clock.advance(minutes=1)
    view = api.get(f"/v1/support/customers?card={second}", tenant.support).data
    assert {c["number"] for c in view["cards"]} == {first, second}
    assert [e["receipt_id"] for e in view["recent_transactions"]] == receipts[::-1][:20]
    expected_cards = [first if int(r[2:]) % 3 else second for r in receipts[::-1][:20]]
    assert [e["card_number"] for e in view["recent_transactions"]] == expected_cards
    assert sum(c["balance"] for c in view["cards"]) == sum((10_000 + i * 100) // 2_000 for i in range(22))


def test_lookup_errors(api: Api, tenant: TenantKeys) -> None:
    issue(api, tenant, {"phone": PHONE})
    missing = api.get("/v1/support/customers?phone=%2B79990000000", tenant.support)
    assert missing.status_code == 404 and missing.data["error"]["code"] == "customer_not_found"
    assert api.get("/v1/support/customers?card=1234567890128", tenant.support).status_code == 404
    bad = api.get("/v1/support/customers?phone=123", tenant.support)
    assert bad.status_code == 400 and bad.data["error"]["details"][0]["field"] == "phone"
    none = api.get("/v1/support/customers", tenant.support)
    assert none.status_code == 400 and none.data["error"]["code"] == "validation_error"
    assert api.get("/v1/support/customers?name=anna", tenant.support).status_code == 400
    assert api.get(f"/v1/support/customers?phone={PHONE.replace('+', '%2B')}", tenant.pos).status_code == 403


def test_the_view_writes_nothing(api: Api, tenant: TenantKeys) -> None:
    number = issue(api, tenant, ANNA)["number"]
    before = sorted((r.pk, r.sk, int(r.version or 0)) for r in LoyaltyRecord.scan())
    audit_before = api.get("/v1/audit", tenant.admin).data["items"]
    assert api.get(f"/v1/support/customers?card={number}", tenant.support).status_code == 200
    assert sorted((r.pk, r.sk, int(r.version or 0)) for r in LoyaltyRecord.scan()) == before
    assert api.get("/v1/audit", tenant.admin).data["items"] == audit_before


def test_support_is_refused_on_every_write_route() -> None:
    """No write of tenant data; an operator's only writes are on their own session (refresh, scope, sign-out)."""
    writes = [r for r in routes() if r.method != "GET"]
    assert len(writes) > 20
    assert [f"{r.method} {r.path}" for r in writes if Role.SUPPORT in r.roles and not r.sessions_only] == []
    own = sorted(f"{r.method} {r.path}" for r in writes if Role.SUPPORT in r.roles)
    assert own == ["POST /v1/auth/session/refresh", "POST /v1/auth/sign-out", "PUT /v1/auth/session/scope"]


def test_support_cannot_change_a_customer(api: Api, tenant: TenantKeys) -> None:
    card = issue(api, tenant, ANNA)
    created = api.post("/v1/customers", tenant.support, {"phone": "+79160000003"})
    assert created.status_code == 403 and created.data["error"]["code"] == "forbidden"
    patched = api.patch(f"/v1/customers/{card['customer_id']}", tenant.support, {"first_name": "Eve"})
    assert patched.status_code == 403 and patched.data["error"]["code"] == "forbidden"
    consents = api.post(f"/v1/customers/{card['customer_id']}/consents", tenant.support, {"consents": [SMS]})
    assert consents.status_code == 403
    adjusted = api.post(f"/v1/cards/{card['number']}/adjustments", tenant.support,
                        {"adjustment_id": "adj-x", "points": 100, "reason": "please"})
    assert adjusted.status_code == 403
    assert api.get(f"/v1/customers/{card['customer_id']}", tenant.admin).data["first_name"] == "Anna"
    assert api.get(f"/v1/cards/{card['number']}", tenant.support).data["balance"] == 0


def test_another_tenants_support_never_finds_the_customer(api: Api, tenant: TenantKeys,
                                                          other_tenant: TenantKeys) -> None:
    card = issue(api, tenant, ANNA)
    for query in (f"phone={PHONE.replace('+', '%2B')}", f"card={card['number']}"):
        for key in (other_tenant.support, other_tenant.admin):
            r = api.get(f"/v1/support/customers?{query}", key)
            assert r.status_code == 404 and r.data["error"]["code"] == "customer_not_found", query
    theirs = issue(api, other_tenant, {"phone": PHONE, "first_name": "Other"})
    mine = api.get(f"/v1/support/customers?phone={PHONE.replace('+', '%2B')}", tenant.support).data
    assert mine["customer"]["customer_id"] == card["customer_id"] != theirs["customer_id"]
    assert [c["number"] for c in mine["cards"]] == [card["number"]]
    assert api.get(f"/v1/support/customers?phone={PHONE.replace('+', '%2B')}", other_tenant.support).data[
        "customer"]["name"] == "Other"
