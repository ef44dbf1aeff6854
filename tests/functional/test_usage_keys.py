"""Usage keys in API Gateway's usage plans (moto's apigateway): provisioning, plan changes, deletion, the CLI."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib import cli
from chalicelib.domain.rate_limits import AGENCY_PLAN, PLAN_LIMITS, usage_key
from chalicelib.errors import ApiError
from chalicelib.schemas.tenancy import TenantCreate
from chalicelib.services.tenancy import tenancy
from chalicelib.storage import aws, directory, usage_keys
from tests.functional.conftest import Api, TenantKeys, make_agency, make_tenant, tenant_body

Plans = dict[str, str]


def apigateway() -> Any:
    return aws.client("apigateway")


def create_plans() -> Plans:
    return {plan: apigateway().create_usage_plan(name=f"loyalty-test-{plan}")["id"] for plan in PLAN_LIMITS}


def configure(monkeypatch: pytest.MonkeyPatch, plans: Plans) -> None:
    monkeypatch.setattr(usage_keys, "settings", dataclasses.replace(usage_keys.settings, usage_plan_ids=plans))


@pytest.fixture
def plans(aws_stack: None, monkeypatch: pytest.MonkeyPatch) -> Plans:
    """One usage plan per plan, as the template creates them, and USAGE_PLAN_IDS naming them."""
    created = create_plans()
    configure(monkeypatch, created)
    return created


def plans_of(plans: Plans, kind: str, owner_id: str) -> list[str]:
    """The plans whose usage plan holds this owner's key (exactly one when all is well)."""
    value = usage_key("test", kind, owner_id)
    return sorted(plan for plan, plan_id in plans.items()
                  if any(k["value"] == value for k in apigateway().get_usage_plan_keys(usagePlanId=plan_id)["items"]))


def api_keys_named(kind: str, owner_id: str) -> list[dict[str, Any]]:
    name = usage_keys.key_name(kind, owner_id)
    return [k for k in apigateway().get_api_keys(includeValues=True)["items"] if k["name"] == name]


