"""The tenant dashboard: counters kept inside the purchase, refund, card and customer writes, read by local day."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.domain import dashboard as rules
from chalicelib.settings import settings
from chalicelib.storage import aws
from chalicelib.storage.tables import ApiKeyRecord, DirectoryRecord, LoyaltyRecord
from chalicelib.storage.transactions import connection
from tests.functional.conftest import Api, TenantKeys
from tests.functional.test_pos_rules import buy, new_card, set_program

ZERO = {**dict.fromkeys(rules.FIGURES, 0), "average_receipt": 0, "net_revenue": 0, "redemption_share_bps": 0,
        "points_net": 0}


def figures(**counted: int) -> dict[str, int]:
    """Every figure, with the counted ones set and the derived ones computed from them."""
    totals = {**dict.fromkeys(rules.FIGURES, 0), **counted}
    return {**totals, **rules.derived(totals)}


def dashboard(api: Api, key: str, query: str = "") -> dict[str, Any]:
    r = api.get(f"/v1/dashboard{query}", key)
    assert r.status_code == 200, r.data
    return r.data


def test_purchases_refunds_cards_and_customers_are_counted_once(api: Api, tenant: TenantKeys, clock) -> None:
    empty = dashboard(api, tenant.admin)
    assert empty == {"today": ZERO, "month": ZERO, "day": "2026-11-02", "month_start": "2026-11-01",
                     "as_of": "2026-11-02T10:00:00Z", "timezone": "Europe/Moscow", "program_id": None}

    card = new_card(api, tenant)  # a new customer and an active card (activation: immediate)
    other = api.post("/v1/customers", tenant.admin, {"phone": "+79160000002", "acquisition": {"channel": "store"}})
    assert other.status_code == 201, other.data
    again = api.post("/v1/cards", tenant.pos, {"program_id": "main", "customer": {"phone": "+79161234567"}})
    assert again.status_code == 201, again.data  # a second card of the first customer: no new customer
    assert again.data["customer_id"] == api.get(f"/v1/cards/{card}", tenant.pos).data["customer_id"]

    first = buy(api, tenant.pos, "r1", card, 100_000)
    second = buy(api, tenant.pos, "r2", card, 50_000, redeem=50)
    assert (first.data["points_earned"], second.data["points_earned"], second.data["discount"]) == (50, 22, 5_000)
    replayed = buy(api, tenant.pos, "r2", card, 50_000, redeem=50)
    assert replayed.status_code == 200 and replayed.data["replayed"] is True
    refused = buy(api, tenant.pos, "r3", card, 10_000, redeem=500)
    assert refused.status_code == 422 and refused.data["error"]["code"] == "redeem_exceeds_limit"
    refund = api.post("/v1/refunds", tenant.pos, {"refund_id": "f1", "receipt_id": "r1"})
    assert refund.status_code == 200, refund.data
    assert refund.data["amount_refunded"] == 100_000 and refund.data["points_reversed"] == 50
    assert api.post("/v1/refunds", tenant.pos, {"refund_id": "f1", "receipt_id": "r1"}).data["replayed"] is True

    expected = figures(receipts=2, revenue=150_000, points_earned=72, points_redeemed=50, money_redeemed=5_000,
                       refunds=1, refunded=100_000, points_reversed=50, cards_issued=2, cards_activated=2,
                       new_customers=2)
    assert expected["average_receipt"] == 75_000 and expected["redemption_share_bps"] == 333
    data = dashboard(api, tenant.admin)
    assert data["today"] == expected and data["month"] == expected
    assert dashboard(api, tenant.admin, "?program_id=main")["today"] == expected

    items = aws.client("dynamodb").query(
        TableName=settings.loyalty_table, KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"{tenant.tenant_id}#dash#2026-11-02"}})["Items"]
    assert {i["sk"]["S"].rsplit("#", 2)[0] for i in items} == {"p#main", "p#-"}
    assert all(set(i) - {"pk", "sk", "kind", "doc", "at", "expires_at_epoch"} <= {f"c_{n}" for n in rules.FIGURES}
               and i["doc"] == {"M": {}} for i in items), "counters only: no personal data, nothing else"


def test_activation_on_first_purchase_and_the_program_filter(api: Api, tenant: TenantKeys, clock) -> None:
    set_program(api, tenant, activation="first_purchase")
    card = new_card(api, tenant)
    assert dashboard(api, tenant.admin)["today"] == figures(cards_issued=1, new_customers=1)
    buy(api, tenant.pos, "r1", card, 10_000)
    buy(api, tenant.pos, "r2", card, 10_000)
    today = figures(cards_issued=1, cards_activated=1, new_customers=1, receipts=2, revenue=20_000, points_earned=10)
    assert dashboard(api, tenant.admin)["today"] == today
    assert dashboard(api, tenant.admin, "?program_id=main")["program_id"] == "main"

    unknown = api.get("/v1/dashboard?program_id=nope", tenant.admin)
    assert unknown.status_code == 404 and unknown.data["error"]["code"] == "program_not_found"
    assert api.get("/v1/dashboard?program_id=Not%20A%20Slug", tenant.admin).status_code == 400
    assert api.get("/v1/dashboard?colour=red", tenant.admin).status_code == 400


def test_local_midnight_and_month_boundaries(api: Api, tenant: TenantKeys, clock) -> None:
    card = new_card(api, tenant)
    buy(api, tenant.pos, "r1", card, 10_000)  # 2026-11-02 13:00 in Moscow
    clock.advance(hours=12, minutes=30)  # 22:30 UTC: 01:30 on 3 November in Moscow (UTC+3)
    buy(api, tenant.pos, "r2", card, 30_000)
    data = dashboard(api, tenant.admin)
    assert data["day"] == "2026-11-03" and data["as_of"] == "2026-11-02T22:30:00Z"
    assert data["today"] == figures(receipts=1, revenue=30_000, points_earned=15)
    assert data["month"] == figures(receipts=2, revenue=40_000, points_earned=20, cards_issued=1, cards_activated=1,
                                    new_customers=1)

    clock.advance(days=27, hours=22)  # 2026-11-30 20:30 UTC = 23:30 in Moscow: still November
    buy(api, tenant.pos, "r3", card, 20_000)
    assert dashboard(api, tenant.admin)["month"]["receipts"] == 3
    clock.advance(hours=1)  # 00:30 on 1 December in Moscow: a new month
    december = dashboard(api, tenant.admin)
    assert (december["day"], december["month_start"]) == ("2026-12-01", "2026-12-01")
    assert december["today"] == ZERO and december["month"] == ZERO
    buy(api, tenant.pos, "r4", card, 50_000)
    assert dashboard(api, tenant.admin)["month"] == figures(receipts=1, revenue=50_000, points_earned=25)


def test_isolation_roles_and_the_agency_view(api: Api, tenant: TenantKeys, other_tenant: TenantKeys, clock) -> None:
    card = new_card(api, tenant)
    buy(api, tenant.pos, "r1", card, 10_000)
    mine = figures(receipts=1, revenue=10_000, points_earned=5, cards_issued=1, cards_activated=1, new_customers=1)
    assert dashboard(api, tenant.admin)["today"] == mine

    theirs = dashboard(api, other_tenant.admin)
    assert theirs["today"] == ZERO and theirs["month"] == ZERO
    assert dashboard(api, other_tenant.admin, "?program_id=main")["today"] == ZERO

    for key in (tenant.pos, tenant.support):
        r = api.get("/v1/dashboard", key)
        assert r.status_code == 403 and r.data["error"]["code"] == "forbidden"
    assert api.get("/v1/dashboard").status_code == 401

    agency = api.get(f"/v1/agency/tenants/{tenant.tenant_id}/dashboard", tenant.agency)
    assert agency.status_code == 200 and agency.data["today"] == mine
    foreign = api.get(f"/v1/agency/tenants/{tenant.tenant_id}/dashboard", other_tenant.agency)
    assert foreign.status_code == 404
    assert api.get(f"/v1/agency/tenants/{tenant.tenant_id}/dashboard", tenant.admin).status_code == 403


@pytest.fixture
def dynamodb_calls(api: Api) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """(operation, parameters) of every DynamoDB call made through the app's clients."""
    calls: list[tuple[str, dict[str, Any]]] = []

    def record(event_name: str, params: dict[str, Any], **_: Any) -> None:
        calls.append((event_name.rsplit(".", 1)[-1], params))

    clients = {id(c): c for c in [m._get_connection().connection.client
                                  for m in (LoyaltyRecord, ApiKeyRecord, DirectoryRecord)] + [connection().client]}
    for c in clients.values():
        c.meta.events.register("provide-client-params.dynamodb", record)
    yield calls
    for c in clients.values():
        c.meta.events.unregister("provide-client-params.dynamodb", record)


def test_a_warm_purchase_still_costs_one_read_and_one_transaction(
    api: Api, tenant: TenantKeys, clock, dynamodb_calls: list[tuple[str, dict[str, Any]]]
) -> None:
    card = new_card(api, tenant)
    buy(api, tenant.pos, "warm-up", card, 10_000)
    dynamodb_calls.clear()
    assert buy(api, tenant.pos, "r1", card, 10_000).status_code == 200
    handler = [(op, p) for op, p in dynamodb_calls if p.get("TableName") != settings.api_keys_table]
    assert [op for op, _ in handler] == ["GetItem", "TransactWriteItems"]
    updates = [i["Update"]["Key"]["pk"]["S"] for i in handler[1][1]["TransactItems"] if "Update" in i]
    assert f"{tenant.tenant_id}#dash#2026-11-02" in updates
