"""Make `chalice local` answer gateway-level errors the way the deployed API Gateway does.

Deployed, API Gateway itself answers some requests before any Lambda runs (no
Authorization header, authorizer deny, unknown route); the GatewayResponses in
`infra/resources.json` give those our error shape. Chalice's local gateway raises
`LocalGatewayException`s with AWS's raw bodies instead, so without this the local
stack and the tests would see a shape no deployed client ever gets.

It also emulates the usage plans (`install_rate_limits`): deployed, API Gateway
throttles each usage key the authorizer returns on its plan's rate, burst and
daily quota; locally `RateLimiter` does the same in memory, so a tenant over its
limit gets the same 429 with `Retry-After`. On in the local stack, off in tests
unless a test turns it on (functional tests make hundreds of quick calls).
With the limiter on, authenticated answers and 429s also carry
`RateLimit-Remaining` (whole requests left now: tokens, capped by the day's
quota) and `RateLimit-Reset` (seconds until one is available; 0: now), which
deployed API Gateway does not give the app.
"""

from __future__ import annotations

import functools
import json
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from chalice.local import LocalGateway, LocalGatewayAuthorizer, LocalGatewayException

from chalicelib import clock as rules_clock
from chalicelib.domain.principal import Principal
from chalicelib.domain.rate_limits import ANONYMOUS, TokenBucket, limits_for, seconds_to_next_utc_day, usage_owner
from chalicelib.errors import gateway_error

_MARK = "_loyalty_gateway_responses"
# What chalice local says for an unknown route (with and without an Authorization header);
# API Gateway's MISSING_AUTHENTICATION_TOKEN response, which infra/ turns into a 404.
_UNKNOWN_ROUTE_MARKERS = (b"Missing Authentication Token", b"Authorization header requires")


class GatewayResponseError(LocalGatewayException):
    """A LocalGatewayException whose status is chosen per instance (chalice reads `.CODE`)."""

    def __init__(self, status: int, headers: dict[str, Any], body: bytes) -> None:
        super().__init__(headers, body)
        self.CODE = status


def gateway_response(exc: LocalGatewayException) -> GatewayResponseError:
    """The response the deployed GatewayResponses give for the error chalice local raised."""
    status = exc.CODE
    raw = exc.body or b""
    if status == 403 and any(marker in raw for marker in _UNKNOWN_ROUTE_MARKERS):
        status = 404
    request_id = str(exc.headers.get("x-amzn-RequestId") or uuid.uuid4())
    headers: dict[str, Any] = {
        "Content-Type": "application/json",
        "X-Request-Id": request_id,
        "x-amzn-RequestId": request_id,
    }
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="loyalty"'
    body = json.dumps(gateway_error(status, request_id), separators=(",", ":")).encode()
    return GatewayResponseError(status, headers, body)


def install_gateway_responses() -> None:
    """Wrap `LocalGateway.handle_request` (and the local authorizer) once per process; calling again is a no-op."""
    _install_usage_plans()
    original = LocalGateway.handle_request
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def handle_request(self: LocalGateway, method: str, path: str, headers: Any, body: bytes | None) -> Any:
        _metered.headers = None
        try:
            response = original(self, method, path, headers, body)
            if _metered.headers and isinstance(response, dict):
                response["headers"] = {**(response.get("headers") or {}), **_metered.headers}
            return response
        except GatewayResponseError:
            raise
        except LocalGatewayException as exc:
            raise gateway_response(exc) from exc

    setattr(handle_request, _MARK, True)
    LocalGateway.handle_request = handle_request  # type: ignore[method-assign]


# --- request limits (usage plans) ---------------------------------------------------

USAGE_KEY = "usageIdentifierKey"
PLAN_TTL_SECONDS = 30.0
"""How long the limiter trusts a tenant's plan before reading it again (plan changes apply within this)."""


@dataclass
class _Usage:
    bucket: TokenBucket
    plan: str
    plan_read_at: float
    day: str = ""
    used_today: int = 0


