"""Functional fixtures: the Chalice test client over moto's in-process AWS, and ready-made tenants."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.domain.roles import Role
from chalicelib.schemas.keys import KeyCreate
from chalicelib.services.tenancy import keys as api_keys
from chalicelib.services.tenancy.scopes import Scope


class Api:
    """Thin JSON wrapper over the Chalice test client."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def call(self, method: str, path: str, key: str | None = None, body: Any = None,
             headers: dict[str, str] | None = None, raw: bytes | None = None) -> Any:
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if key is not None:
            hdrs["Authorization"] = f"Bearer {key}"
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        response = getattr(self.client.http, method.lower())(path, headers=hdrs, body=payload)
        response.data = json.loads(response.body) if response.body and response.headers.get(
            "Content-Type", "application/json").startswith("application/json") else response.body
        return response

    def get(self, path: str, key: str | None = None, **kw: Any) -> Any:
        return self.call("GET", path, key, **kw)

    def post(self, path: str, key: str | None = None, body: Any = None, **kw: Any) -> Any:
        return self.call("POST", path, key, body if body is not None else {}, **kw)

    def put(self, path: str, key: str | None = None, body: Any = None, **kw: Any) -> Any:
        return self.call("PUT", path, key, body, **kw)

    def patch(self, path: str, key: str | None = None, body: Any = None, **kw: Any) -> Any:
        return self.call("PATCH", path, key, body, **kw)

    def delete(self, path: str, key: str | None = None, **kw: Any) -> Any:
        return self.call("DELETE", path, key, **kw)


@dataclass
class TenantKeys:
    tenant_id: str
    agency_id: str
    agency: str
    admin: str
    pos: str
    support: str


def tenant_body(tenant_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tenant_id": tenant_id,
        "name": f"{tenant_id} LLC",
        "plan": "standard",
        "currency": "RUB",
        "timezone": "Europe/Moscow",
        "program": {"id": "main", "name": "Main program", "earning": {"rate_bps": 500},
                    "redemption": {"point_value": 100, "max_share_bps": 3000}},
        "stores": [{"id": "msk-01", "name": "Tverskaya 1", "region": "moscow"}],
    }
    body.update(overrides)
    return body


@pytest.fixture
def api(aws_stack: None) -> Iterator[Api]:
    from app import app
    from infra.local.gateway import install_gateway_responses

    install_gateway_responses()
    with Client(app) as client:
        yield Api(client)


@pytest.fixture
def platform_key(aws_stack: None) -> str:
    return api_keys.create(Scope.platform(), KeyCreate(role=Role.PLATFORM, name="test platform"), "test").secret


def make_agency(api: Api, platform_key: str, agency_id: str) -> str:
    r = api.post("/v1/platform/agencies", platform_key, {"agency_id": agency_id, "name": agency_id.title()})
    assert r.status_code == 201, r.data
    return r.data["key"]["secret"]


def make_tenant(api: Api, agency_key: str, agency_id: str, tenant_id: str) -> TenantKeys:
    r = api.post("/v1/agency/tenants", agency_key, tenant_body(tenant_id))
    assert r.status_code == 201, r.data
    keys = {k["role"]: k["secret"] for k in r.data["keys"]}
    support = api.post("/v1/keys", keys["tenant_admin"], {"role": "support", "name": "call center"})
    assert support.status_code == 201, support.data
    return TenantKeys(tenant_id, agency_id, agency_key, keys["tenant_admin"], keys["pos"], support.data["secret"])


@pytest.fixture
def agency_key(api: Api, platform_key: str) -> str:
    return make_agency(api, platform_key, "acme-agency")


@pytest.fixture
def tenant(api: Api, agency_key: str) -> TenantKeys:
    return make_tenant(api, agency_key, "acme-agency", "coffee-house")


@pytest.fixture
def other_tenant(api: Api, platform_key: str) -> TenantKeys:
    """A tenant of a different agency: nothing of it may be visible to the first."""
    other_agency = make_agency(api, platform_key, "rival-agency")
    return make_tenant(api, other_agency, "rival-agency", "fuel-net")
