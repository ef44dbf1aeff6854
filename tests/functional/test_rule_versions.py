"""Versioned program rules: every change is a new immutable version that takes effect at a stated time.

The rules in force at t are the highest-numbered version whose effective_at <= t,
so a later change supersedes a version scheduled before it once it takes effect.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from chalicelib.services.program import catalog
from chalicelib.services.tenancy.tenant_files import apply_tenant_file
from chalicelib.storage import directory
from chalicelib.storage.tables import DirectoryRecord
from tests.functional.conftest import Api, TenantKeys

FUEL = {"id": "fuel", "name": "Fuel points", "earning": {"rate_bps": 100}, "store_ids": ["msk-01"]}
MAIN = {"name": "Main program", "earning": {"rate_bps": 500}, "redemption": {"point_value": 100, "max_share_bps": 3000}}
FUEL_FILE = Path(__file__).resolve().parents[2] / "tenants" / "fuel-network.yaml"


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def rules(rate_bps: int, **extra: Any) -> dict[str, Any]:
    return {k: v for k, v in FUEL.items() if k != "id"} | {"earning": {"rate_bps": rate_bps}} | extra


def put(api: Api, key: str, rate_bps: int, **extra: Any) -> Any:
    return api.put("/v1/programs/fuel", key, rules(rate_bps, **extra))


def in_force(tenant_id: str, at: datetime) -> tuple[int, int]:
    found = catalog.program_at(tenant_id, "fuel", at)
    assert found is not None
    return found.version, found.earning.rate_bps


def test_versions_take_effect_when_stated_and_later_ones_supersede(
        clock: Any, api: Api, tenant: TenantKeys) -> None:
    t0 = clock.now()
    created = api.post("/v1/programs", tenant.admin, FUEL)
    assert created.status_code == 201
    assert (created.data["version"], created.data["effective_at"]) == (1, iso(t0))
    assert catalog.program(tenant.tenant_id, "fuel").version == 1

    r = put(api, tenant.admin, 200)
    assert r.status_code == 200 and (r.data["version"], r.data["effective_at"]) == (2, iso(t0))
    shown = api.get("/v1/programs/fuel", tenant.pos).data
    assert (shown["version"], shown["earning"]["rate_bps"]) == (2, 200)
    assert in_force(tenant.tenant_id, t0) == (2, 200)

    later = t0 + timedelta(days=10)
    r = put(api, tenant.admin, 300, effective_at=iso(later))
    assert r.status_code == 200 and (r.data["version"], r.data["effective_at"]) == (3, iso(later))
    head = api.get("/v1/programs/fuel", tenant.admin).data
    assert (head["version"], head["effective_at"]) == (3, iso(later)), "the program shows its latest version"
    assert in_force(tenant.tenant_id, t0) == (2, 200)
    assert catalog.program(tenant.tenant_id, "fuel").version == 2, "a scheduled version is not in force yet"
    assert in_force(tenant.tenant_id, later - timedelta(seconds=1)) == (2, 200)
    assert in_force(tenant.tenant_id, later) == (3, 300)
    assert in_force(tenant.tenant_id, t0 + timedelta(days=11)) == (3, 300)

    clock.advance(days=1)
    t1 = clock.now()
    r = put(api, tenant.admin, 400)
    assert (r.data["version"], r.data["effective_at"]) == (4, iso(t1))
    assert in_force(tenant.tenant_id, t0 + timedelta(days=11)) == (4, 400), "v4 supersedes the scheduled v3"
    assert in_force(tenant.tenant_id, t1) == (4, 400)
    assert in_force(tenant.tenant_id, t1 - timedelta(seconds=1)) == (2, 200), "history is not rewritten"
    catalog.clear()  # another process: reads storage afresh
    assert in_force(tenant.tenant_id, t0 + timedelta(days=11)) == (4, 400)

    actions = [(e["action"], e["detail"]) for e in api.get("/v1/audit", tenant.admin).data["items"]][:4]
    assert actions == [
        ("program.updated", {"version": "4", "effective_at": t1.isoformat()}),
        ("program.updated", {"version": "3", "effective_at": later.isoformat()}),
        ("program.updated", {"version": "2", "effective_at": t0.isoformat()}),
        ("program.created", {"version": "1", "effective_at": t0.isoformat()}),
    ]


def test_an_old_moment_is_looked_up_beyond_the_cached_versions(clock: Any, api: Api, tenant: TenantKeys) -> None:
    t0 = clock.now()
    assert api.post("/v1/programs", tenant.admin, FUEL).status_code == 201
    for day, rate in enumerate((200, 300, 400, 500, 600, 700), start=1):
        clock.advance(days=1)
        assert put(api, tenant.admin, rate).data["version"] == day + 1
    catalog.clear()
    assert catalog.RECENT < 7
    assert in_force(tenant.tenant_id, clock.now()) == (7, 700)
    assert in_force(tenant.tenant_id, t0 + timedelta(days=2, hours=1)) == (3, 300)
    assert in_force(tenant.tenant_id, t0 + timedelta(hours=1)) == (1, 100)
    assert in_force(tenant.tenant_id, t0 - timedelta(days=1)) == (1, 100), "before the first version: the first"
    assert catalog.program_at(tenant.tenant_id, "ghost", t0) is None


def test_versions_are_listed_newest_first_and_readable_one_by_one(
        clock: Any, api: Api, tenant: TenantKeys, other_tenant: TenantKeys) -> None:
    t0 = clock.now()
    main = api.get("/v1/programs/main/versions", tenant.support)
    assert main.status_code == 200 and [v["version"] for v in main.data["items"]] == [1], "provisioning wrote v1"
    api.post("/v1/programs", tenant.admin, FUEL)
    put(api, tenant.admin, 200)
    put(api, tenant.admin, 300, effective_at=iso(t0 + timedelta(days=3)))
    put(api, tenant.admin, 400)

    first = api.get("/v1/programs/fuel/versions?limit=3", tenant.support)
    assert first.status_code == 200 and first.data["has_more"] is True
    assert [(v["version"], v["earning"]["rate_bps"]) for v in first.data["items"]] == [(4, 400), (3, 300), (2, 200)]
    rest = api.get(f"/v1/programs/fuel/versions?limit=3&cursor={first.data['cursor']}", tenant.admin)
    assert [v["version"] for v in rest.data["items"]] == [1] and rest.data["has_more"] is False
    assert api.get(f"/v1/programs/main/versions?cursor={first.data['cursor']}", tenant.admin).status_code == 400

    v3 = api.get("/v1/programs/fuel/versions/3", tenant.support)
    assert v3.status_code == 200
    assert (v3.data["version"], v3.data["earning"]["rate_bps"], v3.data["effective_at"]) == (
        3, 300, iso(t0 + timedelta(days=3)))
    for missing in ("5", "0", "x", "00000003x"):
        assert api.get(f"/v1/programs/fuel/versions/{missing}", tenant.admin).status_code == 404, missing
    assert api.get("/v1/programs/ghost/versions", tenant.admin).status_code == 404
    assert api.get("/v1/programs/fuel/versions", tenant.pos).status_code == 403

    assert [p["id"] for p in api.get("/v1/programs", tenant.admin).data["items"]] == ["fuel", "main"]
    assert api.get("/v1/programs/fuel/versions", other_tenant.admin).status_code == 404
    assert api.get("/v1/programs/fuel/versions/1", other_tenant.support).status_code == 404
    assert api.get("/v1/programs/main/versions/1", other_tenant.admin).data["tenant_id"] == other_tenant.tenant_id


def test_effective_at_must_have_a_time_zone_and_not_be_in_the_past(clock: Any, api: Api, tenant: TenantKeys) -> None:
    now = clock.now()
    api.post("/v1/programs", tenant.admin, FUEL)
    naive = put(api, tenant.admin, 200, effective_at=(now + timedelta(days=1)).replace(tzinfo=None).isoformat())
    assert naive.status_code == 422 and naive.data["error"]["code"] == "effective_at_without_timezone"
    assert naive.data["error"]["details"][0]["field"] == "effective_at"
    past = put(api, tenant.admin, 200, effective_at=iso(now - timedelta(minutes=2)))
    assert past.status_code == 422 and past.data["error"]["code"] == "effective_at_in_past"
    assert [v["version"] for v in api.get("/v1/programs/fuel/versions", tenant.admin).data["items"]] == [1]

    skewed = put(api, tenant.admin, 200, effective_at=iso(now - timedelta(seconds=30)))
    assert skewed.status_code == 200 and (skewed.data["version"], skewed.data["effective_at"]) == (2, iso(now))


def test_identical_rules_write_nothing_and_a_retried_schedule_is_one_version(
        clock: Any, api: Api, tenant: TenantKeys) -> None:
    later = iso(clock.now() + timedelta(days=5))
    api.post("/v1/programs", tenant.admin, FUEL)
    assert put(api, tenant.admin, 100).data["version"] == 1, "the rules in force already"
    assert put(api, tenant.admin, 200, effective_at=later).data["version"] == 2
    assert put(api, tenant.admin, 200, effective_at=later).data["version"] == 2, "a retry writes nothing"
    assert in_force(tenant.tenant_id, clock.now()) == (1, 100)
    brought_forward = put(api, tenant.admin, 200)
    assert (brought_forward.data["version"], brought_forward.data["effective_at"]) == (3, iso(clock.now()))
    assert in_force(tenant.tenant_id, clock.now()) == (3, 200)


def test_reapplying_an_unchanged_tenant_file_writes_no_version(clock: Any, aws_stack: None, tmp_path: Path) -> None:
    def versions(program_id: str) -> list[tuple[int, int, Any]]:
        items = directory.list_program_versions("fuel-network", program_id, 50, None)[0]
        return [(v.version, v.discount.percent_bps, v.effective_at) for v in items]

    def version_rows() -> dict[str, Any]:
        return {r.sk: (r.version, r.updated_at, r.doc.as_dict()) for r in DirectoryRecord.query("fuel-network")
                if r.sk.startswith(directory.PROGRAM_VERSIONS)}

    apply_tenant_file(FUEL_FILE)
    first = versions("fleet-discount")
    assert [v[0] for v in first] == [1] and first[0][2] == clock.now()
    before = version_rows()
    assert len(before) == 2  # fuel-points and fleet-discount, version 1 each
    clock.advance(hours=1)
    apply_tenant_file(FUEL_FILE)
    assert version_rows() == before

    data = yaml.safe_load(FUEL_FILE.read_text(encoding="utf-8"))
    data["programs"][1]["discount"]["percent_bps"] = 300
    changed = tmp_path / "fuel-network.yaml"
    changed.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    apply_tenant_file(changed)
    after = versions("fleet-discount")
    assert after[0] == (2, 300, clock.now()) and after[1] == first[0], "a changed program: a new version, now"
    assert catalog.program_at("fuel-network", "fleet-discount", clock.now()).discount.percent_bps == 300


def buy(api: Api, tenant: TenantKeys, receipt: str, card: str, amount: int) -> Any:
    return api.post("/v1/purchases", tenant.pos, {
        "receipt_id": receipt, "card_number": card, "store_id": "msk-01", "total": amount,
        "items": [{"sku": "latte", "category": "coffee", "quantity": 1, "amount": amount}]})


def test_a_purchase_is_priced_by_the_version_in_force(clock: Any, api: Api, tenant: TenantKeys) -> None:
    assert api.put("/v1/programs/main", tenant.admin, MAIN | {"earning": {"rate_bps": 1000}}).status_code == 200
    scheduled = clock.now() + timedelta(days=10)
    r = api.put("/v1/programs/main", tenant.admin, MAIN | {"earning": {"rate_bps": 2000}, "effective_at": iso(scheduled)})
    assert r.status_code == 200 and r.data["version"] == 3
    card = api.post("/v1/cards", tenant.pos, {"program_id": "main"})
    assert card.status_code == 201, card.data
    number = card.data["number"]

    now = buy(api, tenant, "r-now", number, 10_000)
    assert now.status_code == 200, now.data
    assert now.data["points_earned"] == 10, "version 2 (10%) is in force, not the scheduled version 3"

    clock.advance(days=11)
    after = buy(api, tenant, "r-later", number, 10_000)
    assert after.status_code == 200, after.data
    assert after.data["points_earned"] == 20, "version 3 (20%) took effect"
    assert api.get(f"/v1/cards/{number}", tenant.pos).data["balance"] == 30
