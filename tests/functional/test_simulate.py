"""The promotion cost simulator through the API: double points on coffee over seeded purchases, by hand."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from chalicelib.services.reporting import simulation
from chalicelib.settings import settings
from tests.functional.conftest import Api, TenantKeys
from tests.functional.test_pos_rules import MAIN, buy, new_card
from tests.functional.test_reports import build_all, download, parse_csv

COFFEE_X2 = {"id": "coffee-x2", "name": "Double points on coffee", "starts_at": "2026-11-02T00:00:00Z",
             "ends_at": "2026-11-16T00:00:00Z", "categories": ["coffee"], "multiplier_bps": 20_000}
PROPOSED = {**MAIN, "earning": {"rate_bps": 500, "promotions": [COFFEE_X2]}}
PERIOD = {"from": "2026-11-02", "to": "2026-11-05", "proposed": PROPOSED}


@pytest.fixture
def seeded(api: Api, tenant: TenantKeys, clock: Any) -> dict[str, str]:
    """Six receipts over Nov 2-4 in coffee and food; two with points redeemed (5% back, 1 point = 1.00 RUB)."""
    anna = new_card(api, tenant, "+79161234567")
    bob = new_card(api, tenant, "+79167654321")
    anonymous = new_card(api, tenant, None)
    assert buy(api, tenant.pos, "r1", anna, 20_000).data["points_earned"] == 10                    # coffee
    assert buy(api, tenant.pos, "r2", bob, 30_000, category="food").data["points_earned"] == 15
    clock.advance(days=1)                                                                           # Nov 3
    assert buy(api, tenant.pos, "r3", anna, 40_000, redeem=10).data["points_earned"] == 19         # coffee, 390.00
    assert buy(api, tenant.pos, "r4", bob, 10_000).data["points_earned"] == 5                      # coffee
    assert buy(api, tenant.pos, "r5", anonymous, 10_000, category="food").data["points_earned"] == 5
    clock.advance(days=1)                                                                           # Nov 4
    r6 = buy(api, tenant.pos, "r6", bob, 20_000, redeem=5, category="food")                        # food, 195.00
    assert r6.data["points_earned"] == 9
    clock.advance(days=1)                                                                           # Nov 5 10:00
    return {"anna": anna, "bob": bob, "anonymous": anonymous}


def item_count() -> int:
    dynamo = boto3.client("dynamodb", region_name=settings.region)
    return sum(page["Count"] for page in dynamo.get_paginator("scan").paginate(TableName=settings.loyalty_table,
                                                                                 Select="COUNT"))


def test_double_points_on_coffee_costs_exactly_the_hand_computed_figures(
        api: Api, tenant: TenantKeys, seeded: dict[str, str]) -> None:
    before = item_count()
    r = api.post("/v1/programs/main/simulate", tenant.admin, PERIOD)
    assert r.status_code == 200, r.data
    assert item_count() == before, "a synchronous simulation writes nothing"
    got = r.data
    # Coffee doubles: r1 10 -> 20, r3 19 (on 390.00 paid) -> 39, r4 5 -> 10. Food unchanged: 15 + 5 + 9.
    assert got["totals"] == {"receipts": 6, "points_current": 63, "points_proposed": 98, "extra_points": 35,
                             "expected_redemption_cost": 833, "liability_change": 3_500}
    assert got["customers_affected"] == 2, "anna and bob; the anonymous card bought food only"
    # 15 points redeemed of 63 earned = 2380.95 bps -> 2381; 35 x 1.00 RUB x 23.81% = 8.3335 RUB -> 833 kopecks.
    # Two redemptions are under MIN_REDEMPTIONS: the rate is taken over the 90-day lookback (the same entries).
    assert got["redemption_rate"] == {"rate_bps": 2381, "basis": "lookback", "from": "2026-08-07", "to": "2026-11-05",
                                      "points_earned": 63, "points_redeemed": 15, "redemptions": 2}
    assert got["point_value"] == 100 and got["program_id"] == "main"
    assert [(d["day"], d["receipts"], d["points_current"], d["extra_points"]) for d in got["by_day"]] == [
        ("2026-11-02", 2, 25, 10), ("2026-11-03", 3, 29, 25), ("2026-11-04", 1, 9, 0)]
    assert [(c["category"], c["points_current"], c["points_proposed"], c["liability_change"])
            for c in got["by_category"]] == [("coffee", 34, 69, 3_500), ("food", 29, 29, 0)]
    assert got["tiers"] == [] and got["notes"]


def test_the_rate_is_the_period_s_own_when_it_had_enough_redemptions(
        api: Api, tenant: TenantKeys, seeded: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(simulation, "MIN_REDEMPTIONS", 2)
    got = api.post("/v1/programs/main/simulate", tenant.admin, PERIOD).data
    assert got["redemption_rate"]["basis"] == "period" and got["redemption_rate"]["from"] == "2026-11-02"
    assert got["redemption_rate"]["rate_bps"] == 2381


def test_a_real_purchase_under_the_proposed_rules_earns_what_the_replay_said(
        api: Api, tenant: TenantKeys, seeded: dict[str, str]) -> None:
    replay = api.post("/v1/programs/main/simulate", tenant.admin, PERIOD).data
    coffee = next(c for c in replay["by_category"] if c["category"] == "coffee")
    assert api.put("/v1/programs/main", tenant.admin, PROPOSED).status_code == 200
    # The replay gave r1 (200.00 coffee) 20 points and r3 (400.00 coffee, 10 points redeemed) 39.
    assert buy(api, tenant.pos, "r7", seeded["anna"], 20_000).data["points_earned"] == 20
    assert buy(api, tenant.pos, "r8", seeded["bob"], 40_000, redeem=10).data["points_earned"] == 39
    assert coffee["points_proposed"] == 20 + 39 + 10
    # Replaying with the new rules as both current and proposed: nothing extra.
    same = api.post("/v1/programs/main/simulate", tenant.admin, {**PERIOD, "to": "2026-11-06"}).data
    assert same["totals"]["extra_points"] == 0 and same["customers_affected"] == 0
    assert same["totals"]["receipts"] == 8


def test_a_lower_tier_threshold_moves_cards_up(api: Api, tenant: TenantKeys, seeded: dict[str, str]) -> None:
    tiers = {"metric": "spend", "levels": [{"id": "base", "name": "Base", "threshold": 0},
                                           {"id": "gold", "name": "Gold", "threshold": 100_000,
                                            "earn_multiplier_bps": 20_000}]}
    assert api.put("/v1/programs/main", tenant.admin, {**MAIN, "tiers": tiers}).status_code == 200
    lower = {**tiers, "levels": [tiers["levels"][0], {**tiers["levels"][1], "threshold": 10_000}]}
    got = api.post("/v1/programs/main/simulate", tenant.admin,
                   {**PERIOD, "proposed": {**MAIN, "tiers": lower}}).data
    # The seeded cards had no tier state when they bought (tiers came later): qualification 0, all base.
    assert got["tiers"] == [{"tier": "base", "cards_current": 3, "cards_proposed": 3},
                            {"tier": "gold", "cards_current": 0, "cards_proposed": 0}]
    assert got["tiers_approximate"] is False
    assert got["totals"]["extra_points"] == 0, "every receipt was priced at the base tier, x1 on both sides"


def test_a_large_replay_runs_as_a_report_whose_csv_matches_the_answer(
        api: Api, tenant: TenantKeys, seeded: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    answer = api.post("/v1/programs/main/simulate", tenant.admin, PERIOD).data
    monkeypatch.setattr(simulation, "SYNC_RECEIPTS", 2)
    r = api.post("/v1/programs/main/simulate", tenant.admin, PERIOD)
    assert r.status_code == 202, r.data
    assert r.data["type"] == "simulation" and r.data["status"] == "queued"
    build_all()
    ready = api.get(f"/v1/reports/{r.data['report_id']}", tenant.admin).data
    assert ready["status"] == "ready", ready
    rows = parse_csv(download(ready["download_url"])[0])
    figures = ("receipts", "points_current", "points_proposed", "extra_points", "expected_redemption_cost",
               "liability_change")
    days = [(row["key"], *(int(row[f]) for f in figures)) for row in rows if row["section"] == "day"]
    assert days == [(d["day"], *(d[f] for f in figures)) for d in answer["by_day"]]
    categories = [(row["key"], *(int(row[f]) for f in figures)) for row in rows if row["section"] == "category"]
    assert categories == [(c["category"], *(c[f] for f in figures)) for c in answer["by_category"]]
    total = rows[-1]
    assert total["section"] == "total"
    assert tuple(int(total[f]) for f in figures) == tuple(answer["totals"][f] for f in figures)
    assert (int(total["customers_affected"]), int(total["redemption_rate_bps"]), total["redemption_rate_basis"]) == (
        2, 2381, "lookback")


def test_a_period_over_31_days_goes_to_the_report_path(api: Api, tenant: TenantKeys, seeded: dict[str, str]) -> None:
    r = api.post("/v1/programs/main/simulate", tenant.admin, {**PERIOD, "from": "2026-10-01"})
    assert r.status_code == 202 and r.data["from"] == "2026-10-01" and r.data["to"] == "2026-11-05"


def test_the_agency_simulates_for_its_tenant(api: Api, tenant: TenantKeys, other_tenant: TenantKeys,
                                             seeded: dict[str, str]) -> None:
    path = f"/v1/agency/tenants/{tenant.tenant_id}/programs/main/simulate"
    r = api.post(path, tenant.agency, PERIOD)
    assert r.status_code == 200 and r.data["totals"]["extra_points"] == 35
    assert api.post(path, other_tenant.agency, PERIOD).status_code == 404


def test_isolation_roles_and_validation(api: Api, tenant: TenantKeys, other_tenant: TenantKeys) -> None:
    r = api.post("/v1/programs", tenant.admin, {"id": "coffee-club", "name": "Coffee club",
                                                "earning": {"rate_bps": 300}})
    assert r.status_code == 201, r.data
    body = {**PERIOD, "proposed": {**MAIN, "name": "Coffee club"}}
    assert api.post("/v1/programs/coffee-club/simulate", tenant.admin, body).status_code == 200
    other = api.post("/v1/programs/coffee-club/simulate", other_tenant.admin, body)
    assert other.status_code == 404 and other.data["error"]["code"] == "not_found"
    assert api.post("/v1/programs/coffee-club/simulate", tenant.pos, body).status_code == 403
    assert api.post("/v1/programs/coffee-club/simulate", tenant.support, body).status_code == 403
    # The proposal is checked exactly as PUT /v1/programs checks a program.
    invalid = {**MAIN, "earning": {"rate_bps": 0}}
    put = api.put("/v1/programs/coffee-club", tenant.admin, invalid)
    sim = api.post("/v1/programs/coffee-club/simulate", tenant.admin, {**PERIOD, "proposed": invalid})
    assert sim.status_code == put.status_code and sim.status_code in (400, 422)
    assert sim.data["error"]["code"] == put.data["error"]["code"]
    assert sim.data["error"]["details"][0]["field"] == "proposed"
    backwards = api.post("/v1/programs/coffee-club/simulate", tenant.admin, {**PERIOD, "to": "2026-11-01"})
    assert backwards.status_code == 400
    elsewhere = {**MAIN, "name": "Coffee club", "store_ids": ["msk-01", "spb-99"]}
    put = api.put("/v1/programs/coffee-club", tenant.admin, elsewhere)
    sim = api.post("/v1/programs/coffee-club/simulate", tenant.admin, {**PERIOD, "proposed": elsewhere})
    assert (put.status_code, put.data["error"]["code"]) == (sim.status_code, sim.data["error"]["code"]) == (
        422, "unknown_store")
    assert sim.data["error"]["details"] == [{"field": "proposed.store_ids", "issue": "no such store: spb-99"}]


def test_a_simulation_report_asked_for_without_a_proposal_fails_with_a_reason(
        api: Api, tenant: TenantKeys, seeded: dict[str, str]) -> None:
    r = api.post("/v1/reports", tenant.admin, {"type": "simulation", "program_id": "main", "from": "2026-11-02",
                                               "to": "2026-11-05"})
    assert r.status_code == 202, r.data
    build_all()
    failed = api.get(f"/v1/reports/{r.data['report_id']}", tenant.admin).data
    assert failed["status"] == "failed" and failed["failure"]["code"] == "no_proposal"


def test_every_refund_form_is_taken_off_the_replay_as_the_refund_reversed_it(
        api: Api, tenant: TenantKeys, clock: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three 200.00 receipts at 5% (10 points each): one refunded in full without items, one by amount, one by items."""
    card = new_card(api, tenant)
    assert buy(api, tenant.pos, "f1", card, 20_000).data["points_earned"] == 10
    assert buy(api, tenant.pos, "f2", card, 20_000).data["points_earned"] == 10
    mixed = api.post("/v1/purchases", tenant.pos, {
        "receipt_id": "f3", "card_number": card, "store_id": "msk-01", "total": 20_000,
        "items": [{"sku": "latte", "category": "coffee", "quantity": 1, "amount": 15_000},
                  {"sku": "cookie", "category": "food", "quantity": 1, "amount": 5_000}]})
    assert mixed.data["points_earned"] == 10, mixed.data
    body = {"from": "2026-11-02", "to": "2026-11-04", "proposed": {**MAIN, "earning": {"rate_bps": 1000}}}
    before = api.post("/v1/programs/main/simulate", tenant.admin, body).data["totals"]
    assert (before["points_current"], before["points_proposed"]) == (30, 60)

    clock.advance(days=1)
    reversed_points = [api.post("/v1/refunds", tenant.pos, refund).data["points_reversed"] for refund in (
        {"refund_id": "rf1", "receipt_id": "f1"},
        {"refund_id": "rf2", "receipt_id": "f2", "amount": 10_000},
        {"refund_id": "rf3", "receipt_id": "f3", "items": [{"sku": "cookie", "quantity": 1, "amount": 5_000}]})]
    assert reversed_points == [10, 5, 2], "the cookie's quarter of 10 points, 2.5, rounds down"
    got = api.post("/v1/programs/main/simulate", tenant.admin, body).data
    # Now: 0 + 5 + 8 = 13, what the card kept (30 - 17). Proposed: 0 + 10 + (20 - 5) = 25.
    assert got["totals"] == {"receipts": 3, "points_current": 13, "points_proposed": 25, "extra_points": 12,
                             "expected_redemption_cost": 0, "liability_change": 1_200}
    assert [(c["category"], c["points_current"], c["points_proposed"]) for c in got["by_category"]] == [
        ("coffee", 13, 25)]

    monkeypatch.setattr(simulation, "SYNC_RECEIPTS", 2)
    queued = api.post("/v1/programs/main/simulate", tenant.admin, body)
    assert queued.status_code == 202, queued.data
    build_all()
    ready = api.get(f"/v1/reports/{queued.data['report_id']}", tenant.admin).data
    total = parse_csv(download(ready["download_url"])[0])[-1]
    assert (total["section"], total["receipts"], total["points_current"], total["points_proposed"]) == (
        "total", "3", "13", "25")
