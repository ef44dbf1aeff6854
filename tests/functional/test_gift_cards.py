"""Gift and prepaid cards through the API: sale, top-up, expiry, balance, ledger, corrections, access."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from chalicelib.domain.cards import luhn_check_digit
from chalicelib.domain.principal import Principal
from chalicelib.domain.roles import Role
from chalicelib.schemas.gift_cards import GiftCardTopUp
from chalicelib.services.pos import gift_cards
from chalicelib.storage import loyalty
from chalicelib.storage.loyalty import ledger_sum
from tests.functional.conftest import Api, TenantKeys

NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def gift_program(api: Api, tenant: TenantKeys, program_id: str = "gift", **gift: Any) -> dict:
    body = {"id": program_id, "name": f"{program_id} cards", "kind": "gift", "gift": gift}
    r = api.post("/v1/programs", tenant.admin, body)
    assert r.status_code == 201, r.data
    return r.data


def sell(api: Api, key: str, sale_id: str, amount: int, program_id: str = "gift", **extra: Any) -> Any:
    return api.post("/v1/gift-cards", key, {"sale_id": sale_id, "program_id": program_id, "amount": amount, **extra})


def sold(api: Api, tenant: TenantKeys, sale_id: str, amount: int, **extra: Any) -> str:
    r = sell(api, tenant.pos, sale_id, amount, **extra)
    assert r.status_code == 201, r.data
    return r.data["number"]


def top_up(api: Api, key: str, number: str, topup_id: str, amount: int, **extra: Any) -> Any:
    return api.post(f"/v1/gift-cards/{number}/top-ups", key, {"topup_id": topup_id, "amount": amount, **extra})


def money(api: Api, tenant: TenantKeys, number: str) -> int:
    r = api.get(f"/v1/gift-cards/{number}", tenant.support)
    assert r.status_code == 200, r.data
    return r.data["money"]


def assert_ledger_matches(api: Api, tenant: TenantKeys, number: str) -> None:
    assert ledger_sum(tenant.tenant_id, number, field="amount") == money(api, tenant, number)


def plastic_number(body: str = "777000123456") -> str:
    return body + luhn_check_digit(body)


def error(r: Any) -> tuple[int, str, list[tuple[str, str]]]:
    e = r.data["error"]
    return r.status_code, e["code"], [(d["field"], d["issue"]) for d in e["details"]]


@pytest.fixture
def gift(api: Api, tenant: TenantKeys, clock: Any) -> TenantKeys:
    """The tenant with a non-reloadable gift program of fixed nominals, valid a year, and a reloadable prepaid one."""
    gift_program(api, tenant, nominals=[100_000, 50_000], validity_days=365)
    gift_program(api, tenant, "prepaid", reloadable=True, min_amount=1_000, max_amount=200_000, max_balance=300_000,
                 validity_days=30)
    return tenant


# --- sale ------------------------------------------------------------------------------

def test_sale_of_a_nominal_creates_a_loaded_virtual_card_with_its_ledger(api: Api, gift: TenantKeys) -> None:
    r = sell(api, gift.pos, "till1-s1", 50_000, store_id="msk-01")
    assert r.status_code == 201, r.data
    card = r.data
    assert card["money"] == 50_000 and card["currency"] == "RUB" and card["status"] == "active"
    assert card["kind"] == "virtual" and len(card["number"]) == 13 and card["program_id"] == "gift"
    assert datetime.fromisoformat(card["expires_at"]) == NOW + timedelta(days=365)
    assert card["expired"] is False and card["replayed"] is False
    assert datetime.fromisoformat(card["issued_at"]) == NOW == datetime.fromisoformat(card["activated_at"])
    assert api.get(f"/v1/gift-cards/{card['number']}", gift.pos).data == card
    entries = api.get(f"/v1/gift-cards/{card['number']}/transactions", gift.support).data["items"]
    assert [(e["type"], e["amount"], e["balance_after"], e["operation_id"], e["store_id"]) for e in entries] == [
        ("sale", 50_000, 50_000, "till1-s1", "msk-01")]
    assert entries[0]["actor"].startswith("pos:") and entries[0]["rule_version"] == 1
    assert_ledger_matches(api, gift, card["number"])


def test_sale_amount_must_be_a_nominal_or_within_limits(api: Api, gift: TenantKeys) -> None:
    assert error(sell(api, gift.pos, "s1", 70_000)) == (
        422, "amount_not_allowed", [("amount", "one of: 50000, 100000")])
    assert sell(api, gift.pos, "s1", 100_000).data["money"] == 100_000
    assert error(sell(api, gift.pos, "s2", 999, "prepaid")) == (
        422, "amount_out_of_range", [("amount", "between 1000 and 200000")])
    assert error(sell(api, gift.pos, "s3", 200_001, "prepaid"))[1] == "amount_out_of_range"
    assert sell(api, gift.pos, "s4", 1_000, "prepaid").data["money"] == 1_000
    assert sell(api, gift.pos, "s5", 200_000, "prepaid").data["money"] == 200_000


def test_sale_needs_an_active_gift_program_and_a_known_store(api: Api, gift: TenantKeys) -> None:
    assert error(sell(api, gift.pos, "s1", 50_000, "main")) == (
        422, "not_gift_program", [("program_id", "Program 'main' is not a gift program.")])
    assert error(sell(api, gift.pos, "s1", 50_000, "nope"))[:2] == (422, "unknown_program")
    assert error(sell(api, gift.pos, "s1", 50_000, store_id="spb-99"))[:2] == (422, "unknown_store")
    r = api.put("/v1/programs/gift", gift.admin, {"name": "gift cards", "kind": "gift", "status": "archived",
                                                   "gift": {"nominals": [50_000]}})
    assert r.status_code == 200, r.data
    assert error(sell(api, gift.pos, "s1", 50_000))[:2] == (422, "program_archived")


def test_sale_is_exactly_once_and_a_reused_id_with_another_body_is_refused(api: Api, gift: TenantKeys) -> None:
    first = sell(api, gift.pos, "till1-s7", 50_000)
    again = sell(api, gift.pos, "till1-s7", 50_000)
    assert again.status_code == 200 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.data == {**first.data, "replayed": True}
    number = first.data["number"]
    assert ledger_sum(gift.tenant_id, number, field="amount") == 50_000
    assert len(api.get(f"/v1/gift-cards/{number}/transactions", gift.pos).data["items"]) == 1
    assert error(sell(api, gift.pos, "till1-s7", 100_000)) == (
        422, "idempotency_key_reused", [("sale_id", "Sale 'till1-s7' was already used with a different body.")])
    api.put("/v1/programs/gift", gift.admin, {"name": "gift cards", "kind": "gift", "status": "archived"})
    late = sell(api, gift.pos, "till1-s7", 50_000)
    assert late.status_code == 200 and late.data["number"] == number, "a retry gets its answer even if now refused"


def test_sale_of_pre_printed_plastic_cards(api: Api, gift: TenantKeys) -> None:
    number = plastic_number()
    r = sell(api, gift.pos, "p1", 50_000, number=number)
    assert r.status_code == 201 and r.data["number"] == number and r.data["kind"] == "plastic"
    assert error(sell(api, gift.pos, "p2", 50_000, number=number))[:2] == (409, "card_exists")
    assert error(sell(api, gift.pos, "p3", 50_000, number=number[:-1] + str((int(number[-1]) + 1) % 10))) == (
        400, "invalid_card_number", [("number", "The card number fails its Luhn check digit.")])
    points_card = api.post("/v1/cards", gift.pos, {"program_id": "main"}).data["number"]
    assert error(sell(api, gift.pos, "p4", 50_000, number=points_card))[:2] == (409, "card_exists")

    series = api.post("/v1/card-series", gift.admin, {"program_id": "gift", "count": 2})
    assert series.status_code == 201, series.data
    printed = api.get(f"/v1/card-series/{series.data['series_id']}/cards", gift.admin).data["items"][0]["number"]
    unsold = api.get(f"/v1/gift-cards/{printed}", gift.pos).data
    assert unsold["status"] == "issued" and unsold["money"] == 0 and unsold["activated_at"] is None
    assert error(top_up(api, gift.pos, printed, "t0", 1_000))[:2] == (422, "gift_card_not_sold")
    sold_card = sell(api, gift.pos, "p5", 100_000, number=printed)
    assert sold_card.status_code == 201 and sold_card.data["status"] == "active" and sold_card.data["money"] == 100_000
    assert_ledger_matches(api, gift, printed)


# --- top-up and expiry ---------------------------------------------------------------------

def test_top_up_loads_money_extends_expiry_and_respects_max_balance(api: Api, gift: TenantKeys, clock: Any) -> None:
    number = sold(api, gift, "s1", 100_000, program_id="prepaid")
    assert datetime.fromisoformat(money_view(api, gift, number)["expires_at"]) == NOW + timedelta(days=30)
    clock.advance(days=20)
    r = top_up(api, gift.pos, number, "t1", 50_000, store_id="msk-01")
    assert r.status_code == 201, r.data
    assert r.data["money"] == 150_000 and r.data["replayed"] is False
    assert datetime.fromisoformat(r.data["expires_at"]) == NOW + timedelta(days=50), "lives while used"
    assert error(top_up(api, gift.pos, number, "t2", 150_001)) == (
        422, "balance_limit", [("amount", "at most 150000")])
    assert error(top_up(api, gift.pos, number, "t2", 999)) == (
        422, "amount_out_of_range", [("amount", "between 1000 and 200000")])
    clock.advance(minutes=1)
    assert top_up(api, gift.pos, number, "t2", 150_000).data["money"] == 300_000
    assert error(top_up(api, gift.pos, number, "t3", 1_000))[:2] == (422, "balance_limit")

    again = top_up(api, gift.pos, number, "t1", 50_000, store_id="msk-01")
    assert again.status_code == 200 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.data == {**r.data, "replayed": True}, "the stored answer, not today's balance"
    assert error(top_up(api, gift.pos, number, "t1", 60_000))[:2] == (422, "idempotency_key_reused")
    assert money(api, gift, number) == 300_000
    entries = api.get(f"/v1/gift-cards/{number}/transactions", gift.pos).data["items"]
    assert [(e["type"], e["amount"], e["balance_after"]) for e in entries] == [
        ("topup", 150_000, 300_000), ("topup", 50_000, 150_000), ("sale", 100_000, 100_000)]
    assert_ledger_matches(api, gift, number)


def test_a_gift_card_of_a_non_reloadable_program_cannot_be_topped_up(api: Api, gift: TenantKeys) -> None:
    number = sold(api, gift, "s1", 50_000)
    assert error(top_up(api, gift.pos, number, "t1", 10_000)) == (
        422, "not_reloadable", [("amount", "the program is not reloadable")])
    assert money(api, gift, number) == 50_000


def test_an_expired_or_blocked_card_is_refused_a_top_up(api: Api, gift: TenantKeys, clock: Any) -> None:
    number = sold(api, gift, "s1", 100_000, program_id="prepaid")
    clock.advance(days=30)
    view = money_view(api, gift, number)
    assert view["expired"] is True and view["status"] == "expired" and view["money"] == 100_000
    assert error(top_up(api, gift.pos, number, "t1", 10_000))[:2] == (422, "gift_card_expired")

    other = sold(api, gift, "s2", 100_000, program_id="prepaid")
    assert api.post(f"/v1/cards/{other}/block", gift.admin, {"reason": "reported stolen"}).status_code == 200
    assert error(top_up(api, gift.pos, other, "t2", 10_000)) == (
        422, "card_blocked", [("number", f"Card {other} is blocked: reported stolen.")])
    assert money(api, gift, other) == 100_000
    assert ledger_sum(gift.tenant_id, other, field="amount") == 100_000


def test_a_program_without_validity_sells_cards_that_never_expire(api: Api, gift: TenantKeys, clock: Any) -> None:
    gift_program(api, gift, "fuel", reloadable=True, validity_days=0)
    number = sold(api, gift, "s1", 5_000, program_id="fuel")
    clock.advance(days=3_000)
    r = top_up(api, gift.pos, number, "t1", 5_000)
    assert r.status_code == 201 and r.data["expires_at"] is None and r.data["expired"] is False
    assert r.data["money"] == 10_000


def money_view(api: Api, tenant: TenantKeys, number: str) -> dict:
    return api.get(f"/v1/gift-cards/{number}", tenant.pos).data


# --- corrections -----------------------------------------------------------------------

def test_adjustment_corrects_money_once_never_below_zero_and_is_audited(api: Api, gift: TenantKeys) -> None:
    number = sold(api, gift, "s1", 50_000)
    body = {"amount": -20_000, "reason": "double sale at till 3", "adjustment_id": "adj-1"}
    r = api.post(f"/v1/gift-cards/{number}/adjustments", gift.admin, body)
    assert r.status_code == 201, r.data
    assert (r.data["type"], r.data["amount"], r.data["balance_after"], r.data["reason"]) == (
        "adjustment", -20_000, 30_000, "double sale at till 3")
    assert api.post(f"/v1/gift-cards/{number}/adjustments", gift.admin, body).data == r.data
    assert money(api, gift, number) == 30_000
    assert error(api.post(f"/v1/gift-cards/{number}/adjustments", gift.admin, {**body, "amount": -10_000}))[:2] == (
        422, "idempotency_key_reused")
    below = api.post(f"/v1/gift-cards/{number}/adjustments", gift.admin,
                     {"amount": -30_001, "reason": "typo", "adjustment_id": "adj-2"})
    assert error(below) == (422, "insufficient_funds", [("amount", "at least -30000")])
    credit = api.post(f"/v1/gift-cards/{number}/adjustments", gift.admin,
                      {"amount": 5_000, "reason": "goodwill", "adjustment_id": "adj-3"})
    assert credit.status_code == 201 and credit.data["balance_after"] == 35_000
    assert_ledger_matches(api, gift, number)
    trail = api.get("/v1/audit", gift.admin).data["items"]
    adjusted = [e for e in trail if e["action"] == "gift_card.adjusted"]
    assert sorted(e["detail"]["amount"] for e in adjusted) == ["-20000", "5000"]
    assert all(e["target"] == f"card:{number}" for e in adjusted)


def test_adjustment_validation_errors_name_the_field(api: Api, gift: TenantKeys) -> None:
    number = sold(api, gift, "s1", 50_000)
    url = f"/v1/gift-cards/{number}/adjustments"
    zero = api.post(url, gift.admin, {"amount": 0, "reason": "nothing", "adjustment_id": "a1"})
    assert error(zero)[:2] == (400, "validation_error") and error(zero)[2][0][0] == "amount"
    no_reason = api.post(url, gift.admin, {"amount": 100, "adjustment_id": "a1"})
    assert [f for f, _ in error(no_reason)[2]] == ["reason"]
    assert money(api, gift, number) == 50_000


# --- validation, points cards, isolation, roles -------------------------------------------

def test_body_errors_are_refused_with_field_details_and_write_nothing(api: Api, gift: TenantKeys) -> None:
    for body, field in [
        ({"sale_id": "s1", "program_id": "gift", "amount": "50000"}, "amount"),
        ({"sale_id": "s1", "program_id": "gift", "amount": 500.0}, "amount"),
        ({"sale_id": "s1", "program_id": "gift", "amount": 0}, "amount"),
        ({"sale_id": "s1", "program_id": "gift"}, "amount"),
        ({"sale_id": "bad id!", "program_id": "gift", "amount": 50_000}, "sale_id"),
        ({"sale_id": "s1", "program_id": "gift", "amount": 50_000, "phone": "+79161234567"}, "phone"),
        ({"sale_id": "s1", "program_id": "gift", "amount": 50_000, "number": "12ab"}, "number"),
    ]:
        r = api.post("/v1/gift-cards", gift.pos, body)
        assert error(r)[:2] == (400, "validation_error"), body
        assert [f for f, _ in error(r)[2]] == [field], body
    number = sold(api, gift, "s1", 50_000)
    assert [f for f, _ in error(top_up(api, gift.pos, number, "t1", -5))[2]] == ["amount"]
    assert money(api, gift, number) == 50_000


def test_points_cards_are_not_gift_cards_and_gift_cards_hold_no_points(api: Api, gift: TenantKeys) -> None:
    points_card = api.post("/v1/cards", gift.pos, {"program_id": "main"}).data["number"]
    for r in (api.get(f"/v1/gift-cards/{points_card}", gift.support),
              api.get(f"/v1/gift-cards/{points_card}/transactions", gift.pos),
              top_up(api, gift.pos, points_card, "t1", 1_000),
              api.post(f"/v1/gift-cards/{points_card}/adjustments", gift.admin,
                       {"amount": 100, "reason": "test", "adjustment_id": "a1"})):
        assert error(r)[:2] == (404, "gift_card_not_found")
    assert error(api.get("/v1/gift-cards/4000000000002", gift.pos))[:2] == (404, "gift_card_not_found")

    number = sold(api, gift, "s1", 50_000)
    card = api.get(f"/v1/cards/{number}", gift.support)
    assert card.status_code == 200
    assert (card.data["balance"], card.data["pending"], card.data["program_id"]) == (0, 0, "gift")
    assert card.data["money"] == 50_000, "the money is shown as money, never as points"
    assert ledger_sum(gift.tenant_id, number) == 0, "no points entries on a gift card"


def test_another_tenants_gift_card_does_not_exist(api: Api, gift: TenantKeys, other_tenant: TenantKeys) -> None:
    number = sold(api, gift, "s1", 50_000)
    for key in (other_tenant.pos, other_tenant.support, other_tenant.admin):
        assert error(api.get(f"/v1/gift-cards/{number}", key))[:2] == (404, "gift_card_not_found")
        assert error(api.get(f"/v1/gift-cards/{number}/transactions", key))[:2] == (404, "gift_card_not_found")
    assert error(top_up(api, other_tenant.pos, number, "t1", 1_000))[:2] == (404, "gift_card_not_found")
    assert error(api.post(f"/v1/gift-cards/{number}/adjustments", other_tenant.admin,
                          {"amount": 100, "reason": "test", "adjustment_id": "a1"}))[:2] == (404, "gift_card_not_found")
    gift_program(api, other_tenant, nominals=[50_000])
    theirs = sell(api, other_tenant.pos, "s1", 50_000)
    assert theirs.status_code == 201 and theirs.data["replayed"] is False, "sale ids are per tenant"
    assert money(api, gift, number) == 50_000


def test_roles(api: Api, gift: TenantKeys) -> None:
    assert error(sell(api, gift.support, "s1", 50_000))[:2] == (403, "forbidden")
    assert sell(api, gift.admin, "s1", 50_000).status_code == 201
    number = sold(api, gift, "s2", 50_000)
    assert error(top_up(api, gift.support, number, "t1", 1_000))[:2] == (403, "forbidden")
    adjustment = {"amount": 100, "reason": "test", "adjustment_id": "a1"}
    for key in (gift.pos, gift.support):
        assert error(api.post(f"/v1/gift-cards/{number}/adjustments", key, adjustment))[:2] == (403, "forbidden")
    for key in (gift.pos, gift.admin, gift.support):
        assert api.get(f"/v1/gift-cards/{number}", key).status_code == 200
        assert api.get(f"/v1/gift-cards/{number}/transactions", key).status_code == 200
    assert money(api, gift, number) == 50_000


def test_a_store_bound_key_sells_for_its_own_store_only(api: Api, gift: TenantKeys) -> None:
    key = api.post("/v1/keys", gift.admin, {"role": "pos", "name": "till 1", "store_id": "msk-01"})
    assert key.status_code == 201, key.data
    till = key.data["secret"]
    assert error(sell(api, till, "s1", 50_000, store_id="spb-01"))[:2] == (403, "forbidden")
    number = sell(api, till, "s1", 50_000).data["number"]
    entry = api.get(f"/v1/gift-cards/{number}/transactions", gift.pos).data["items"][0]
    assert entry["store_id"] == "msk-01"


def test_ledger_is_paginated_newest_first(api: Api, gift: TenantKeys, clock: Any) -> None:
    number = sold(api, gift, "s1", 10_000, program_id="prepaid")
    for i in range(3):
        clock.advance(minutes=1)
        assert top_up(api, gift.pos, number, f"t{i}", 1_000 * (i + 1)).status_code == 201
    first = api.get(f"/v1/gift-cards/{number}/transactions?limit=3", gift.pos).data
    assert first["has_more"] is True and [e["amount"] for e in first["items"]] == [3_000, 2_000, 1_000]
    rest = api.get(f"/v1/gift-cards/{number}/transactions?limit=3&cursor={quote(first['cursor'])}", gift.pos).data
    assert rest["has_more"] is False and [e["amount"] for e in rest["items"]] == [10_000]
    assert_ledger_matches(api, gift, number)


def test_a_top_up_racing_another_on_the_same_card_is_recomputed_not_lost(
    api: Api, gift: TenantKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = sold(api, gift, "s1", 10_000, program_id="prepaid")
    read = loyalty.get_card
    reads = []

    def racing_read(tenant_id: str, card_number: str) -> Any:
        card = read(tenant_id, card_number)
        reads.append(card.version if card else None)
        if len(reads) == 1:  # another till tops the card up between this read and this write
            other_till = Principal(role=Role.POS, key_id="othertill", owner=gift.tenant_id)
            gift_cards.top_up(gift.tenant_id, other_till, number, GiftCardTopUp(topup_id="other-t", amount=5_000),
                              "pos:othertill")
        return card

    monkeypatch.setattr(loyalty, "get_card", racing_read)
    r = top_up(api, gift.pos, number, "mine-t", 2_000)
    monkeypatch.undo()
    assert r.status_code == 201, r.data
    assert r.data["money"] == 17_000 and reads[0] < reads[-1], "recomputed from a fresh read"
    assert money(api, gift, number) == 17_000
    assert_ledger_matches(api, gift, number)
