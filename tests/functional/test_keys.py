"""API keys: create, list without secrets, revoke, rotate, and who may manage whose keys."""

from __future__ import annotations

from chalicelib.domain.keys import hash_key
from chalicelib.storage.tables import ApiKeyRecord
from tests.functional.conftest import Api, TenantKeys, make_tenant


def test_created_key_is_shown_once_and_stored_only_as_hash(api: Api, tenant: TenantKeys) -> None:
    r = api.post("/v1/keys", tenant.admin, {"role": "pos", "name": "till 2", "store_id": "msk-01"})
    assert r.status_code == 201
    secret = r.data["secret"]
    assert secret.startswith(f"lp_pos_{tenant.tenant_id}.{r.data['key_id']}.")
    assert r.data["store_id"] == "msk-01" and r.data["status"] == "active"
    stored = ApiKeyRecord.get(tenant.tenant_id, r.data["key_id"])
    assert stored.key_hash == hash_key(secret)
    assert secret not in str(stored.attribute_values)
    listed = api.get("/v1/keys", tenant.admin)
    assert listed.status_code == 200
    assert all("secret" not in k for k in listed.data["items"])
    assert {k["name"] for k in listed.data["items"]} == {"first admin key", "first POS key", "call center", "till 2"}
    who = api.get("/v1/whoami", secret)
    assert who.data["store_id"] == "msk-01"


def test_revoked_key_fails_on_the_next_request(api: Api, tenant: TenantKeys) -> None:
    key_id = api.get("/v1/whoami", tenant.pos).data["key_id"]
    r = api.delete(f"/v1/keys/{key_id}", tenant.admin)
    assert r.status_code == 200 and r.data["status"] == "revoked" and r.data["revoked_at"]
    refused = api.get("/v1/whoami", tenant.pos)
    assert refused.status_code == 401
    assert refused.data["error"]["code"] == "revoked_key"
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    again = api.delete(f"/v1/keys/{key_id}", tenant.admin)
    assert again.status_code == 200 and again.data["status"] == "revoked"
    audit = api.get("/v1/audit", tenant.admin).data["items"]
    assert [e["action"] for e in audit if e["target"] == f"key:{key_id}"] == ["key.revoked"]


def test_rotation_without_grace_retires_old_key_at_once(api: Api, tenant: TenantKeys) -> None:
    old_id = api.get("/v1/whoami", tenant.pos).data["key_id"]
    r = api.post(f"/v1/keys/{old_id}/rotate", tenant.admin, {})
    assert r.status_code == 201
    assert r.data["role"] == "pos" and r.data["name"] == "first POS key" and r.data["key_id"] != old_id
    assert api.get("/v1/whoami", tenant.pos).status_code == 401
    assert api.get("/v1/whoami", r.data["secret"]).data["key_id"] == r.data["key_id"]
    listed = {k["key_id"]: k for k in api.get("/v1/keys", tenant.admin).data["items"]}
    assert listed[old_id]["status"] == "revoked" and listed[old_id]["rotated_to"] == r.data["key_id"]
    twice = api.post(f"/v1/keys/{old_id}/rotate", tenant.admin, {})
    assert twice.status_code == 409 and twice.data["error"]["code"] == "key_not_active"


def test_rotation_with_grace_keeps_old_key_working_until_expiry(api: Api, tenant: TenantKeys) -> None:
    old_id = api.get("/v1/whoami", tenant.pos).data["key_id"]
    r = api.post(f"/v1/keys/{old_id}/rotate", tenant.admin, {"grace_seconds": 3600})
    assert r.status_code == 201
    assert api.get("/v1/whoami", tenant.pos).status_code == 200
    listed = {k["key_id"]: k for k in api.get("/v1/keys", tenant.admin).data["items"]}
    assert listed[old_id]["status"] == "expiring" and listed[old_id]["expires_at"]
    twice = api.post(f"/v1/keys/{old_id}/rotate", tenant.admin, {"grace_seconds": 60})
    assert twice.status_code == 409
    too_long = api.post(f"/v1/keys/{r.data['key_id']}/rotate", tenant.admin, {"grace_seconds": 10**9})
    assert too_long.status_code == 400 and too_long.data["error"]["details"][0]["field"] == "grace_seconds"


def test_expired_grace_key_is_refused(api: Api, tenant: TenantKeys) -> None:
    from datetime import UTC, datetime, timedelta

    old_id = api.get("/v1/whoami", tenant.pos).data["key_id"]
    api.post(f"/v1/keys/{old_id}/rotate", tenant.admin, {"grace_seconds": 60})
    rec = ApiKeyRecord.get(tenant.tenant_id, old_id)
    rec.update(actions=[ApiKeyRecord.expires_at.set(datetime.now(UTC) - timedelta(seconds=1))])
    refused = api.get("/v1/whoami", tenant.pos)
    assert refused.status_code == 401 and refused.data["error"]["code"] == "revoked_key"


def test_key_roles_are_limited_to_the_scope(api: Api, tenant: TenantKeys) -> None:
    r = api.post("/v1/keys", tenant.admin, {"role": "agency", "name": "escalate"})
    assert r.status_code == 400
    assert r.data["error"]["details"] == [
        {"field": "role", "issue": "A tenant key must have one of these roles: pos, support, tenant_admin."}]
    r = api.post("/v1/keys", tenant.admin, {"role": "support", "name": "x", "store_id": "msk-01"})
    assert r.status_code == 400 and r.data["error"]["details"][0]["field"] == "store_id"
    r = api.post("/v1/keys", tenant.admin, {"role": "pos", "name": "x", "store_id": "nowhere"})
    assert r.status_code == 422 and r.data["error"]["code"] == "unknown_store"
    r = api.post("/v1/keys", tenant.agency, {"role": "tenant_admin", "name": "x"})
    assert r.status_code == 400, "an agency's own scope holds agency keys only"