@dataclass
class RateLimiter:
    """API Gateway's usage-plan throttle and daily quota, per usage key, in memory.

    `monotonic` drives the token buckets (tests inject a fake one); the quota's
    UTC day comes from the rules' clock. `plan_of(kind, owner)` names the plan;
    by default a tenant's from the cached directory read, the agency plan otherwise.
    """

    monotonic: Callable[[], float] = time.monotonic
    plan_of: Callable[[str, str], str] | None = None
    _usage: dict[str, _Usage] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _plan(self, kind: str, owner_id: str) -> str:
        if self.plan_of is not None:
            return self.plan_of(kind, owner_id)
        from chalicelib.services.program import catalog

        return catalog.usage_plan(kind, owner_id) or "basic"

    def check(self, key: str, kind: str, owner_id: str) -> int:
        """Count one request of `key`: 0 if allowed, else the Retry-After in whole seconds (at least 1)."""
        return self.meter(key, kind, owner_id)[0]

    def meter(self, key: str, kind: str, owner_id: str) -> tuple[int, int, int]:
        """`check`, plus what is left after it: (Retry-After or 0, RateLimit-Remaining, RateLimit-Reset)."""
        now = self.monotonic()
        with self._lock:
            usage = self._usage.get(key)
            stale = usage is None or now - usage.plan_read_at >= PLAN_TTL_SECONDS
        plan = self._plan(kind, owner_id) if stale else None  # outside the lock: it may read DynamoDB
        with self._lock:
            usage = self._usage.get(key)
            if plan is not None:
                usage = self._refresh(key, usage, plan, now)
            assert usage is not None  # entries are never dropped
            limits = limits_for(usage.plan)
            at = rules_clock.now()
            today = at.date().isoformat()
            if usage.day != today:
                usage.day, usage.used_today = today, 0
            if usage.used_today >= limits.quota_per_day:
                midnight = seconds_to_next_utc_day(at)
                return midnight, 0, midnight
            wait = usage.bucket.take(now)
            if wait > 0:
                retry_after = max(1, math.ceil(wait))
                return retry_after, 0, retry_after
            usage.used_today += 1
            tokens, left_today = usage.bucket.tokens, limits.quota_per_day - usage.used_today
            remaining = min(math.floor(tokens), left_today)
            if left_today <= 0:
                reset = seconds_to_next_utc_day(at)
            else:
                reset = 0 if tokens >= 1.0 else max(1, math.ceil((1.0 - tokens) / usage.bucket.rate_per_second))
            return 0, remaining, reset

    def _refresh(self, key: str, usage: _Usage | None, plan: str, now: float) -> _Usage:
        """A new plan gets a fresh bucket of its size; the day's count is kept (one quota per key and day)."""
        limits = limits_for(plan)
        if usage is None:
            usage = _Usage(TokenBucket(limits.rate_per_second, limits.burst), plan, now)
        elif plan != usage.plan:
            usage.bucket = TokenBucket(limits.rate_per_second, limits.burst)
        usage.plan, usage.plan_read_at = plan, now
        self._usage[key] = usage
        return usage


_limiter: RateLimiter | None = None
_metered = threading.local()
"""The current request's RateLimit-Remaining/Reset headers, from the authorizer step to the response."""


def install_rate_limits(enabled: bool, limiter: RateLimiter | None = None) -> RateLimiter | None:
    """Turn the usage-plan emulation on (with a fresh or the given limiter) or off; returns the active limiter."""
    global _limiter
    install_gateway_responses()
    _limiter = (limiter or RateLimiter()) if enabled else None
    return _limiter


@contextmanager
def rate_limits(limiter: RateLimiter | None = None) -> Iterator[RateLimiter]:
    """Request limits on for the block (tests), off again after."""
    active = install_rate_limits(True, limiter)
    assert active is not None
    try:
        yield active
    finally:
        install_rate_limits(False)


def throttled_response(retry_after: int, request_id: str) -> GatewayResponseError:
    """API Gateway's THROTTLED / QUOTA_EXCEEDED response as infra/ shapes it, with its Retry-After.

    Locally it also says `RateLimit-Remaining: 0` and `RateLimit-Reset` (the same seconds).
    """
    headers = {
        "Content-Type": "application/json",
        "X-Request-Id": request_id,
        "x-amzn-RequestId": request_id,
        "Retry-After": str(retry_after),
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": str(retry_after),
    }
    body = json.dumps(gateway_error(429, request_id), separators=(",", ":")).encode()
    return GatewayResponseError(429, headers, body)


def _install_usage_plans() -> None:
    """Record the authorizer's usage key as API Gateway does (`identity.apiKey`), then meter it."""
    original_update = LocalGatewayAuthorizer._update_lambda_event
    original_authorize = LocalGatewayAuthorizer.authorize
    if getattr(original_authorize, _MARK, False):
        return

    @functools.wraps(original_update)
    def update_lambda_event(self: LocalGatewayAuthorizer, lambda_event: Any, auth_result: Any) -> Any:
        lambda_event = original_update(self, lambda_event, auth_result)
        key = auth_result.get(USAGE_KEY) if isinstance(auth_result, dict) else None
        if key:
            lambda_event["requestContext"].setdefault("identity", {})["apiKey"] = key
        return lambda_event

    @functools.wraps(original_authorize)
    def authorize(self: LocalGatewayAuthorizer, raw_path: str, lambda_event: Any, lambda_context: Any) -> Any:
        lambda_event, lambda_context = original_authorize(self, raw_path, lambda_event, lambda_context)
        limiter = _limiter
        key = ((lambda_event.get("requestContext") or {}).get("identity") or {}).get("apiKey")
        if limiter is None or not key:
            return lambda_event, lambda_context
        principal = Principal.from_context(lambda_event["requestContext"].get("authorizer") or {})
        owner = usage_owner(principal) if principal is not None else ANONYMOUS
        retry_after, remaining, reset = limiter.meter(str(key), *owner)
        if retry_after:
            raise throttled_response(retry_after, str(lambda_context.aws_request_id))
        if principal is not None:
            _metered.headers = {"RateLimit-Remaining": str(remaining), "RateLimit-Reset": str(reset)}
        return lambda_event, lambda_context

    setattr(authorize, _MARK, True)
    LocalGatewayAuthorizer._update_lambda_event = update_lambda_event  # type: ignore[method-assign]
    LocalGatewayAuthorizer.authorize = authorize  # type: ignore[method-assign]
