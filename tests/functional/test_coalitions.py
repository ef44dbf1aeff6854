"""Coalitions: an agency links its tenants into one shared program; membership, settlement, isolation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.schemas.pos import LedgerEntry
from chalicelib.storage import loyalty, transactions
from tests.functional.conftest import Api, TenantKeys, make_tenant

CLUB = {"id": "club", "name": "City club points", "earning": {"rate_bps": 500},
        "redemption": {"point_value": 100, "max_share_bps": 3000}}
SCOPE = loyalty.coalition_scope("city-club")
START = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
END = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
PERIOD = "from=2026-11-01T03:00:00%2B03:00&to=2026-11-02T00:00:00Z"


def coalition_body(**overrides: Any) -> dict[str, Any]:
    return {"coalition_id": "city-club", "name": "City club", "program": CLUB, "members": ["shop-a", "shop-b"],
            **overrides}


@pytest.fixture
def shop_a(api: Api, agency_key: str) -> TenantKeys:
    return make_tenant(api, agency_key, "acme-agency", "shop-a")


@pytest.fixture
def shop_b(api: Api, agency_key: str) -> TenantKeys:
    return make_tenant(api, agency_key, "acme-agency", "shop-b")


@pytest.fixture
def club(api: Api, agency_key: str, shop_a: TenantKeys, shop_b: TenantKeys) -> dict[str, Any]:
    r = api.post("/v1/agency/coalitions", agency_key, coalition_body())
    assert r.status_code == 201, r.data
    return r.data


def write_entries(number: str, entries: list[tuple[str, int, datetime, str | None]]) -> None:
    """Ledger entries of a coalition card, straight into storage: (type, points, at, partner)."""
    def build(tx: transactions.Tx) -> None:
        for seq, (entry_type, points, at, partner) in enumerate(entries):
            loyalty.add_entry(tx, SCOPE, number, LedgerEntry(
                entry_id=f"e{seq}", type=entry_type, points=points, balance_after=0, at=at,
                partner_id=partner), seq)

    transactions.write(build)


# --- creating and reading ------------------------------------------------------------------

def test_agency_creates_a_coalition_of_two_tenants(api: Api, agency_key: str, shop_a: TenantKeys,
                                                   shop_b: TenantKeys, tenant: TenantKeys) -> None:
    r = api.post("/v1/agency/coalitions", agency_key, coalition_body())
    assert r.status_code == 201, r.data
    assert {k: r.data[k] for k in ("coalition_id", "agency_id", "name", "program_id", "currency", "members",
                                   "former_members")} == {
        "coalition_id": "city-club", "agency_id": "acme-agency", "name": "City club", "program_id": "club",
        "currency": "RUB", "members": ["shop-a", "shop-b"], "former_members": []}
    assert r.data["program"]["tenant_id"] == SCOPE and r.data["program"]["redemption"]["point_value"] == 100
    for shop in ("shop-a", "shop-b"):
        assert api.get(f"/v1/agency/tenants/{shop}", agency_key).data["coalitions"] == ["city-club"]
    assert api.get("/v1/agency/tenants/coffee-house", agency_key).data["coalitions"] == []

    listed = api.get("/v1/agency/coalitions?limit=10", agency_key)
    assert listed.status_code == 200
    assert [c["coalition_id"] for c in listed.data["items"]] == ["city-club"] and listed.data["has_more"] is False
    detail = api.get("/v1/agency/coalitions/city-club", agency_key)
    assert detail.status_code == 200 and detail.data["program"]["id"] == "club"

    audit = api.get("/v1/audit", agency_key).data["items"]
    created = [a for a in audit if a["action"] == "coalition.created"]
    assert created and created[0]["target"] == "coalition:city-club"
    assert created[0]["detail"] == {"members": "shop-a,shop-b", "program_id": "club"}

    for key in (shop_a.admin, shop_b.support):
        mine = api.get("/v1/coalitions", key)
        assert mine.status_code == 200
        assert [(c["coalition_id"], c["members"], c["program"]["id"]) for c in mine.data["items"]] == [
            ("city-club", ["shop-a", "shop-b"], "club")]
        assert mine.data["items"][0]["program"]["earning"]["rate_bps"] == 500
    assert api.get("/v1/coalitions", tenant.admin).data["items"] == []
    assert api.get("/v1/coalitions", shop_a.pos).status_code == 403

    again = api.post("/v1/agency/coalitions", agency_key, coalition_body())
    assert again.status_code == 409 and again.data["error"]["code"] == "coalition_exists"


def test_membership_is_validated_and_nothing_is_written_on_refusal(
        api: Api, agency_key: str, shop_a: TenantKeys, shop_b: TenantKeys, other_tenant: TenantKeys) -> None:
    cases = [
        (coalition_body(members=["shop-a", "fuel-net"]), 422, "unknown_tenant", "members[1]"),
        (coalition_body(members=["shop-a", "nobody"]), 422, "unknown_tenant", "members[1]"),
        (coalition_body(members=["shop-a", "shop-b", "shop-a"]), 422, "duplicate_member", "members"),
        (coalition_body(program={**CLUB, "id": "main"}), 422, "program_id_clash", "members[0]"),
        (coalition_body(program={**CLUB, "store_ids": ["msk-01"]}), 422, "coalition_store_ids", "program.store_ids"),
        (coalition_body(members=["shop-a"]), 400, "validation_error", "members"),
        (coalition_body(program={**CLUB, "kind": "discount", "discount": {"percent_bps": 500}}), 400,
         "validation_error", "program"),
        (coalition_body(coalition_id="City.Club"), 400, "validation_error", "coalition_id"),
    ]
    for body, status, code, field in cases:
        r = api.post("/v1/agency/coalitions", agency_key, body)
        assert r.status_code == status, (body, r.data)
        assert r.data["error"]["code"] == code
        assert r.data["error"]["details"][0]["field"] == field, r.data
    assert api.get("/v1/agency/coalitions/city-club", agency_key).status_code == 404
    assert api.get("/v1/agency/tenants/shop-a", agency_key).data["coalitions"] == []

    # Coalition ids are global (the shared data's scope is named after them): another agency cannot reuse one.
    assert api.post("/v1/agency/coalitions", agency_key, coalition_body()).status_code == 201
    taken = api.post("/v1/agency/coalitions", other_tenant.agency,
                     coalition_body(members=["fuel-net", "fuel-net-2"]))
    assert taken.status_code in (409, 422)
    make_tenant(api, other_tenant.agency, "rival-agency", "fuel-two")
    taken = api.post("/v1/agency/coalitions", other_tenant.agency, coalition_body(members=["fuel-net", "fuel-two"]))
    assert taken.status_code == 409 and taken.data["error"]["code"] == "coalition_exists"
    assert api.get("/v1/agency/tenants/fuel-net", other_tenant.agency).data["coalitions"] == []


def test_a_concurrent_change_to_a_partner_refuses_the_whole_creation(
        api: Api, agency_key: str, shop_a: TenantKeys, shop_b: TenantKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.services.program import coalitions as service
    from chalicelib.storage import directory

    original = service._member_record

    def racing(tenant_id: str, coalition_id: str, **kw: Any) -> Any:
        rec = original(tenant_id, coalition_id, **kw)
        if tenant_id == "shop-b":
            directory.update_tenant("shop-b", {"name": "Renamed meanwhile"})
        return rec

    monkeypatch.setattr(service, "_member_record", racing)
    r = api.post("/v1/agency/coalitions", agency_key, coalition_body())
    assert r.status_code == 409 and r.data["error"]["code"] == "concurrent_change"
    assert api.get("/v1/agency/coalitions/city-club", agency_key).status_code == 404
    assert api.get("/v1/agency/tenants/shop-a", agency_key).data["coalitions"] == []
    assert api.get("/v1/agency/tenants/shop-b", agency_key).data["name"] == "Renamed meanwhile"
    monkeypatch.setattr(service, "_member_record", original)
    assert api.post("/v1/agency/coalitions", agency_key, coalition_body()).status_code == 201


def test_members_are_added_and_removed(api: Api, agency_key: str, club: dict, shop_a: TenantKeys,
                                       other_tenant: TenantKeys) -> None:
    shop_c = make_tenant(api, agency_key, "acme-agency", "shop-c")
    added = api.post("/v1/agency/coalitions/city-club/members", agency_key, {"tenant_id": "shop-c"})
    assert added.status_code == 200, added.data
    assert added.data["members"] == ["shop-a", "shop-b", "shop-c"]
    assert api.get("/v1/agency/tenants/shop-c", agency_key).data["coalitions"] == ["city-club"]
    assert [c["coalition_id"] for c in api.get("/v1/coalitions", shop_c.admin).data["items"]] == ["city-club"]

    twice = api.post("/v1/agency/coalitions/city-club/members", agency_key, {"tenant_id": "shop-c"})
    assert twice.status_code == 409 and twice.data["error"]["code"] == "already_member"
    foreign = api.post("/v1/agency/coalitions/city-club/members", agency_key, {"tenant_id": "fuel-net"})
    assert foreign.status_code == 422 and foreign.data["error"]["code"] == "unknown_tenant"
    assert api.post("/v1/agency/coalitions/nope/members", agency_key, {"tenant_id": "shop-c"}).status_code == 404

    removed = api.delete("/v1/agency/coalitions/city-club/members/shop-c", agency_key)
    assert removed.status_code == 200
    assert removed.data["members"] == ["shop-a", "shop-b"] and removed.data["former_members"] == ["shop-c"]
    assert api.get("/v1/agency/tenants/shop-c", agency_key).data["coalitions"] == []
    assert api.get("/v1/coalitions", shop_c.admin).data["items"] == []
    assert api.delete("/v1/agency/coalitions/city-club/members/shop-c", agency_key).status_code == 404

    assert api.delete("/v1/agency/coalitions/city-club/members/shop-b", agency_key).status_code == 200
    last = api.delete("/v1/agency/coalitions/city-club/members/shop-a", agency_key)
    assert last.status_code == 422 and last.data["error"]["code"] == "last_member"

    back = api.post("/v1/agency/coalitions/city-club/members", agency_key, {"tenant_id": "shop-c"})
    assert back.data["members"] == ["shop-a", "shop-c"] and back.data["former_members"] == ["shop-b"]
    audit = [a["action"] for a in api.get("/v1/audit", agency_key).data["items"]]
    assert audit.count("coalition.member_added") == 2 and audit.count("coalition.member_removed") == 2


def test_another_agency_and_non_members_see_nothing(api: Api, agency_key: str, club: dict, tenant: TenantKeys,
                                                    other_tenant: TenantKeys) -> None:
    rival = other_tenant.agency
    assert api.get("/v1/agency/coalitions/city-club", rival).status_code == 404
    assert api.get("/v1/agency/coalitions", rival).data["items"] == []
    assert api.get(f"/v1/agency/coalitions/city-club/settlement?{PERIOD}", rival).status_code == 404
    r = api.post("/v1/agency/coalitions/city-club/members", rival, {"tenant_id": "fuel-net"})
    assert r.status_code == 404
    assert api.delete("/v1/agency/coalitions/city-club/members/shop-a", rival).status_code == 404
    assert api.get("/v1/agency/tenants/shop-a", agency_key).data["coalitions"] == ["city-club"]
    for key in (tenant.admin, other_tenant.admin):
        r = api.get(f"/v1/coalitions/city-club/settlement?{PERIOD}", key)
        assert r.status_code == 404 and r.data["error"]["code"] == "not_found"


# --- settlement ---------------------------------------------------------------------------

def test_settlement_sums_each_partners_entries_for_the_period(api: Api, agency_key: str, club: dict,
                                                              shop_a: TenantKeys, shop_b: TenantKeys) -> None:
    inside = START + timedelta(hours=5)
    write_entries("1000000000001", [
        ("accrual", 300, START, "shop-a"),                            # from is inclusive
        ("bonus", 50, inside, "shop-a"),
        ("reversal", -20, inside, "shop-a"),
        ("adjustment", 10, inside, "shop-a"),
        ("redemption", -40, inside, "shop-a"),
        ("accrual", 1000, END, "shop-a"),                             # to is exclusive
        ("accrual", 777, START - timedelta(microseconds=1), "shop-a"),  # before the period
        ("expiry", -5, inside, None),                                 # names no partner: breakage
    ])
    write_entries("1000000000002", [
        ("redemption", -200, inside, "shop-b"),
        ("return", 30, inside, "shop-b"),
        ("accrual", 60, END - timedelta(microseconds=1), "shop-b"),
    ])
    r = api.get(f"/v1/agency/coalitions/city-club/settlement?{PERIOD}", agency_key)
    assert r.status_code == 200, r.data
    assert (r.data["point_value"], r.data["currency"], r.data["program_id"]) == (100, "RUB", "club")
    assert (r.data["start"], r.data["end"]) == ("2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z")
    lines = {line["partner_id"]: line for line in r.data["partners"]}
    assert lines["shop-a"] == {
        "partner_id": "shop-a", "points_accrued": 300, "points_bonus": 50, "points_reversed": 20,
        "points_adjusted": 10, "points_issued": 340, "points_redeemed_gross": 40, "points_returned": 0,
        "points_redeemed": 40, "net_points": 300, "amount": 30_000, "points_expired": 0, "entries": 5}
    assert lines["shop-b"] == {
        "partner_id": "shop-b", "points_accrued": 60, "points_bonus": 0, "points_reversed": 0,
        "points_adjusted": 0, "points_issued": 60, "points_redeemed_gross": 200, "points_returned": 30,
        "points_redeemed": 170, "net_points": -110, "amount": -11_000, "points_expired": 0, "entries": 3}
    totals = r.data["totals"]
    assert totals == {"points_issued": 400, "points_redeemed": 210, "net_points": 190, "amount": 19_000,
                      "pool_amount": -19_000, "breakage_points": 5, "breakage_amount": 500, "outstanding_change": 185}
    assert sum(line["amount"] for line in lines.values()) + totals["pool_amount"] == 0

    # The partner's own view: its line and the totals, never the other partner's line.
    own = api.get(f"/v1/coalitions/city-club/settlement?{PERIOD}", shop_b.admin)
    assert own.status_code == 200
    assert own.data["partners"] == [lines["shop-b"]] and own.data["totals"] == totals
    assert api.get(f"/v1/coalitions/city-club/settlement?{PERIOD}", shop_b.support).status_code == 403

    # A removed partner is still settled by the agency, but no longer sees the coalition.
    assert api.delete("/v1/agency/coalitions/city-club/members/shop-b", agency_key).status_code == 200
    after = api.get(f"/v1/agency/coalitions/city-club/settlement?{PERIOD}", agency_key)
    assert [line["partner_id"] for line in after.data["partners"]] == ["shop-a", "shop-b"]
    assert after.data["totals"] == totals
    assert api.get(f"/v1/coalitions/city-club/settlement?{PERIOD}", shop_b.admin).status_code == 404


def test_settlement_period_is_validated(api: Api, agency_key: str, club: dict) -> None:
    base = "/v1/agency/coalitions/city-club/settlement"
    for query, field in [("from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z", "to"),
                         ("from=2026-11-01T00:00:00&to=2026-11-02T00:00:00Z", "from"),
                         ("from=2025-01-01T00:00:00Z&to=2026-11-02T00:00:00Z", "to"),
                         ("from=yesterday&to=2026-11-02T00:00:00Z", "from"),
                         ("to=2026-11-02T00:00:00Z", "from"),
                         (f"{PERIOD}&partner=shop-a", "partner")]:
        r = api.get(f"{base}?{query}", agency_key)
        assert r.status_code == 400, (query, r.data)
        assert r.data["error"]["code"] == "validation_error"
        assert r.data["error"]["details"][0]["field"] == field, (query, r.data)


# --- end to end: earn at A, spend at B ---------------------------------------------------------

def _buy(api: Api, key: str, receipt: str, card: str, amount: int, redeem: int = 0) -> Any:
    body: dict[str, Any] = {"receipt_id": receipt, "card_number": card, "store_id": "msk-01", "total": amount,
                            "items": [{"sku": "latte", "category": "coffee", "quantity": 1, "amount": amount}]}
    if redeem:
        body["redeem_points"] = redeem
    return api.post("/v1/purchases", key, body)


def test_earn_at_one_partner_spend_at_another_with_one_balance(api: Api, agency_key: str, club: dict,
                                                               shop_a: TenantKeys, shop_b: TenantKeys,
                                                               clock: Any) -> None:
    issued = api.post("/v1/cards", shop_a.pos, {"program_id": "club", "customer": {"phone": "+79161234567"}})
    assert issued.status_code == 201, issued.data
    card = issued.data["number"]

    earned = _buy(api, shop_a.pos, "a-1", card, 100_000)
    assert earned.status_code == 200, earned.data
    assert earned.data["points_earned"] == 50 and earned.data["balance"] == 50

    at_b = api.get(f"/v1/cards/{card}", shop_b.pos)
    assert at_b.status_code == 200 and at_b.data["balance"] == 50
    spent = _buy(api, shop_b.pos, "b-1", card, 10_000, redeem=20)
    assert spent.status_code == 200, spent.data
    assert (spent.data["points_redeemed"], spent.data["discount"], spent.data["points_earned"]) == (20, 2_000, 4)
    assert spent.data["balance"] == 34
    assert api.get(f"/v1/cards/{card}", shop_a.pos).data["balance"] == 34
    assert loyalty.ledger_sum(SCOPE, card) == 34

    period = "from=2026-11-02T00:00:00Z&to=2026-11-03T00:00:00Z"
    settled = api.get(f"/v1/agency/coalitions/city-club/settlement?{period}", agency_key).data
    lines = {line["partner_id"]: line for line in settled["partners"]}
    assert (lines["shop-a"]["points_issued"], lines["shop-a"]["points_redeemed"], lines["shop-a"]["amount"]) == (
        50, 0, 5_000)
    assert (lines["shop-b"]["points_issued"], lines["shop-b"]["points_redeemed"], lines["shop-b"]["amount"]) == (
        4, 20, -1_600)
    assert settled["totals"]["net_points"] == 34 and settled["totals"]["amount"] == 3_400

    # B cannot see, let alone refund, A's receipt.
    foreign = api.post("/v1/refunds", shop_b.pos, {"refund_id": "b-r0", "receipt_id": "a-1"})
    assert foreign.status_code == 404 and foreign.data["error"]["code"] == "receipt_not_found"

    # B refunds its own purchase: the points come back and B's line nets to zero.
    refund = api.post("/v1/refunds", shop_b.pos, {"refund_id": "b-r1", "receipt_id": "b-1"})
    assert refund.status_code == 200, refund.data
    assert (refund.data["points_reversed"], refund.data["points_returned"], refund.data["balance"]) == (4, 20, 50)
    assert api.get(f"/v1/cards/{card}", shop_a.pos).data["balance"] == 50
    settled = api.get(f"/v1/agency/coalitions/city-club/settlement?{period}", agency_key).data
    lines = {line["partner_id"]: line for line in settled["partners"]}
    assert {k: lines["shop-b"][k] for k in ("points_accrued", "points_reversed", "points_redeemed_gross",
                                            "points_returned", "net_points", "amount")} == {
        "points_accrued": 4, "points_reversed": 4, "points_redeemed_gross": 20, "points_returned": 20,
        "net_points": 0, "amount": 0}
    assert lines["shop-a"]["amount"] == 5_000 and settled["totals"]["net_points"] == 50

    # A partner removed from the coalition no longer finds its cards.
    assert api.delete("/v1/agency/coalitions/city-club/members/shop-b", agency_key).status_code == 200
    gone = api.get(f"/v1/cards/{card}", shop_b.pos)
    assert gone.status_code == 404
    assert api.get(f"/v1/cards/{card}", shop_a.pos).data["balance"] == 50


def test_a_partner_cannot_create_a_program_shadowing_the_coalitions(api: Api, club: dict, shop_a: TenantKeys) -> None:
    r = api.post("/v1/programs", shop_a.admin, {"id": "club", "name": "Mine", "earning": {"rate_bps": 100}})
    assert (r.status_code, r.data["error"]["code"]) == (422, "program_id_clash")
    assert r.data["error"]["details"] == [{"field": "id", "issue": "taken by a coalition"}]
