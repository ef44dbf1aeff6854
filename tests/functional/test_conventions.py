"""API conventions, checked from the route table: `/v1` paths, cursor pagination on every list,
Idempotency-Key on every authenticated POST, one error shape, RateLimit headers, a stable OpenAPI document.

The table-driven tests read `registry.routes()`, so a route added later without
pagination or outside the route wrapper fails here without anyone keeping a list.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

import pytest

from chalicelib.api import registry
from chalicelib.api.middleware import RATE_LIMIT_POLICY
from chalicelib.domain import rate_limits as rules
from chalicelib.domain.rate_limits import Limits
from chalicelib.schemas.common import ErrorResponse
from infra.local.gateway import RateLimiter, rate_limits
from tests.functional.conftest import Api, TenantKeys, make_tenant, tenant_body

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def table() -> list[registry.RouteSpec]:
    import app  # noqa: F401  (declares every route)

    return registry.routes()


def _is_list(annotation: Any) -> bool:
    return typing.get_origin(annotation) is list


# --- (c) the version prefix -------------------------------------------------------------------

def test_every_path_is_under_the_stable_version_prefix(table: list[registry.RouteSpec]) -> None:
    assert table
    assert [f"{s.method} {s.path}" for s in table if not s.path.startswith("/v1/")] == []


# --- (a) cursor pagination on every list --------------------------------------------------------

def test_every_list_takes_limit_and_cursor_and_says_has_more(table: list[registry.RouteSpec]) -> None:
    lists = [s for s in table if s.method == "GET" and s.response is not None
             and "items" in s.response.model_fields and _is_list(s.response.model_fields["items"].annotation)]
    assert len(lists) > 20, "the route table should hold the API's lists"
    missing = []
    for spec in lists:
        query = spec.query.model_fields if spec.query is not None else {}
        response = spec.response.model_fields if spec.response is not None else {}
        if not {"limit", "cursor"} <= set(query) or not {"has_more", "cursor"} <= set(response):
            missing.append(f"{spec.method} {spec.path}")
    assert missing == [], "lists without cursor pagination"


def _coalition(api: Api, agency_key: str, coalition_id: str, members: list[str]) -> None:
    program = {"id": coalition_id, "name": "Club points", "earning": {"rate_bps": 500},
               "redemption": {"point_value": 100, "max_share_bps": 3000}}
    r = api.post("/v1/agency/coalitions", agency_key,
                 {"coalition_id": coalition_id, "name": coalition_id.title(), "program": program, "members": members})
    assert r.status_code == 201, r.data


def test_a_partners_coalitions_are_paged_by_a_cursor_bound_to_the_tenant(
        api: Api, agency_key: str, tenant: TenantKeys) -> None:
    shop = make_tenant(api, agency_key, "acme-agency", "shop-b")
    for coalition_id in ("club-c", "club-a", "club-b"):
        _coalition(api, agency_key, coalition_id, [tenant.tenant_id, shop.tenant_id])

    first = api.get("/v1/coalitions?limit=2", tenant.admin)
    assert first.status_code == 200, first.data
    assert [c["coalition_id"] for c in first.data["items"]] == ["club-a", "club-b"] and first.data["has_more"]
    second = api.get(f"/v1/coalitions?limit=2&cursor={first.data['cursor']}", tenant.support)
    assert [c["coalition_id"] for c in second.data["items"]] == ["club-c"]
    assert second.data["has_more"] is False and second.data["cursor"] is None
    whole = api.get("/v1/coalitions", tenant.admin).data  # no parameters: the first page of 50, as before
    assert [c["coalition_id"] for c in whole["items"]] == ["club-a", "club-b", "club-c"] and not whole["has_more"]

    foreign = api.get(f"/v1/coalitions?limit=2&cursor={first.data['cursor']}", shop.admin)
    assert foreign.status_code == 400 and foreign.data["error"]["details"][0]["field"] == "cursor"
    for forged in ("not-a-cursor", "eyJ4IjoxfQ"):
        r = api.get(f"/v1/coalitions?cursor={forged}", tenant.admin)
        assert r.status_code == 400 and r.data["error"]["code"] == "validation_error", r.data
    for bad in ("0", "201", "x"):
        assert api.get(f"/v1/coalitions?limit={bad}", tenant.admin).status_code == 400


def test_a_cards_expiring_points_are_paged_and_the_total_is_the_whole_window(
        api: Api, tenant: TenantKeys, other_tenant: TenantKeys, clock: Any) -> None:
    r = api.put("/v1/programs/main", tenant.admin, {
        "name": "Main program", "earning": {"rate_bps": 500}, "expiry_days": 30,
        "redemption": {"point_value": 100, "max_share_bps": 3000}})
    assert r.status_code == 200, r.data
    card = api.post("/v1/cards", tenant.pos, {"program_id": "main"}).data["number"]
    for day, amount in enumerate((10_000, 20_000, 40_000)):
        bought = api.post("/v1/purchases", tenant.pos, {
            "receipt_id": f"exp-{day}", "card_number": card, "store_id": "msk-01", "total": amount,
            "items": [{"sku": "latte", "category": "coffee", "quantity": 1, "amount": amount}]})
        assert bought.status_code == 200, bought.data
        clock.advance(days=1)

    whole = api.get(f"/v1/cards/{card}/expiring", tenant.pos).data
    assert [i["points"] for i in whole["items"]] == [5, 10, 20] and whole["total"] == 35
    assert whole["has_more"] is False and whole["cursor"] is None
    first = api.get(f"/v1/cards/{card}/expiring?limit=2", tenant.support).data
    assert [i["points"] for i in first["items"]] == [5, 10] and first["total"] == 35 and first["has_more"]
    rest = api.get(f"/v1/cards/{card}/expiring?limit=2&cursor={first['cursor']}", tenant.pos).data
    assert [i["points"] for i in rest["items"]] == [20] and rest["total"] == 35 and rest["has_more"] is False

    other_window = api.get(f"/v1/cards/{card}/expiring?within_days=60&cursor={first['cursor']}", tenant.pos)
    assert other_window.status_code == 400, "a cursor belongs to one card and window"
    forged = api.get(f"/v1/cards/{card}/expiring?cursor=e30", tenant.pos)
    assert forged.status_code == 400 and forged.data["error"]["details"][0]["field"] == "cursor"
    assert api.get(f"/v1/cards/{card}/expiring?cursor={first['cursor']}", other_tenant.pos).status_code == 404


# --- (b) Idempotency-Key on every authenticated POST ------------------------------------------

def _view_code() -> types.CodeType:
    """The code of the wrapper `registry._make_view` returns: the one place Idempotency-Key is honoured."""
    found = [c for c in registry._make_view.__code__.co_consts if isinstance(c, types.CodeType) and c.co_name == "view"]
    assert len(found) == 1
    return found[0]


def test_every_post_route_goes_through_the_idempotent_wrapper(table: list[registry.RouteSpec]) -> None:
    from app import app

    view = _view_code()
    assert "idempotency-key" in view.co_consts and "POST" in view.co_consts
    posts = [s for s in table if s.method == "POST"]
    assert len([s for s in posts if not s.public]) > 40
    for spec in posts:
        entry = app.routes[spec.path]["POST"]
        assert entry.view_function.__code__ is view, f"POST {spec.path} bypasses the route wrapper"
    from chalicelib.console.pages import pages

    registered = {(path, method) for path, methods in app.routes.items() for method in methods}
    declared = {(s.path, s.method) for s in table} | {(p.path, p.method) for p in pages()}
    assert registered == declared, "a route outside the route table and the console's page table"


def _twice(api: Api, path: str, key: str, body: dict[str, Any], changed: dict[str, Any], idem: str) -> Any:
    headers = {"Idempotency-Key": idem}
    first = api.post(path, key, body, headers=headers)
    again = api.post(path, key, body, headers=headers)
    assert first.status_code < 300, first.data
    assert (again.status_code, again.data) == (first.status_code, first.data)
    assert again.headers.get("Idempotent-Replayed") == "true" and "Idempotent-Replayed" not in first.headers
    reused = api.post(path, key, changed, headers=headers)
    assert reused.status_code == 422 and reused.data["error"]["code"] == "idempotency_key_reused", reused.data
    return first


def test_three_kinds_of_post_replay_under_the_same_key(api: Api, tenant: TenantKeys) -> None:
    card = _twice(api, "/v1/cards", tenant.pos, {"program_id": "main"},
                  {"program_id": "main", "customer": {"phone": "+79160000001"}}, "card-1").data["number"]
    key = _twice(api, "/v1/keys", tenant.admin, {"role": "pos", "name": "till 9"},
                 {"role": "pos", "name": "till 10"}, "key-1").data
    assert len([k for k in api.get("/v1/keys?limit=200", tenant.admin).data["items"] if k["name"] == "till 9"]) == 1
    assert key["secret"]
    purchase = {"receipt_id": "idem-1", "card_number": card, "store_id": "msk-01", "total": 10_000,
                "items": [{"sku": "latte", "category": "coffee", "quantity": 1, "amount": 10_000}]}
    bigger = {**purchase, "total": 20_000, "items": [{**purchase["items"][0], "amount": 20_000}]}
    bought = _twice(api, "/v1/purchases", tenant.pos, purchase, bigger, "buy-1").data
    after = api.get(f"/v1/cards/{card}", tenant.pos).data
    assert bought["points_earned"] == 5 and after["balance"] + after["pending"] == 5, "earned once"


# --- (d) one error shape ------------------------------------------------------------------------

def _assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.data
    assert response.headers["Content-Type"].startswith("application/json")
    shaped = ErrorResponse.model_validate(response.data)
    assert shaped.error.code == code and shaped.error.message
    assert shaped.error.request_id == response.headers["X-Request-Id"]


def test_every_kind_of_error_has_the_documented_shape(api: Api, tenant: TenantKeys, agency_key: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _assert_error(api.get("/v1/keys?limit=0", tenant.admin), 400, "validation_error")
    _assert_error(api.get("/v1/whoami", tenant.pos[:-4] + "AAAA"), 401, "invalid_key")
    _assert_error(api.get("/v1/keys", tenant.pos), 403, "forbidden")
    _assert_error(api.get("/v1/cards/4000000000006", tenant.pos), 404, "card_not_found")
    _assert_error(api.post("/v1/agency/tenants", agency_key, tenant_body(tenant.tenant_id)), 409, "tenant_exists")
    api.post("/v1/keys", tenant.admin, {"role": "pos", "name": "a"}, headers={"Idempotency-Key": "k"})
    _assert_error(api.post("/v1/keys", tenant.admin, {"role": "pos", "name": "b"}, headers={"Idempotency-Key": "k"}),
                  422, "idempotency_key_reused")
    monkeypatch.setitem(rules.PLAN_LIMITS, "standard", Limits(rate_per_second=1, burst=1, quota_per_day=100))
    with rate_limits(RateLimiter(monotonic=lambda: 1000.0)):
        assert api.get("/v1/whoami", tenant.pos).status_code == 200
        throttled = api.get("/v1/whoami", tenant.pos)
    _assert_error(throttled, 429, "rate_limited")
    assert throttled.headers["Retry-After"] == "1"


# --- RateLimit headers ------------------------------------------------------------------------

def _plan_tenant(api: Api, agency_key: str, tenant_id: str, plan: str) -> str:
    r = api.post("/v1/agency/tenants", agency_key, tenant_body(tenant_id, plan=plan))
    assert r.status_code == 201, r.data
    return next(k["secret"] for k in r.data["keys"] if k["role"] == "tenant_admin")


def test_every_authenticated_answer_states_the_callers_plan(api: Api, agency_key: str, tenant: TenantKeys,
                                                            platform_key: str) -> None:
    basic = _plan_tenant(api, agency_key, "corner-shop", "basic")
    premium = _plan_tenant(api, agency_key, "big-store", "premium")
    assert api.get("/v1/whoami", basic).headers[RATE_LIMIT_POLICY] == "10;w=1;burst=20, 100000;w=86400"
    assert api.get("/v1/whoami", premium).headers[RATE_LIMIT_POLICY] == "200;w=1;burst=400, 10000000;w=86400"
    standard = "50;w=1;burst=100, 1000000;w=86400"
    for key in (tenant.admin, tenant.pos, tenant.support):
        assert api.get("/v1/whoami", key).headers[RATE_LIMIT_POLICY] == standard
    agency = "20;w=1;burst=40, 200000;w=86400"
    assert api.get("/v1/agency/tenants", agency_key).headers[RATE_LIMIT_POLICY] == agency
    assert api.get("/v1/whoami", platform_key).headers[RATE_LIMIT_POLICY] == agency

    assert api.get("/v1/keys", tenant.pos).headers[RATE_LIMIT_POLICY] == standard, "errors of a known caller too"
    assert api.get("/v1/cards/4000000000006", tenant.pos).headers[RATE_LIMIT_POLICY] == standard
    assert RATE_LIMIT_POLICY not in api.get("/v1/whoami", tenant.pos[:-4] + "AAAA").headers
    assert RATE_LIMIT_POLICY not in api.get("/v1/health").headers
    changed = api.patch("/v1/agency/tenants/corner-shop", agency_key, {"plan": "premium"})
    assert changed.status_code == 200, changed.data
    assert api.get("/v1/whoami", basic).headers[RATE_LIMIT_POLICY] == "200;w=1;burst=400, 10000000;w=86400"


class _Frozen:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def frozen() -> _Frozen:
    return _Frozen()


def test_locally_remaining_counts_down_and_reset_says_when_a_token_is_back(
        api: Api, agency_key: str, frozen: _Frozen) -> None:
    basic = _plan_tenant(api, agency_key, "corner-shop", "basic")  # burst 20 at 10/s
    with rate_limits(RateLimiter(monotonic=frozen)):
        answers = [api.get("/v1/whoami", basic) for _ in range(21)]
        assert [a.headers.get("RateLimit-Remaining") for a in answers[:20]] == [str(n) for n in range(19, -1, -1)]
        assert {a.headers["RateLimit-Reset"] for a in answers[:19]} == {"0"}
        assert answers[19].headers["RateLimit-Reset"] == "1"  # the bucket is empty: one token in 0.1 s
        throttled = answers[20]
        assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
        assert (throttled.headers["RateLimit-Remaining"], throttled.headers["RateLimit-Reset"]) == ("0", "1")
        frozen.now += 0.5
        refilled = api.get("/v1/whoami", basic)
        assert refilled.status_code == 200 and refilled.headers["RateLimit-Remaining"] == "4"
        assert refilled.headers[RATE_LIMIT_POLICY] == "10;w=1;burst=20, 100000;w=86400"
        assert "RateLimit-Remaining" not in api.get("/v1/health").headers
    assert "RateLimit-Remaining" not in api.get("/v1/whoami", basic).headers, "the limiter is off again"


# --- a stable OpenAPI document ------------------------------------------------------------------

_PRINT_DOCUMENT = """
{pre}
import json, sys
import app
from chalicelib.api import openapi, registry
sys.stdout.write(json.dumps(openapi.build(registry.routes()), indent=1))
"""


def _document(pre: str, seed: str) -> bytes:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run([sys.executable, "-c", _PRINT_DOCUMENT.format(pre=pre)], cwd=ROOT, env=env,
                          capture_output=True, timeout=120, check=True)
    return done.stdout


def test_the_openapi_document_is_byte_for_byte_the_same_in_two_fresh_interpreters() -> None:
    # Importing the two Campaign modules first is an import order that swapped `Page_Campaign___1/2` before.
    one = _document("", "1")
    two = _document("import chalicelib.schemas.coupons, chalicelib.schemas.campaigns", "2")
    assert one == two
    document = json.loads(one)
    names = list(document["components"]["schemas"])
    assert [n for n in names if "___" in n or n.endswith(("__1", "__2"))] == []
    assert document["info"]["x-changelog"] == "docs/API_CHANGELOG.md"
    pages = {n: s["properties"]["items"]["items"]["$ref"].rsplit("/", 1)[-1] for n, s in
             document["components"]["schemas"].items() if n.endswith(("__campaigns__Campaign_", "__coupons__Campaign_"))}
    assert sorted(pages.values()) == ["chalicelib__schemas__campaigns__Campaign", "chalicelib__schemas__coupons__Campaign"]
    assert all(ref.split("__")[-2] in name for name, ref in pages.items())