def test_agency_manages_its_tenants_keys(api: Api, tenant: TenantKeys) -> None:
    base = f"/v1/agency/tenants/{tenant.tenant_id}/keys"
    created = api.post(base, tenant.agency, {"role": "tenant_admin", "name": "replacement admin"})
    assert created.status_code == 201 and created.data["secret"].startswith("lp_adm_coffee-house.")
    assert api.get("/v1/tenant", created.data["secret"]).data["tenant_id"] == "coffee-house"
    ids = [k["key_id"] for k in api.get(base, tenant.agency).data["items"]]
    assert created.data["key_id"] in ids and len(ids) == 4
    rotated = api.post(f"{base}/{created.data['key_id']}/rotate", tenant.agency, {})
    assert rotated.status_code == 201
    revoked = api.delete(f"{base}/{rotated.data['key_id']}", tenant.agency)
    assert revoked.data["status"] == "revoked"
    assert api.get("/v1/whoami", rotated.data["secret"]).status_code == 401
    missing = api.delete(f"{base}/nosuchkey1234", tenant.agency)
    assert missing.status_code == 404


def test_platform_manages_agency_keys(api: Api, platform_key: str, agency_key: str) -> None:
    base = "/v1/platform/agencies/acme-agency/keys"
    created = api.post(base, platform_key, {"role": "agency", "name": "ops"})
    assert created.status_code == 201
    assert api.get("/v1/whoami", created.data["secret"]).data["agency_id"] == "acme-agency"
    assert api.delete(f"{base}/{created.data['key_id']}", platform_key).data["status"] == "revoked"
    assert api.get("/v1/platform/agencies/nobody/keys", platform_key).status_code == 404
    assert api.post("/v1/keys", platform_key, {"role": "platform", "name": "second operator"}).status_code == 201


def test_one_tenant_cannot_touch_another_tenants_keys(api: Api, tenant: TenantKeys, other_tenant: TenantKeys) -> None:
    their_key_id = api.get("/v1/whoami", other_tenant.pos).data["key_id"]
    r = api.delete(f"/v1/keys/{their_key_id}", tenant.admin)
    assert r.status_code == 404
    assert api.get("/v1/whoami", other_tenant.pos).status_code == 200
    r = api.post(f"/v1/keys/{their_key_id}/rotate", tenant.admin, {})
    assert r.status_code == 404


def test_bad_keys_get_401_with_a_reason(api: Api, tenant: TenantKeys) -> None:
    good = tenant.pos
    prefix, key_id, secret = good.split(".")
    tampered_secret = f"{prefix}.{key_id}.{'A' * 43}"
    other_owner = good.replace("lp_pos_coffee-house", "lp_pos_fuel-net")
    wrong_role = good.replace("lp_pos_", "lp_adm_")
    cases = {
        "malformed_key": ["not-a-key", "lp_pos_coffee-house", good + "x", "lp_xyz_coffee-house." + key_id + "." + secret],
        "invalid_key": [tampered_secret, other_owner, wrong_role],
    }
    for code, keys in cases.items():
        for key in keys:
            r = api.get("/v1/whoami", key)
            assert r.status_code == 401, key
            assert r.data["error"]["code"] == code, (key, r.data)
    for header in ["Basic abc", "Bearer", "Bearer  "]:
        r = api.call("GET", "/v1/whoami", headers={"Authorization": header})
        assert r.status_code == 401 and r.data["error"]["code"] in ("unauthorized", "malformed_key")
    r = api.get("/v1/whoami")
    assert r.status_code == 401 and r.data["error"]["code"] == "unauthorized"
    assert r.headers["X-Request-Id"] == r.data["error"]["request_id"]


def test_storage_outage_during_authentication_is_a_503_not_a_401(api: Api, tenant: TenantKeys, monkeypatch) -> None:
    from chalicelib.storage import keys as key_store

    def down(partition: str, key_id: str) -> None:
        raise ConnectionError("DynamoDB unreachable")

    monkeypatch.setattr(key_store, "get", down)
    r = api.get("/v1/whoami", tenant.pos)
    assert r.status_code == 503
    assert r.data["error"]["code"] == "auth_unavailable" and r.headers["Retry-After"] == "1"


def test_an_agency_key_is_never_bound_to_a_store_even_when_a_tenant_shares_the_agency_id(
    api: Api, platform_key: str, agency_key: str
) -> None:
    """The store check used to look the store up under the agency id as if it were a tenant's."""
    namesake = make_tenant(api, agency_key, "acme-agency", "acme-agency")  # a tenant named like its agency
    assert api.get("/v1/stores/msk-01", namesake.admin).status_code == 200
    r = api.post("/v1/platform/agencies/acme-agency/keys", platform_key,
                 {"role": "agency", "name": "bound", "store_id": "msk-01"})
    assert r.status_code == 400 and r.data["error"]["details"][0]["field"] == "store_id"
    listed = api.get("/v1/platform/agencies/acme-agency/keys", platform_key).data["items"]
    assert [k["name"] for k in listed if k["name"] == "bound"] == []
