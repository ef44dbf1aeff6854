"""Every role x route pair, generated from the app's own route table.

A route added with a bare `@app.route` has no declaration in the registry and
fails `test_every_chalice_route_is_declared`; a declared route is then checked
here for each role that must be refused, for missing and malformed keys, and
for its own allowed roles getting past authorisation.
"""

from __future__ import annotations

import re

import pytest

from app import app
from chalicelib.api.registry import routes
from chalicelib.domain.roles import Role
from tests.functional.conftest import Api, TenantKeys

ROUTES = routes()
PROTECTED = [r for r in ROUTES if not r.public]


def _concrete(path: str) -> str:
    samples = {"tenant_id": "coffee-house", "agency_id": "acme-agency", "key_id": "abcdefghijkm",
               "program_id": "main", "store_id": "msk-01"}
    return re.sub(r"\{(\w+)\}", lambda m: samples.get(m.group(1), "x"), path)


def test_every_chalice_route_is_declared() -> None:
    """Every route is the API's (with the key authorizer unless public) or a console page (no gateway authorizer:
    the page wrapper checks the session cookie, the role and the form's token)."""
    from chalicelib.console.pages import pages

    declared = {(r.path, r.method) for r in ROUTES}
    console = {(p.path, p.method) for p in pages()}
    actual = {(path, method) for path, methods in app.routes.items() for method in methods}
    assert actual == declared | console and not declared & console
    for path, methods in app.routes.items():
        for method, entry in methods.items():
            if (path, method) in console:
                assert entry.authorizer is None, path
                continue
            spec = next(r for r in ROUTES if r.path == path and r.method == method)
            if spec.public:
                assert entry.authorizer is None, path
            else:
                assert entry.authorizer is not None and entry.authorizer.name == "key_authorizer", path
                assert spec.roles <= set(Role)


@pytest.fixture
def keys_by_role(api: Api, platform_key: str, tenant: TenantKeys) -> dict[Role, str]:
    return {Role.PLATFORM: platform_key, Role.AGENCY: tenant.agency, Role.TENANT_ADMIN: tenant.admin,
            Role.POS: tenant.pos, Role.SUPPORT: tenant.support}


def test_refused_roles_get_403_and_allowed_roles_pass_authorisation(api: Api, keys_by_role: dict[Role, str]) -> None:
    checked = 0
    for spec in PROTECTED:
        path = _concrete(spec.path)
        for role, key in keys_by_role.items():
            r = api.call(spec.method, path, key, {} if spec.method in ("POST", "PUT", "PATCH") else None)
            if role in spec.roles and spec.sessions_only:
                assert r.status_code == 403, (role, spec.method, spec.path, r.data)
                assert r.data["error"]["code"] == "session_required"  # a key has no session of its own
            elif role in spec.roles:
                assert r.status_code not in (401, 403), (role, spec.method, spec.path, r.data)
            else:
                assert r.status_code == 403, (role, spec.method, spec.path, r.data)
                assert r.data["error"]["code"] == "forbidden"
                assert r.data["error"]["request_id"] == r.headers["X-Request-Id"]
            checked += 1
    assert checked == len(PROTECTED) * len(Role)


def test_missing_or_malformed_keys_get_401_on_every_protected_route(api: Api) -> None:
    for spec in PROTECTED:
        path = _concrete(spec.path)
        for key in (None, "garbage", "lp_pos_x.abcdefghijkm." + "A" * 43):
            r = api.call(spec.method, path, key, {} if spec.method in ("POST", "PUT", "PATCH") else None)
            assert r.status_code == 401, (spec.method, spec.path, key, r.data)
            assert set(r.data["error"]) >= {"code", "message", "details", "request_id"}


def test_public_routes_need_no_key(api: Api) -> None:
    """Public routes answer without a key: 200 where nothing is needed, else the error of missing input."""
    for spec in (r for r in ROUTES if r.public):
        r = api.call(spec.method, _concrete(spec.path), None, {} if spec.method == "POST" else None)
        if spec.method == "GET" and not spec.path_params and spec.query is None:
            assert r.status_code == 200, spec.path
        else:
            assert r.status_code in (400, 404), (spec.path, r.status_code, r.data)
            assert r.data["error"]["code"] not in ("unauthorized", "forbidden"), spec.path
