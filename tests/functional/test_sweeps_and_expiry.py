"""The daily sweep (points expiry, tier downgrades) and the expiring-points queries, through the API and the jobs."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from app import app
from chalicelib.domain import tiers
from chalicelib.services.program import catalog, sweeps
from chalicelib.storage import loyalty, transactions
from chalicelib.storage.loyalty import ledger_sum
from tests.functional.conftest import Api, TenantKeys, make_tenant
from tests.functional.jobqueue import drain, receive_all, run_worker

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
MAIN = {"name": "Main program", "earning": {"rate_bps": 500}, "redemption": {"point_value": 100, "max_share_bps": 3000}}
LEVELS = [{"id": "silver", "name": "Silver", "threshold": 0}, {"id": "gold", "name": "Gold", "threshold": 100_000}]


# --- helpers -------------------------------------------------------------------------

def set_program(api: Api, tenant: TenantKeys, **changes: Any) -> dict:
    r = api.put("/v1/programs/main", tenant.admin, {**MAIN, **changes})
    assert r.status_code == 200, r.data
    return r.data


def new_card(api: Api, tenant: TenantKeys, phone: str) -> str:
    r = api.post("/v1/cards", tenant.pos, {"program_id": "main", "customer": {"phone": phone}})
    assert r.status_code == 201, r.data
    return r.data["number"]


def buy(api: Api, tenant: TenantKeys, receipt: str, card: str, amount: int) -> dict:
    r = api.post("/v1/purchases", tenant.pos, {
        "receipt_id": receipt, "card_number": card, "store_id": "msk-01", "total": amount,
        "items": [{"sku": "latte", "category": "coffee", "quantity": 1, "amount": amount}]})
    assert r.status_code == 200, r.data
    return r.data


def ledger(api: Api, tenant: TenantKeys, card: str) -> list[dict]:
    r = api.get(f"/v1/cards/{card}/transactions?limit=200", tenant.support)
    assert r.status_code == 200, r.data
    return r.data["items"]


def card_view(api: Api, tenant: TenantKeys, card: str) -> dict:
    r = api.get(f"/v1/cards/{card}", tenant.support)
    assert r.status_code == 200, r.data
    return r.data


def sweep(tenant: TenantKeys) -> sweeps.Progress:
    progress = sweeps.run_scope(tenant.tenant_id, loyalty.now().date())
    assert progress.done
    return progress


def _drain(limit: int = 50) -> list[dict]:
    return [json.loads(body) for body in drain(limit)]


@pytest.fixture
def expiring(clock: Any, api: Api, tenant: TenantKeys) -> TenantKeys:
    """The clock is frozen before the tenant exists: its first sweep starts at its creation, never earlier."""
    set_program(api, tenant, expiry_days=30, pending_days=14)
    return tenant


# --- expiry ----------------------------------------------------------------------------

def test_points_expire_at_once_for_reads_and_in_the_ledger_after_one_idempotent_sweep(
        api: Api, expiring: TenantKeys, clock: Any) -> None:
    tenant = expiring
    card = new_card(api, tenant, "+79161110001")
    assert buy(api, tenant, "r-day0", card, 100_000)["points_earned"] == 50
    clock.advance(days=10)
    assert buy(api, tenant, "r-day10", card, 40_000)["points_earned"] == 20
    assert (card_view(api, tenant, card)["balance"], card_view(api, tenant, card)["pending"]) == (0, 70)
    clock.advance(days=21)  # day 31: the day-0 points expired at day 30, the day-10 ones matured at day 24

    view = card_view(api, tenant, card)
    assert (view["balance"], view["pending"]) == (20, 0), "expired points stop counting before any sweep"
    assert ledger_sum(tenant.tenant_id, card) == 70, "the ledger still holds them until the sweep"

    progress = sweep(tenant)
    assert (progress.cards_changed, progress.entries) == (1, 1)
    entries = ledger(api, tenant, card)
    expiry = [e for e in entries if e["type"] == "expiry"]
    assert len(expiry) == 1
    assert expiry[0]["points"] == -50 and expiry[0]["balance_after"] == 20
    assert expiry[0]["rule_version"] == catalog.program(tenant.tenant_id, "main").version
    assert ledger_sum(tenant.tenant_id, card) == 20 == view["balance"] + view["pending"]
    assert sweeps.last_completed(tenant.tenant_id) == date(2026, 12, 2)

    again = sweep(tenant)
    assert (again.cards_changed, again.entries) == (0, 0)
    assert ledger(api, tenant, card) == entries, "a second sweep writes nothing"

    clock.advance(days=10)  # day 41: the day-10 points expire at day 40
    assert (sweep(tenant).entries, ledger_sum(tenant.tenant_id, card)) == (1, 0)
    assert card_view(api, tenant, card)["balance"] == 0


def test_an_interrupted_sweep_resumes_from_its_cursor_through_the_queue(
        api: Api, expiring: TenantKeys, clock: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = expiring
    cards = [new_card(api, tenant, f"+7916222000{i}") for i in range(3)]
    for i, card in enumerate(cards):
        buy(api, tenant, f"r{i}", card, 20_000 * (i + 1))
    clock.advance(days=31)
    today = loyalty.now().date()

    first = sweeps.run_scope(tenant.tenant_id, today, budget_seconds=0, page_size=1)
    assert not first.done and first.cards_changed == 1
    assert first.cursor is not None and first.cursor["day"] == "2026-12-02" and first.cursor["key"]
    assert sweeps.last_completed(tenant.tenant_id) is None, "the day is recorded only when the walk ends"

    monkeypatch.setattr(sweeps, "BUDGET_SECONDS", 0)
    monkeypatch.setattr(sweeps, "PAGE", 1)
    sweeps.handle_job(sweeps.job_message(tenant.tenant_id, today, first.cursor))
    (requeued,) = [json.loads(b) for b in receive_all()]
    assert requeued["job"] == "sweep.scope" and requeued["cursor"]["day"] == "2026-12-02"
    monkeypatch.setattr(sweeps, "BUDGET_SECONDS", 10.0)
    assert run_worker([json.dumps(requeued)]) == {"batchItemFailures": []}
    assert receive_all() == [], "finished: nothing re-enqueued"

    for i, card in enumerate(cards):
        expiry = [e for e in ledger(api, tenant, card) if e["type"] == "expiry"]
        assert [e["points"] for e in expiry] == [-10 * (i + 1)], "each card expired exactly once"
        assert ledger_sum(tenant.tenant_id, card) == 0
    assert sweeps.last_completed(tenant.tenant_id) == today - timedelta(days=1)


def test_a_card_changed_during_the_sweep_is_reread_and_nothing_is_lost(
        api: Api, expiring: TenantKeys, clock: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = expiring
    card = new_card(api, tenant, "+79162220009")
    buy(api, tenant, "r1", card, 100_000)
    clock.advance(days=31)
    real_get = loyalty.get_card
    reads: list[int] = []

    def racing_get(scope: str, number: str) -> Any:
        """The sweep's first read is overtaken by an admin's credit before its write lands."""
        state = real_get(scope, number)
        reads.append(state.version)
        if len(reads) == 1:
            monkeypatch.setattr(loyalty, "get_card", real_get)
            r = api.post(f"/v1/cards/{card}/adjustments", tenant.admin,
                         {"points": 7, "reason": "goodwill", "adjustment_id": "adj-1"})
            assert r.status_code == 201, r.data
            monkeypatch.setattr(loyalty, "get_card", racing_get)
        return state

    monkeypatch.setattr(loyalty, "get_card", racing_get)
    assert sweeps.maintain_card(tenant.tenant_id, card) == 1
    assert len(reads) == 2 and reads[1] == reads[0] + 1, "the stale write failed and the card was read again"
    monkeypatch.setattr(loyalty, "get_card", real_get)
    types = [(e["type"], e["points"], e["balance_after"]) for e in ledger(api, tenant, card)]
    assert sorted(types) == [("accrual", 50, 50), ("adjustment", 7, 57), ("expiry", -50, 7)]
    assert ledger_sum(tenant.tenant_id, card) == 7 == card_view(api, tenant, card)["balance"]


def test_a_new_scopes_first_sweep_walks_only_the_days_since_its_creation(
        clock: Any, api: Api, agency_key: str, tenant: TenantKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    created = loyalty.now().date()
    partner = make_tenant(api, agency_key, "acme-agency", "tea-house")
    club = api.post("/v1/agency/coalitions", agency_key, {
        "coalition_id": "tea-club", "name": "Tea club", "program": {"id": "club", **MAIN},
        "members": [tenant.tenant_id, partner.tenant_id]})
    assert club.status_code == 201, club.data
    clock.advance(days=3)
    queried: list[tuple[str, date]] = []
    real_due_cards = loyalty.due_cards

    def counting(scope: str, day: date, limit: int, cursor: dict[str, Any] | None) -> Any:
        queried.append((scope, day))
        return real_due_cards(scope, day, limit, cursor)

    monkeypatch.setattr(loyalty, "due_cards", counting)
    since_creation = [created + timedelta(days=i) for i in range(4)]
    first = sweep(tenant)
    assert [day for _, day in queried] == since_creation, "the creation day to today, not 400 days back"
    assert first.days == 4
    coalition = loyalty.coalition_scope("tea-club")
    queried.clear()
    assert sweeps.run_scope(coalition, loyalty.now().date()).days == 4
    assert queried == [(coalition, day) for day in since_creation]

    clock.advance(days=1)
    queried.clear()
    assert sweep(tenant).days == 2, "the next run starts after the last completed day (today is walked again)"
    assert [day for _, day in queried] == [created + timedelta(days=3), created + timedelta(days=4)]


def test_the_cli_runs_the_sweep_to_the_end(api: Api, expiring: TenantKeys, clock: Any,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from chalicelib import cli

    card = new_card(api, expiring, "+79162220010")
    buy(api, expiring, "r1", card, 100_000)
    clock.advance(days=31)
    capsys.readouterr()
    assert cli.main(["sweep"], target=cli.Target.as_configured()) == 0
    out = capsys.readouterr().out
    assert "coffee-house" in out and "1 changed" in out and "daily sweep for 2026-12-03" in out
    assert ledger_sum(expiring.tenant_id, card) == 0


def test_the_schedule_queues_one_job_per_active_scope_and_the_worker_runs_them(
        api: Api, expiring: TenantKeys, other_tenant: TenantKeys, agency_key: str, clock: Any) -> None:
    tenant = expiring
    card = new_card(api, tenant, "+79163330001")
    buy(api, tenant, "r1", card, 10_000)
    paused = make_tenant(api, agency_key, "acme-agency", "paused-shop")
    assert api.patch("/v1/agency/tenants/paused-shop", agency_key, {"status": "suspended"}).status_code == 200
    receive_all()
    clock.advance(days=31)

    app.handler_map["daily_sweep"]({"version": "0", "id": "e1", "detail-type": "Scheduled Event", "source":
                                    "aws.events", "account": "123456789012", "time": "2026-12-03T02:00:00Z",
                                    "region": "eu-central-1", "resources": [], "detail": {}}, None)
    ran = _drain()
    assert sorted(m["scope"] for m in ran) == sorted([tenant.tenant_id, other_tenant.tenant_id])
    assert paused.tenant_id not in {m["scope"] for m in ran}, "a suspended tenant is skipped"
    assert {m["day"] for m in ran} == {"2026-12-03"}
    assert [e["points"] for e in ledger(api, tenant, card) if e["type"] == "expiry"] == [-5]
    assert sweeps.run_scope(paused.tenant_id, loyalty.now().date()).cards_seen == 0


# --- expiring queries --------------------------------------------------------------------

def test_a_cards_expiring_points_by_date(api: Api, expiring: TenantKeys, other_tenant: TenantKeys,
                                         clock: Any) -> None:
    tenant = expiring
    card = new_card(api, tenant, "+79164440001")
    buy(api, tenant, "r1", card, 100_000)
    clock.advance(days=10)
    buy(api, tenant, "r2", card, 40_000)
    clock.advance(days=5)  # day 15: 5,000 expire at day 30, 2,000 at day 40

    r = api.get(f"/v1/cards/{card}/expiring?within_days=20", tenant.pos)
    assert r.status_code == 200, r.data
    assert r.data == {"card_number": card, "total": 50, "has_more": False, "cursor": None,
                      "items": [{"expires_at": "2026-12-02T10:00:00Z", "points": 50}]}
    wide = api.get(f"/v1/cards/{card}/expiring?within_days=25", tenant.support).data
    assert wide["total"] == 70 == api.get(f"/v1/cards/{card}/expiring", tenant.pos).data["total"]
    assert [(i["expires_at"], i["points"]) for i in wide["items"]] == [
        ("2026-12-02T10:00:00Z", 50), ("2026-12-12T10:00:00Z", 20)]
    assert api.get(f"/v1/cards/{card}/expiring?within_days=14", tenant.admin).data["total"] == 0
    assert api.get(f"/v1/cards/{card}/expiring?within_days=15", tenant.admin).data["total"] == 50
    for bad in ("0", "366", "x"):
        assert api.get(f"/v1/cards/{card}/expiring?within_days={bad}", tenant.pos).status_code == 400
    assert api.get(f"/v1/cards/{card}/expiring?days=3", tenant.pos).status_code == 400
    assert api.get("/v1/cards/4000000000006/expiring", tenant.pos).status_code == 404
    assert api.get("/v1/cards/not-a-number/expiring", tenant.pos).status_code == 404
    other = api.get(f"/v1/cards/{card}/expiring", other_tenant.pos)
    assert other.status_code == 404 and other.data["error"]["code"] == "card_not_found"
    clock.advance(days=16)  # day 31: the first lot is gone, whether or not the sweep ran
    assert api.get(f"/v1/cards/{card}/expiring", tenant.pos).data["items"] == [
        {"expires_at": "2026-12-12T10:00:00Z", "points": 20}]


def test_a_programs_cards_with_points_expiring_paginated_and_bound_to_the_tenant(
        api: Api, expiring: TenantKeys, other_tenant: TenantKeys, clock: Any) -> None:
    tenant = expiring
    cards = [new_card(api, tenant, f"+7916555000{i}") for i in range(4)]
    for i, card in enumerate(cards):
        buy(api, tenant, f"r{i}", card, 20_000 * (i + 1))  # 10 .. 40 points, expiring at day 30
        clock.advance(days=1)
    idle = new_card(api, tenant, "+79165559999")
    clock.advance(days=20)  # day 24

    r = api.get("/v1/programs/main/expiring-points?within_days=30", tenant.admin)
    assert r.status_code == 200, r.data
    got = {i["card_number"]: i for i in r.data["items"]}
    assert set(got) == set(cards) and idle not in got and r.data["has_more"] is False
    assert got[cards[2]]["points"] == 30 and got[cards[2]]["first_expires_at"] == "2026-12-04T10:00:00Z"
    assert got[cards[0]]["customer_id"]

    big = api.get("/v1/programs/main/expiring-points?within_days=30&min_points=25", tenant.support).data
    assert sorted(i["points"] for i in big["items"]) == [30, 40]
    soon = api.get("/v1/programs/main/expiring-points?within_days=7", tenant.support).data
    assert sorted(i["points"] for i in soon["items"]) == [10, 20], "day 30 and 31 are within 7 days of day 24"

    pages: list[str] = []
    cursor = None
    for _ in range(10):
        url = "/v1/programs/main/expiring-points?within_days=30&limit=1" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(url, tenant.admin).data
        pages.extend(i["card_number"] for i in page["items"])
        cursor = page["cursor"]
        if not page["has_more"]:
            break
    assert sorted(pages) == sorted(cards), "every card once across pages"
    assert pages[0] == cards[0], "by due day: the first to expire first"

    first = api.get("/v1/programs/main/expiring-points?within_days=30&limit=1", tenant.admin).data
    assert first["has_more"] and first["cursor"]
    stolen = api.get(f"/v1/programs/main/expiring-points?within_days=30&limit=1&cursor={first['cursor']}",
                     other_tenant.admin)
    assert stolen.status_code == 400 and stolen.data["error"]["details"][0]["field"] == "cursor"
    other_filters = api.get(f"/v1/programs/main/expiring-points?within_days=20&limit=1&cursor={first['cursor']}",
                            tenant.admin)
    assert other_filters.status_code == 400
    assert api.get("/v1/programs/main/expiring-points?cursor=garbage", tenant.admin).status_code == 400

    theirs = api.get("/v1/programs/main/expiring-points?within_days=30", other_tenant.admin)
    assert theirs.status_code == 200 and theirs.data["items"] == [], "another tenant sees none of these cards"
    assert api.get("/v1/programs/nope/expiring-points", tenant.admin).status_code == 404
    assert api.get("/v1/programs/main/expiring-points", tenant.pos).status_code == 403

    service_items, _ = sweeps.program_expiring(tenant.tenant_id, "main", within_days=30, min_points=40)
    assert [(i.card_number, i.points) for i in service_items] == [(cards[3], 40)]


# --- tier downgrades ---------------------------------------------------------------------

def _tier_program(api: Api, tenant: TenantKeys, **rules: Any) -> None:
    set_program(api, tenant, tiers={"metric": "spend", "window_days": 30, "levels": LEVELS, **rules})


def _spend(tenant: TenantKeys, card: str, amount: int) -> None:
    """Qualifying spend recorded on the card as a purchase would (the tier state itself, not a receipt)."""
    rules = catalog.program(tenant.tenant_id, "main").tiers
    at = loyalty.now()
    state = loyalty.get_card(tenant.tenant_id, card)
    tiers.record(state.tiers, rules, amount, at)
    transactions.write(lambda tx: loyalty.save_card(tx, tenant.tenant_id, state, at))


def _tier_entries(api: Api, tenant: TenantKeys, card: str) -> list[tuple[str | None, str | None, str | None]]:
    return [(e["previous_tier"], e["tier"], e["reason"]) for e in reversed(ledger(api, tenant, card))
            if e["type"] == "tier"]


def test_grace_downgrade_on_a_rolling_spend_window(api: Api, tenant: TenantKeys, clock: Any) -> None:
    _tier_program(api, tenant, downgrade="grace", grace_days=10)
    card = new_card(api, tenant, "+79166660001")
    _spend(tenant, card, 150_000)
    assert card_view(api, tenant, card)["tier"] == "gold"

    clock.advance(days=29)
    assert sweep(tenant).cards_changed == 0, "still within the window: nothing due"
    clock.advance(days=2)  # day 31: the spend left the window; grace starts
    assert sweep(tenant).entries == 0
    assert card_view(api, tenant, card)["tier"] == "gold"
    clock.advance(days=9)
    assert sweep(tenant).entries == 0 and card_view(api, tenant, card)["tier"] == "gold"
    clock.advance(days=1)  # grace over
    assert sweep(tenant).entries == 1
    assert card_view(api, tenant, card)["tier"] == "silver"
    assert _tier_entries(api, tenant, card) == [("gold", "silver", "downgrade")]
    assert sweep(tenant).entries == 0


def test_grace_ends_when_the_card_qualifies_again(api: Api, tenant: TenantKeys, clock: Any) -> None:
    _tier_program(api, tenant, downgrade="grace", grace_days=10)
    card = new_card(api, tenant, "+79166660002")
    _spend(tenant, card, 150_000)
    clock.advance(days=31)
    sweep(tenant)
    clock.advance(days=5)
    _spend(tenant, card, 120_000)
    clock.advance(days=6)
    assert sweep(tenant).entries == 0
    assert card_view(api, tenant, card)["tier"] == "gold" and _tier_entries(api, tenant, card) == []


def test_period_end_downgrade(api: Api, tenant: TenantKeys, clock: Any) -> None:
    _tier_program(api, tenant, downgrade="period_end", review_days=60)
    card = new_card(api, tenant, "+79166660003")
    _spend(tenant, card, 150_000)
    clock.advance(days=59)
    assert sweep(tenant).entries == 0 and card_view(api, tenant, card)["tier"] == "gold"
    clock.advance(days=1)
    assert sweep(tenant).entries == 1
    assert card_view(api, tenant, card)["tier"] == "silver"
    assert _tier_entries(api, tenant, card) == [("gold", "silver", "downgrade")]


def test_a_manual_assignment_is_a_floor_the_sweep_respects_until_it_ends(
        api: Api, tenant: TenantKeys, clock: Any) -> None:
    _tier_program(api, tenant, downgrade="grace", grace_days=10)
    card = new_card(api, tenant, "+79166660004")
    until = (T0 + timedelta(days=45)).isoformat()
    r = api.post(f"/v1/cards/{card}/tier", tenant.admin,
                 {"tier": "gold", "reason": "Key account", "until": until, "assignment_id": "vip-1"})
    assert r.status_code == 200 and r.data["tier"] == "gold", r.data
    clock.advance(days=44)
    assert sweep(tenant).entries == 0 and card_view(api, tenant, card)["tier"] == "gold"
    clock.advance(days=1)  # the floor ends: grace starts now
    assert sweep(tenant).entries == 0 and card_view(api, tenant, card)["tier"] == "gold"
    clock.advance(days=10)
    assert sweep(tenant).entries == 1 and card_view(api, tenant, card)["tier"] == "silver"
    assert _tier_entries(api, tenant, card) == [(None, "gold", "Key account"), ("gold", "silver", "downgrade")]


# --- coalitions ---------------------------------------------------------------------------

def test_coalition_cards_are_queried_by_every_partner_and_swept_once(
        api: Api, agency_key: str, tenant: TenantKeys, clock: Any) -> None:
    shops = [make_tenant(api, agency_key, "acme-agency", s) for s in ("shop-a", "shop-b")]
    club = {"id": "club", "name": "City club points", "earning": {"rate_bps": 500}, "expiry_days": 30}
    r = api.post("/v1/agency/coalitions", agency_key, {"coalition_id": "city-club", "name": "City club",
                                                       "program": club, "members": ["shop-a", "shop-b"]})
    assert r.status_code == 201, r.data
    issued = api.post("/v1/cards", shops[0].pos, {"program_id": "club", "customer": {"phone": "+79168880001"}})
    assert issued.status_code == 201, issued.data
    card = issued.data["number"]
    assert buy(api, shops[0], "a-1", card, 100_000)["points_earned"] == 50
    clock.advance(days=20)

    at_b = api.get(f"/v1/cards/{card}/expiring", shops[1].support)
    assert at_b.status_code == 200 and at_b.data["total"] == 50
    listed = api.get("/v1/programs/club/expiring-points?within_days=15", shops[1].admin).data["items"]
    assert [(i["card_number"], i["points"]) for i in listed] == [(card, 50)]
    assert api.get(f"/v1/cards/{card}/expiring", tenant.pos).status_code == 404, "not a partner"
    assert api.get("/v1/programs/club/expiring-points", tenant.admin).status_code == 404

    clock.advance(days=11)
    receive_all()
    sweeps.start_daily(loyalty.now())
    ran = [m["scope"] for m in _drain()]
    coalition = loyalty.coalition_scope("city-club")
    assert ran.count(coalition) == 1 and {"shop-a", "shop-b", tenant.tenant_id} <= set(ran)
    assert [e.points for e in loyalty.list_entries(coalition, card, 50, None)[0] if e.type == "expiry"] == [-50]
    assert ledger_sum(coalition, card) == 0


# --- gift money --------------------------------------------------------------------------

def test_gift_money_expires_in_the_sweep_once(api: Api, tenant: TenantKeys, clock: Any) -> None:
    r = api.post("/v1/programs", tenant.admin, {"id": "gift", "name": "Gift cards", "kind": "gift",
                                                "gift": {"validity_days": 90}})
    assert r.status_code == 201, r.data
    sale = api.post("/v1/gift-cards", tenant.pos, {"sale_id": "s-1", "program_id": "gift", "amount": 300_000})
    assert sale.status_code == 201, sale.data
    number = sale.data["number"]
    clock.advance(days=89)
    assert sweep(tenant).entries == 0
    clock.advance(days=2)
    assert sweep(tenant).entries == 1
    view = api.get(f"/v1/gift-cards/{number}", tenant.support).data
    assert view["money"] == 0 and view["status"] == "expired"
    assert loyalty.get_card(tenant.tenant_id, number).status.value == sale.data["status"], "the stored status stays"
    entries = api.get(f"/v1/gift-cards/{number}/transactions", tenant.support).data["items"]
    newest = entries[0]
    assert (newest["type"], newest["amount"], newest["balance_after"]) == ("expiry", -300_000, 0)
    assert ledger_sum(tenant.tenant_id, number, field="amount") == 0
    assert sweep(tenant).entries == 0
