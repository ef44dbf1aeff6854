"""Per-tenant request limits: the authorizer's usage key, the routes' API-key requirement, the local usage plans.

The limiter is off in the other functional tests; here `rate_limits(...)` turns
it on with a fake monotonic clock, and small limits are patched into the plans.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from chalice.app import AuthRequest

from chalicelib.domain import rate_limits as rules
from chalicelib.domain.rate_limits import Limits, usage_key
from infra.local.gateway import PLAN_TTL_SECONDS, RateLimiter, rate_limits
from tests.functional.conftest import Api, TenantKeys, make_agency, tenant_body


class FakeTime:
    """A monotonic clock the test moves by hand: refills without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


SMALL = {
    "basic": Limits(rate_per_second=2, burst=3, quota_per_day=1000),
    "standard": Limits(rate_per_second=5, burst=5, quota_per_day=1000),
    "premium": Limits(rate_per_second=10, burst=8, quota_per_day=1000),
    rules.AGENCY_PLAN: Limits(rate_per_second=2, burst=4, quota_per_day=1000),
}


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> dict[str, Limits]:
    for plan, limits in SMALL.items():
        monkeypatch.setitem(rules.PLAN_LIMITS, plan, limits)
    return SMALL


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def limited(fake_time: FakeTime, small_limits: dict[str, Limits]) -> Iterator[RateLimiter]:
    """The local usage plans on (request this fixture after the tenants it needs, so their setup is not counted)."""
    with rate_limits(RateLimiter(monotonic=fake_time)) as limiter:
        yield limiter


def tenant_on(api: Api, agency_key: str, tenant_id: str, plan: str) -> str:
    """A tenant on `plan`; returns its POS key."""
    r = api.post("/v1/agency/tenants", agency_key, tenant_body(tenant_id, plan=plan))
    assert r.status_code == 201, r.data
    return next(k["secret"] for k in r.data["keys"] if k["role"] == "pos")


def statuses(api: Api, key: str | None, count: int, path: str = "/v1/whoami") -> list[int]:
    return [api.get(path, key).status_code for _ in range(count)]


def assert_throttled(response: Any, retry_after: int) -> None:
    assert response.status_code == 429
    assert response.headers["Retry-After"] == str(retry_after)
    error = response.data["error"]
    assert error["code"] == "rate_limited" and error["details"] == []
    assert error["request_id"] == response.headers["X-Request-Id"]


@pytest.fixture
def basic_pos(api: Api, agency_key: str) -> str:
    return tenant_on(api, agency_key, "corner-shop", "basic")


def test_a_tenant_over_its_burst_gets_429_and_another_tenant_is_not_slowed(
        api: Api, basic_pos: str, other_tenant: TenantKeys, limited: RateLimiter, fake_time: FakeTime) -> None:
    assert statuses(api, basic_pos, 3) == [200, 200, 200]
    assert_throttled(api.get("/v1/whoami", basic_pos), retry_after=1)  # one token at 2/s: 0.5 s, rounded up
    assert statuses(api, other_tenant.pos, 5) == [200] * 5  # at the same moment: its own bucket
    assert statuses(api, other_tenant.admin, 1) == [429]  # one bucket per tenant, whatever the key
    fake_time.advance(0.5)
    assert statuses(api, basic_pos, 2) == [200, 429]
    fake_time.advance(10)
    assert statuses(api, basic_pos, 4) == [200, 200, 200, 429]  # refilled to the burst, not beyond


def test_all_keys_of_a_tenant_share_its_bucket(api: Api, tenant: TenantKeys, limited: RateLimiter) -> None:
    assert statuses(api, tenant.pos, 3) + statuses(api, tenant.admin, 2) == [200] * 5  # standard: burst 5
    assert statuses(api, tenant.support, 1) == [429]


