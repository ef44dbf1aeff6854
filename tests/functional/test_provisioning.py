"""Agencies and tenants: provisioning, isolation between agencies, validation."""

from __future__ import annotations

from tests.functional.conftest import Api, TenantKeys, tenant_body


def test_platform_creates_agency_with_a_working_first_key(api: Api, platform_key: str) -> None:
    r = api.post("/v1/platform/agencies", platform_key, {"agency_id": "north-agency", "name": "North"})
    assert r.status_code == 201
    assert r.data["agency"] == {"agency_id": "north-agency", "name": "North", "contact_email": None,
                                "created_at": r.data["agency"]["created_at"]}
    key = r.data["key"]
    assert key["role"] == "agency" and key["secret"].startswith("lp_agy_north-agency.")
    who = api.get("/v1/whoami", key["secret"])
    assert who.status_code == 200
    assert who.data == {"role": "agency", "key_id": key["key_id"], "owner": "north-agency", "tenant_id": None,
                        "agency_id": "north-agency", "store_id": None, "user_id": None, "email": None}
    dup = api.post("/v1/platform/agencies", platform_key, {"agency_id": "north-agency", "name": "Again"})
    assert dup.status_code == 409 and dup.data["error"]["code"] == "agency_exists"
    listed = api.get("/v1/platform/agencies", platform_key)
    assert [a["agency_id"] for a in listed.data["items"]] == ["north-agency"]


def test_agency_provisions_tenant_with_program_stores_and_first_keys(api: Api, agency_key: str) -> None:
    r = api.post("/v1/agency/tenants", agency_key, tenant_body("coffee-house"))
    assert r.status_code == 201, r.data
    assert r.data["tenant"]["tenant_id"] == "coffee-house"
    assert r.data["tenant"]["agency_id"] == "acme-agency"
    assert r.data["tenant"]["status"] == "active"
    assert r.data["program"]["earning"]["rate_bps"] == 500
    assert r.data["program"]["version"] == 1
    assert [s["id"] for s in r.data["stores"]] == ["msk-01"]
    roles = sorted(k["role"] for k in r.data["keys"])
    assert roles == ["pos", "tenant_admin"]
    prefixes = {k["role"]: k["secret"].split(".")[0] for k in r.data["keys"]}
    assert prefixes == {"pos": "lp_pos_coffee-house", "tenant_admin": "lp_adm_coffee-house"}
    for k in r.data["keys"]:
        who = api.get("/v1/whoami", k["secret"])
        assert who.data["tenant_id"] == "coffee-house" and who.data["agency_id"] == "acme-agency"
    programs = api.get("/v1/programs", prefixes and r.data["keys"][0]["secret"])
    assert [p["id"] for p in programs.data["items"]] == ["main"]

    again = api.post("/v1/agency/tenants", agency_key, tenant_body("coffee-house"))
    assert again.status_code == 409 and again.data["error"]["code"] == "tenant_exists"
    assert again.data["error"]["details"] == [{"field": "tenant_id", "issue": "Tenant 'coffee-house' already exists."}]


def test_failed_provisioning_writes_nothing(api: Api, agency_key: str, platform_key: str) -> None:
    body = tenant_body("half-made", program={"id": "p", "name": "P", "earning": {"rate_bps": 100},
                                             "store_ids": ["nowhere"]})
    r = api.post("/v1/agency/tenants", agency_key, body)
    assert r.status_code == 400
    assert r.data["error"]["details"][0]["issue"].endswith("program 'p' names unknown stores ['nowhere']")
    assert api.get("/v1/agency/tenants/half-made", agency_key).status_code == 404
    assert api.get("/v1/agency/tenants", agency_key).data["items"] == []


def test_agency_sees_only_its_own_tenants(api: Api, tenant: TenantKeys, other_tenant: TenantKeys) -> None:
    mine = api.get("/v1/agency/tenants", tenant.agency)
    assert [t["tenant_id"] for t in mine.data["items"]] == ["coffee-house"]
    theirs = f"/v1/agency/tenants/{other_tenant.tenant_id}"
    for method, path, body in [
        ("GET", theirs, None),
        ("PATCH", theirs, {"name": "Taken over"}),
        ("DELETE", theirs + "?confirm=fuel-net", None),
        ("GET", theirs + "/keys", None),
        ("POST", theirs + "/keys", {"role": "pos", "name": "sneaky"}),
    ]:
        r = api.call(method, path, tenant.agency, body)
        assert r.status_code == 404, (method, path, r.data)
        assert r.data["error"]["code"] == "not_found"
    assert api.get("/v1/whoami", other_tenant.pos).status_code == 200
    assert api.get(theirs, other_tenant.agency).data["name"] == "fuel-net LLC"


def test_suspending_a_tenant_stops_its_keys_and_reactivating_restores_them(api: Api, tenant: TenantKeys) -> None:
    path = f"/v1/agency/tenants/{tenant.tenant_id}"
    r = api.patch(path, tenant.agency, {"status": "suspended"})
    assert r.status_code == 200 and r.data["status"] == "suspended"
    refused = api.get("/v1/whoami", tenant.pos)
    assert refused.status_code == 401 and refused.data["error"]["code"] == "tenant_suspended"
    assert api.patch(path, tenant.agency, {"status": "active"}).data["status"] == "active"
    assert api.get("/v1/whoami", tenant.pos).status_code == 200
    bad = api.patch(path, tenant.agency, {"status": "deleting"})
    assert bad.status_code == 400 and bad.data["error"]["details"][0]["field"] == "status"


def test_tenant_validation_errors_name_the_field(api: Api, agency_key: str) -> None:
    cases = [
        (tenant_body("x1", surprise=1), "surprise", "Extra inputs are not permitted"),
        (tenant_body("platform"), "tenant_id", "Value error, 'platform' is reserved"),
        (tenant_body("Bad_Id"), "tenant_id", "String should match pattern"),
        (tenant_body("t-float", program={"id": "m", "name": "M", "earning": {"rate_bps": 5.5}}),
         "program.earning.rate_bps", "Input should be a valid integer"),
        (tenant_body("t-str", program={"id": "m", "name": "M", "earning": {"rate_bps": "500"}}),
         "program.earning.rate_bps", "Input should be a valid integer"),
        (tenant_body("t-tz", timezone="Mars/Olympus"), "timezone", "Value error, unknown time zone 'Mars/Olympus'"),
        (tenant_body("t-neg", program={"id": "m", "name": "M", "earning": {"rate_bps": -1}}),
         "program.earning.rate_bps", "Input should be greater than or equal to 0"),
    ]
    for body, field, issue in cases:
        r = api.post("/v1/agency/tenants", agency_key, body)
        assert r.status_code == 400, (field, r.data)
        assert r.data["error"]["code"] == "validation_error"
        assert {"field": field, "issue": issue} in [
            {"field": d["field"], "issue": d["issue"][: len(issue)]} for d in r.data["error"]["details"]
        ], r.data
    assert api.get("/v1/agency/tenants", agency_key).data["items"] == []


def test_tenant_deletion_requires_confirmation(api: Api, tenant: TenantKeys) -> None:
    r = api.delete(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency)
    assert r.status_code == 400 and r.data["error"]["code"] == "confirmation_required"
    assert api.get("/v1/whoami", tenant.pos).status_code == 200