def broken_apigateway(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every apigateway call fails as an outage would."""
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "ServiceUnavailableException", "Message": "down"}}, "Call")

    client = SimpleNamespace(**{name: fail for name in (
        "get_api_keys", "create_api_key", "update_api_key", "delete_api_key", "get_usage_plan_key",
        "create_usage_plan_key", "delete_usage_plan_key")})
    monkeypatch.setattr(usage_keys, "aws", SimpleNamespace(client=lambda service: client))


def test_a_tenant_key_follows_its_plan_and_goes_with_the_tenant(
        api: Api, plans: Plans, platform_key: str) -> None:
    agency_key = make_agency(api, platform_key, "acme-agency")
    assert plans_of(plans, "agency", "acme-agency") == [AGENCY_PLAN]
    tenant = make_tenant(api, agency_key, "acme-agency", "coffee-house")  # plan: standard
    assert plans_of(plans, "tenant", "coffee-house") == ["standard"]
    [key] = api_keys_named("tenant", "coffee-house")
    assert key["enabled"] and key["value"] == usage_key("test", "tenant", "coffee-house")

    r = api.patch("/v1/agency/tenants/coffee-house", agency_key, {"plan": "premium"})
    assert r.status_code == 200, r.data
    assert plans_of(plans, "tenant", "coffee-house") == ["premium"]
    r = api.patch("/v1/agency/tenants/coffee-house", agency_key, {"plan": "basic"})
    assert plans_of(plans, "tenant", "coffee-house") == ["basic"]
    assert api.get("/v1/whoami", tenant.pos).status_code == 200

    r = api.delete("/v1/agency/tenants/coffee-house?confirm=coffee-house", agency_key)
    assert r.status_code in (200, 202), r.data
    assert plans_of(plans, "tenant", "coffee-house") == []
    assert api_keys_named("tenant", "coffee-house") == []
    assert plans_of(plans, "agency", "acme-agency") == [AGENCY_PLAN]


def test_registering_again_changes_nothing(api: Api, plans: Plans, tenant: TenantKeys) -> None:
    assert usage_keys.ensure_key("tenant", tenant.tenant_id, "standard") is False
    assert usage_keys.ensure_key("agency", tenant.agency_id, AGENCY_PLAN) is False
    assert len(api_keys_named("tenant", tenant.tenant_id)) == 1
    assert plans_of(plans, "tenant", tenant.tenant_id) == ["standard"]
    assert usage_keys.remove_key("tenant", tenant.tenant_id) is True
    assert usage_keys.remove_key("tenant", tenant.tenant_id) is False


def test_a_disabled_or_orphaned_key_is_repaired(api: Api, plans: Plans, tenant: TenantKeys) -> None:
    [key] = api_keys_named("tenant", tenant.tenant_id)
    apigateway().update_api_key(apiKey=key["id"], patchOperations=[
        {"op": "replace", "path": "/enabled", "value": "false"}])
    apigateway().delete_usage_plan_key(usagePlanId=plans["standard"], keyId=key["id"])
    apigateway().create_usage_plan_key(usagePlanId=plans["premium"], keyId=key["id"], keyType="API_KEY")
    assert usage_keys.ensure_key("tenant", tenant.tenant_id, "standard") is True
    [key] = api_keys_named("tenant", tenant.tenant_id)
    assert key["enabled"]
    assert plans_of(plans, "tenant", tenant.tenant_id) == ["standard"]


def test_without_usage_plans_nothing_is_registered(api: Api, tenant: TenantKeys) -> None:
    assert usage_keys.configured() is False
    assert usage_keys.ensure_key("tenant", tenant.tenant_id, "premium") is False
    assert usage_keys.remove_key("tenant", tenant.tenant_id) is False
    assert apigateway().get_api_keys()["items"] == []


def test_an_outage_fails_provisioning_cleanly_and_a_retry_succeeds(
        api: Api, plans: Plans, agency_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as outage:
        broken_apigateway(outage)
        r = api.post("/v1/agency/tenants", agency_key, tenant_body("bakery"))
        assert r.status_code == 503, r.data
        assert r.data["error"]["code"] == "dependency_unavailable" and r.headers["Retry-After"]
        assert api.get("/v1/agency/tenants/bakery", agency_key).status_code == 404  # nothing was written
    r = api.post("/v1/agency/tenants", agency_key, tenant_body("bakery"))
    assert r.status_code == 201, r.data
    assert plans_of(plans, "tenant", "bakery") == ["standard"]


def test_an_outage_leaves_the_plan_unchanged(api: Api, plans: Plans, tenant: TenantKeys,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as outage:
        broken_apigateway(outage)
        r = api.patch(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency, {"plan": "premium"})
        assert r.status_code == 503 and r.data["error"]["code"] == "dependency_unavailable", r.data
    assert api.get(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency).data["plan"] == "standard"
    assert plans_of(plans, "tenant", tenant.tenant_id) == ["standard"]


def test_an_agency_is_not_created_when_its_key_cannot_be_registered(
        api: Api, plans: Plans, platform_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as outage:
        broken_apigateway(outage)
        r = api.post("/v1/platform/agencies", platform_key, {"agency_id": "north", "name": "North"})
        assert r.status_code == 503, r.data
    assert directory.get_agency("north") is None
    assert make_agency(api, platform_key, "north")
    assert plans_of(plans, "agency", "north") == [AGENCY_PLAN]


def test_losing_a_provisioning_race_gives_the_winner_its_own_plan_back(
        api: Api, plans: Plans, tenant: TenantKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    real_get: Callable[[str], Any] = directory.get_tenant
    calls = {"n": 0}

    def not_there_yet(tenant_id: str) -> Any:  # the other request had not committed when this one checked
        calls["n"] += 1
        return None if calls["n"] == 1 else real_get(tenant_id)

    monkeypatch.setattr(tenancy.directory, "get_tenant", not_there_yet)
    spec = TenantCreate.model_validate_json(json.dumps(tenant_body(tenant.tenant_id, plan="premium")))
    with pytest.raises(ApiError) as raised:
        tenancy.provision_tenant(tenant.agency_id, spec, "test")
    assert raised.value.code == "tenant_exists" and calls["n"] == 2
    assert plans_of(plans, "tenant", tenant.tenant_id) == ["standard"]


def test_the_cli_registers_every_owner_of_an_older_stack(
        api: Api, aws_stack: None, platform_key: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["usage-keys"], target=cli.Target.as_configured()) == 1  # no usage plans configured
    agency_key = make_agency(api, platform_key, "acme-agency")  # before request limits existed: no keys
    make_tenant(api, agency_key, "acme-agency", "coffee-house")
    r = api.post("/v1/agency/tenants", agency_key, tenant_body("big-store", plan="premium"))
    assert r.status_code == 201
    r = api.post("/v1/agency/tenants", agency_key, tenant_body("gone", plan="basic"))
    assert r.status_code == 201
    plans = create_plans()
    configure(monkeypatch, plans)
    usage_keys.ensure_key("tenant", "gone", "basic")
    assert api.delete("/v1/agency/tenants/gone?confirm=gone", agency_key).status_code in (200, 202)
    usage_keys.ensure_key("tenant", "gone", "basic")  # left over, as from a failed removal

    capsys.readouterr()
    assert cli.main(["usage-keys"], target=cli.Target.as_configured()) == 0
    assert "5 changed, 1 removed" in capsys.readouterr().out
    assert plans_of(plans, "platform", "platform") == [AGENCY_PLAN]
    assert plans_of(plans, "anonymous", "anonymous") == ["basic"]  # failed authentications are metered too
    assert plans_of(plans, "agency", "acme-agency") == [AGENCY_PLAN]
    assert plans_of(plans, "tenant", "coffee-house") == ["standard"]
    assert plans_of(plans, "tenant", "big-store") == ["premium"]
    assert plans_of(plans, "tenant", "gone") == []

    assert cli.main(["usage-keys"], target=cli.Target.as_configured()) == 0
    assert "0 changed, 0 removed, 6 unchanged" in capsys.readouterr().out
