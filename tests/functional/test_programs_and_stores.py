"""A tenant's programs and stores: admins write, tills and support read, nobody crosses tenants."""

from __future__ import annotations

from tests.functional.conftest import Api, TenantKeys

PROGRAM = {"id": "fuel", "name": "Fuel points", "earning": {"rate_bps": 100, "excluded_categories": ["tobacco"]},
           "store_ids": ["msk-01"], "expiry_days": 365}


def test_admin_creates_and_replaces_a_program_with_versioning(api: Api, tenant: TenantKeys) -> None:
    r = api.post("/v1/programs", tenant.admin, PROGRAM)
    assert r.status_code == 201
    assert r.data["version"] == 1 and r.data["earning"]["excluded_categories"] == ["tobacco"]
    update = {k: v for k, v in PROGRAM.items() if k != "id"} | {"earning": {"rate_bps": 200}}
    r2 = api.put("/v1/programs/fuel", tenant.admin, update)
    assert r2.status_code == 200 and r2.data["version"] == 2 and r2.data["earning"]["rate_bps"] == 200
    same = api.put("/v1/programs/fuel", tenant.admin, update)
    assert same.data["version"] == 2, "an identical replace writes nothing"
    assert api.get("/v1/programs/fuel", tenant.pos).data["earning"]["rate_bps"] == 200
    assert api.get("/v1/programs/fuel", tenant.support).status_code == 200
    dup = api.post("/v1/programs", tenant.admin, PROGRAM)
    assert dup.status_code == 409 and dup.data["error"]["code"] == "program_exists"
    actions = [e["action"] for e in api.get("/v1/audit", tenant.admin).data["items"]]
    assert actions[:2] == ["program.updated", "program.created"]


def test_program_rules_are_checked(api: Api, tenant: TenantKeys) -> None:
    r = api.post("/v1/programs", tenant.admin, PROGRAM | {"store_ids": ["msk-01", "nowhere"]})
    assert r.status_code == 422 and r.data["error"]["details"] == [{"field": "store_ids", "issue": "no such store: nowhere"}]
    r = api.post("/v1/programs", tenant.admin, PROGRAM | {"kind": "discount"})
    assert r.status_code == 400 and "percent_bps" in r.data["error"]["details"][0]["issue"]
    r = api.put("/v1/programs/ghost", tenant.admin, {"name": "Ghost", "earning": {"rate_bps": 1}})
    assert r.status_code == 404


def test_stores_and_coalition_partners(api: Api, tenant: TenantKeys) -> None:
    r = api.post("/v1/stores", tenant.admin, {"id": "spb-01", "name": "Nevsky", "partner_id": "bakery"})
    assert r.status_code == 422 and r.data["error"]["code"] == "unknown_partner"
    patched = api.patch(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency,
                        {"partners": [{"id": "bakery", "name": "Bakery"}]})
    assert patched.data["partners"] == [{"id": "bakery", "name": "Bakery"}]
    r = api.post("/v1/stores", tenant.admin, {"id": "spb-01", "name": "Nevsky", "partner_id": "bakery"})
    assert r.status_code == 201 and r.data["partner_id"] == "bakery"
    r = api.put("/v1/stores/spb-01", tenant.admin, {"name": "Nevsky 2", "active": False, "partner_id": "bakery"})
    assert r.data["name"] == "Nevsky 2" and r.data["active"] is False
    listed = api.get("/v1/stores", tenant.pos).data["items"]
    assert [s["id"] for s in listed] == ["msk-01", "spb-01"]


def test_tenant_data_is_invisible_to_other_tenants(api: Api, tenant: TenantKeys, other_tenant: TenantKeys) -> None:
    api.post("/v1/programs", other_tenant.admin, PROGRAM | {"store_ids": []})
    assert api.get("/v1/programs/fuel", tenant.admin).status_code == 404
    assert api.put("/v1/programs/fuel", tenant.admin, {"name": "X", "earning": {"rate_bps": 1}}).status_code == 404
    assert [p["id"] for p in api.get("/v1/programs", tenant.admin).data["items"]] == ["main"]
    assert api.get("/v1/tenant", tenant.support).data["tenant_id"] == "coffee-house"
    assert all(e["action"] != "program.created" for e in api.get("/v1/audit", tenant.admin).data["items"])
