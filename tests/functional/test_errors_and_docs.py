"""One error shape for every failure, request ids everywhere, the OpenAPI document, logs."""

from __future__ import annotations

import io
import json

from openapi_spec_validator import validate

from chalicelib.api.registry import routes
from chalicelib.domain.roles import Role
from chalicelib.observability import logger
from tests.functional.conftest import Api, TenantKeys


def _assert_error(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.body
    assert r.headers["Content-Type"].startswith("application/json")
    err = r.data["error"]
    assert err["code"] == code, err
    assert err["message"] and isinstance(err["details"], list)
    assert err["request_id"] == r.headers["X-Request-Id"]
    assert "Traceback" not in r.body.decode()
    return err


def test_malformed_json_wrong_types_unknown_fields_oversize(api: Api, tenant: TenantKeys) -> None:
    _assert_error(api.call("POST", "/v1/stores", tenant.admin, raw=b'{"id": "x", '), 400, "malformed_json")
    _assert_error(api.call("POST", "/v1/stores", tenant.admin, raw=b"\xff\xfe"), 400, "malformed_json")
    _assert_error(api.call("POST", "/v1/stores", tenant.admin, raw=b"[1, 2]"), 400, "validation_error")
    err = _assert_error(api.post("/v1/stores", tenant.admin, {"id": "s2", "name": "S", "active": "yes"}),
                        400, "validation_error")
    assert err["details"] == [{"field": "active", "issue": "Input should be a valid boolean"}]
    err = _assert_error(api.post("/v1/stores", tenant.admin, {"id": "s2", "name": "S", "colour": "red"}),
                        400, "validation_error")
    assert err["details"] == [{"field": "colour", "issue": "Extra inputs are not permitted"}]
    huge = json.dumps({"id": "s3", "name": "x" * 300_000}).encode()
    _assert_error(api.call("POST", "/v1/stores", tenant.admin, raw=huge), 413, "payload_too_large")
    assert api.get("/v1/stores/s2", tenant.admin).status_code == 404


def test_query_string_errors(api: Api, tenant: TenantKeys) -> None:
    err = _assert_error(api.get("/v1/stores?limit=0", tenant.admin), 400, "validation_error")
    assert err["details"][0]["field"] == "limit"
    err = _assert_error(api.get("/v1/stores?limit=abc", tenant.admin), 400, "validation_error")
    err = _assert_error(api.get("/v1/stores?color=red", tenant.admin), 400, "validation_error")
    assert err["details"] == [{"field": "color", "issue": "Extra inputs are not permitted"}]
    err = _assert_error(api.get("/v1/tenant?x=1", tenant.admin), 400, "validation_error")
    err = _assert_error(api.get("/v1/stores?cursor=notbase64!!", tenant.admin), 400, "validation_error")
    assert err["details"][0]["field"] == "cursor"


def test_cursor_of_another_tenant_is_refused(api: Api, tenant: TenantKeys, other_tenant: TenantKeys) -> None:
    for i in range(3):
        api.post("/v1/stores", other_tenant.admin, {"id": f"s{i}", "name": f"S{i}"})
    page = api.get("/v1/stores?limit=2", other_tenant.admin).data
    assert page["has_more"] is True and len(page["items"]) == 2
    err = _assert_error(api.get(f"/v1/stores?limit=2&cursor={page['cursor']}", tenant.admin), 400, "validation_error")
    assert err["details"][0] == {"field": "cursor", "issue": "The cursor does not belong to this list."}
    rest = api.get(f"/v1/stores?limit=2&cursor={page['cursor']}", other_tenant.admin).data
    assert [s["id"] for s in page["items"] + rest["items"]] == ["msk-01", "s0", "s1", "s2"]
    assert rest["has_more"] is False and rest["cursor"] is None


def test_framework_errors_are_reshaped(api: Api, tenant: TenantKeys) -> None:
    _assert_error(api.call("PATCH", "/v1/stores", tenant.admin, {}), 405, "method_not_allowed")
    _assert_error(api.call("POST", "/v1/stores", tenant.admin, raw=b"id=x",
                           headers={"Content-Type": "application/x-www-form-urlencoded"}), 415,
                  "unsupported_media_type")
    _assert_error(api.get("/v1/no-such-route", tenant.admin), 404, "not_found")
    _assert_error(api.get("/v1/no-such-route"), 404, "not_found")


def test_every_response_has_a_request_id(api: Api, tenant: TenantKeys) -> None:
    ids = set()
    for r in (api.get("/v1/health"), api.get("/v1/whoami", tenant.pos), api.get("/v1/whoami")):
        assert r.headers["X-Request-Id"] not in ("", "-")
        ids.add(r.headers["X-Request-Id"])
    assert len(ids) == 3


def test_openapi_document_is_valid_and_covers_every_route_with_its_auth(api: Api) -> None:
    r = api.get("/v1/openapi.json")
    doc = r.data
    validate(doc)
    for spec in routes():
        op = doc["paths"][spec.path][spec.method.lower()]
        if spec.public:
            assert op["security"] == [] and op["x-roles"] == ["public"]
        else:
            session = {"sessionToken": [], "sessionCookie": []}
            people = spec.roles - {Role.POS}
            expected = [session] if spec.sessions_only else [{"apiKey": []}, session] if people else [{"apiKey": []}]
            assert op["security"] == expected, spec.path
            assert op["x-roles"] == sorted(role.value for role in spec.roles)
            assert "401" in op["responses"] and "403" in op["responses"]
        if spec.body is not None:
            assert op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(spec.body.__name__)
    assert doc["components"]["schemas"]["EarningRules"]["properties"]["rate_bps"]["type"] == "integer"
    docs = api.get("/v1/docs")
    assert docs.status_code == 200 and b"openapi.json" in docs.body


def test_logs_are_json_with_tenant_request_route_and_latency(api: Api, tenant: TenantKeys, capsys) -> None:
    buffer = io.StringIO()
    handler = logger.registered_handler
    previous = handler.setStream(buffer)
    try:
        capsys.readouterr()
        r = api.get("/v1/programs", tenant.pos)
    finally:
        handler.setStream(previous)
    emitted = buffer.getvalue().splitlines() + capsys.readouterr().out.splitlines()
    lines = [json.loads(line) for line in emitted if line.startswith("{")]
    access = [entry for entry in lines if entry.get("message") == "request"]
    assert len(access) == 1
    entry = access[0]
    assert entry["tenant_id"] == "coffee-house"
    assert entry["request_id"] == r.headers["X-Request-Id"]
    assert entry["route"] == "GET /v1/programs"
    assert entry["status"] == 200 and entry["latency_ms"] > 0
    metrics = [entry for entry in lines if "_aws" in entry]
    assert metrics and metrics[-1]["tenant_id"] == "coffee-house" and metrics[-1]["Requests"] == [1.0]


def test_refusals_name_the_role_with_the_right_article(api: Api, tenant: TenantKeys) -> None:
    err = _assert_error(api.get("/v1/stores", tenant.agency), 403, "forbidden")
    assert err["message"] == "An agency key may not call GET /v1/stores (allowed: pos, support, tenant_admin)."
    members = {"type": "members", "program_id": "main", "from": "2026-11-01", "to": "2026-11-10"}
    err = _assert_error(api.post(f"/v1/agency/tenants/{tenant.tenant_id}/reports", tenant.agency, members),
                        403, "forbidden")
    assert err["message"] == "An agency key may not request a members report (allowed: tenant_admin)."
    err = _assert_error(api.post("/v1/keys", tenant.pos, {"role": "pos", "name": "x"}), 403, "forbidden")
    assert err["message"].startswith("A pos key may not ")

