"""What the schema fuzzer (tests/e2e/test_schema_fuzz.py) found, pinned down in-process."""

from __future__ import annotations

from typing import Any

from chalicelib.api import openapi
from chalicelib.api.registry import routes
from tests.functional.conftest import Api, TenantKeys

NOT_SLUGS = ("x" * 41, "Msk-01", "msk_01", "%F2%A0%AB%AAc")


def _documented(api: Api, method: str, path: str) -> dict[str, Any]:
    return dict(api.get("/v1/openapi.json").data["paths"][path][method.lower()]["responses"])


def _is_error(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.data
    assert r.data["error"]["code"] == code and set(r.data["error"]) == {"code", "message", "details", "request_id"}


def test_replacing_a_store_whose_id_is_not_a_slug_is_404_not_500(api: Api, tenant: TenantKeys) -> None:
    for store_id in NOT_SLUGS:
        _is_error(api.put(f"/v1/stores/{store_id}", tenant.admin, {"name": "Arbat 10"}), 404, "not_found")
    assert [s["id"] for s in api.get("/v1/stores", tenant.admin).data["items"]] == ["msk-01"], "nothing written"
    assert api.put("/v1/stores/msk-01", tenant.admin, {"name": "Arbat 10"}).data["name"] == "Arbat 10"


def test_replacing_a_program_whose_id_is_not_a_slug_is_404_not_500(api: Api, tenant: TenantKeys) -> None:
    body = {"name": "Main program", "earning": {"rate_bps": 700}}
    for program_id in NOT_SLUGS:
        _is_error(api.put(f"/v1/programs/{program_id}", tenant.admin, body), 404, "not_found")
    assert api.get("/v1/programs/main", tenant.admin).data["earning"]["rate_bps"] == 500, "nothing written"


def test_every_success_status_a_route_returns_is_documented_with_its_model(api: Api) -> None:
    table = {(s.method, s.path): s for s in routes()}
    assert set(openapi.OTHER_SUCCESS) <= set(table), "every extra status names a declared route"
    for (method, path), others in openapi.OTHER_SUCCESS.items():
        responses = _documented(api, method, path)
        spec = table[(method, path)]
        declared = responses[str(spec.status)]["content"]["application/json"]["schema"]
        for status, model in others.items():
            schema = responses[str(status)]["content"]["application/json"]["schema"]
            if model is None:
                assert schema == declared, (method, path, status)
            else:
                assert schema["$ref"].endswith(f"/{model.__name__}"), (method, path, status, schema)
    simulate = _documented(api, "POST", "/v1/programs/{program_id}/simulate")
    assert simulate["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/SimulationResult")
    assert simulate["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/Report")


def test_a_replayed_offline_batch_answers_a_documented_200(api: Api, tenant: TenantKeys) -> None:
    body = {"batch_id": "b-1", "receipts": [{}]}
    first = api.post("/v1/pos/batches", tenant.pos, body)
    again = api.post("/v1/pos/batches", tenant.pos, body)
    assert (first.status_code, again.status_code) == (202, 200), (first.data, again.data)
    assert again.data["replayed"] is True and again.data["batch_id"] == "b-1"
    assert {"200", "202"} <= set(_documented(api, "POST", "/v1/pos/batches"))