def test_an_exhausted_daily_quota_says_retry_after_midnight_utc(
        api: Api, basic_pos: str, clock: Any, fake_time: FakeTime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(rules.PLAN_LIMITS, "basic", Limits(rate_per_second=100, burst=100, quota_per_day=4))
    with rate_limits(RateLimiter(monotonic=fake_time)):
        assert statuses(api, basic_pos, 4) == [200] * 4
        assert_throttled(api.get("/v1/whoami", basic_pos), retry_after=14 * 3600)  # frozen at 10:00 UTC
        fake_time.advance(3600)
        assert statuses(api, basic_pos, 1) == [429]  # the bucket is full; the day's quota is not
        clock.advance(hours=14)
        assert statuses(api, basic_pos, 4) == [200] * 4  # a new UTC day
        assert statuses(api, basic_pos, 1) == [429]


def test_a_premium_tenant_has_its_larger_burst(api: Api, agency_key: str, small_limits: dict[str, Limits],
                                               fake_time: FakeTime) -> None:
    premium_pos = tenant_on(api, agency_key, "big-store", "premium")
    with rate_limits(RateLimiter(monotonic=fake_time)):
        assert statuses(api, premium_pos, 9) == [200] * 8 + [429]


def test_a_plan_change_applies_once_the_cached_plan_expires(
        api: Api, agency_key: str, basic_pos: str, limited: RateLimiter, fake_time: FakeTime) -> None:
    assert statuses(api, basic_pos, 4) == [200, 200, 200, 429]
    r = api.patch("/v1/agency/tenants/corner-shop", agency_key, {"plan": "premium"})
    assert r.status_code == 200 and r.data["plan"] == "premium", r.data
    fake_time.advance(PLAN_TTL_SECONDS)
    assert statuses(api, basic_pos, 9) == [200] * 8 + [429]


def test_public_routes_and_failed_authentication_are_not_limited_by_tenant_plans(
        api: Api, basic_pos: str, limited: RateLimiter) -> None:
    assert statuses(api, None, 25, "/v1/health") == [200] * 25
    bad = basic_pos[:-4] + "AAAA"
    # Failed authentications share the anonymous key on the basic plan: our 401 until its burst is spent...
    assert statuses(api, bad, 5) == [401] * 3 + [429] * 2
    assert statuses(api, basic_pos, 4) == [200, 200, 200, 429]  # ...and the tenant's own bucket is untouched


def test_agency_keys_are_limited_per_agency(api: Api, platform_key: str, agency_key: str, basic_pos: str,
                                            limited: RateLimiter) -> None:
    rival = make_agency(api, platform_key, "rival-agency")  # the platform key has a bucket of its own
    assert statuses(api, agency_key, 5, "/v1/agency/tenants") == [200] * 4 + [429]
    assert statuses(api, rival, 4, "/v1/agency/tenants") == [200] * 4
    assert statuses(api, basic_pos, 3) == [200] * 3  # the agency's tenants are metered on their own keys


# --- the authorizer's usage key and the routes' API-key requirement ------------------

def _authorize(secret: str) -> dict[str, Any]:
    from chalicelib.api.auth import authorize

    request = AuthRequest("TOKEN", f"Bearer {secret}",
                          "arn:aws:execute-api:eu-central-1:123456789012:api/test/GET/v1/whoami")
    return authorize(request).to_dict(request)


def test_the_authorizer_names_the_tenant_or_agency_usage_key(api: Api, tenant: TenantKeys) -> None:
    for secret in (tenant.admin, tenant.pos, tenant.support):
        assert _authorize(secret)["usageIdentifierKey"] == usage_key("test", "tenant", tenant.tenant_id)
    assert _authorize(tenant.agency)["usageIdentifierKey"] == usage_key("test", "agency", tenant.agency_id)
    result = _authorize(tenant.pos[:-4] + "AAAA")
    assert result["usageIdentifierKey"] == usage_key("test", "anonymous", "anonymous")
    assert result["context"]["auth_error"] == "invalid_key"


def test_every_authenticated_route_requires_the_api_key_and_public_ones_do_not() -> None:
    from chalice.deploy.swagger import CFNSwaggerGenerator

    from app import app
    from chalicelib.api.registry import routes

    swagger = CFNSwaggerGenerator().generate_swagger(app)  # what `chalice package` puts in the template
    assert swagger["securityDefinitions"]["api_key"]["in"] == "header"
    # The authorizer keeps its own scheme: named `api_key`, it was overwritten by the key requirement's.
    assert swagger["securityDefinitions"]["key_authorizer"]["x-amazon-apigateway-authtype"] == "custom"
    public = 0
    for spec in routes():
        entry = app.routes[spec.path][spec.method]
        operation = swagger["paths"][spec.path][spec.method.lower()]
        security = [next(iter(s)) for s in operation.get("security", [])]
        assert entry.api_key_required is not spec.public, spec.path
        assert ("api_key" in security) is not spec.public, spec.path
        assert ("key_authorizer" in security) is not spec.public, spec.path
        public += spec.public
    assert 0 < public < len(routes())
