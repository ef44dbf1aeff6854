"""HTTP middleware: request id, one access-log line and metrics per request, one error shape, the plan's limits.

Errors raised before a route handler runs (405, 415 and Chalice's own
500) come back in Chalice's `{"Code", "Message"}` shape; they are rewritten
here into the API's error shape so clients parse one format.

Every authenticated answer (errors included) carries `RateLimit-Policy`
(IETF draft "RateLimit header fields for HTTP"): the caller's plan as
`<rate>;w=1;burst=<burst>, <quota>;w=86400`. The app can state the policy but
not the tokens left: deployed, only API Gateway knows those, so
`RateLimit-Remaining`/`RateLimit-Reset` come from the gateway where it gives
them (the local emulation in infra/local/gateway.py does).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from chalice.app import Chalice, Response
from chalice.app import Request as ChaliceRequest

from chalicelib.api.registry import request_id
from chalicelib.domain.principal import Principal
from chalicelib.domain.rate_limits import Limits, limits_for, usage_owner
from chalicelib.errors import gateway_error
from chalicelib.observability import logger, record_request_metrics

RATE_LIMIT_POLICY = "RateLimit-Policy"


def policy_header(limits: Limits) -> str:
    """The plan as a `RateLimit-Policy` value: the steady rate per 1 s window with its burst, and the daily quota."""
    return f"{limits.rate_per_second};w=1;burst={limits.burst}, {limits.quota_per_day};w=86400"


def caller_plan(ctx: dict[str, Any]) -> str | None:
    """The plan that meters the authenticated caller: its tenant's (cached read), else the agency plan.

    None for an unauthenticated request. The tenant comes from the catalog's
    cache (one directory read per tenant per `catalog.TTL` in a warm process),
    so the header adds no DynamoDB call to a warm request.
    """
    if ctx.get("auth_error"):
        return None
    principal = Principal.from_context(ctx)
    if principal is None:
        return None
    from chalicelib.services.program import catalog

    return catalog.usage_plan(*usage_owner(principal))


def _is_foreign_error(response: Response) -> bool:
    return response.status_code >= 400 and isinstance(response.body, dict) and "Code" in response.body


def _add_policy(response: Response, ctx: dict[str, Any]) -> None:
    """Best effort: a directory outage must not turn an answer the route already gave into a 500."""
    try:
        plan = caller_plan(ctx)
    except Exception:
        logger.exception("plan not read for RateLimit-Policy")
        return
    if plan is not None:
        response.headers[RATE_LIMIT_POLICY] = policy_header(limits_for(plan))


def install(app: Chalice) -> None:
    @app.middleware("http")
    def observe(event: ChaliceRequest, get_response: Callable[[ChaliceRequest], Response]) -> Response:
        started = time.perf_counter()
        rid = request_id(app)
        ctx: dict[str, Any] = (event.context or {}).get("authorizer") or {}
        owner = ctx.get("owner")
        tenant_id = owner if ctx.get("role") in ("tenant_admin", "pos", "support") else None
        route = f"{event.method} {event.context.get('resourcePath', event.path)}"
        logger.append_keys(request_id=rid, tenant_id=tenant_id, route=route, key_id=ctx.get("key_id"),
                           user_id=ctx.get("user_id"))
        try:
            response = get_response(event)
        except Exception:
            logger.exception("unhandled error outside a route")
            response = Response(body=gateway_error(500, rid), status_code=500)
        if _is_foreign_error(response):
            message = str(response.body.get("Message") or "") or None
            response = Response(body=gateway_error(response.status_code, rid, message),
                                status_code=response.status_code, headers=response.headers)
            response.headers["Content-Type"] = "application/json"
        response.headers.setdefault("X-Request-Id", rid)
        _add_policy(response, ctx)
        latency_ms = (time.perf_counter() - started) * 1000
        logger.info("request", extra={"status": response.status_code, "latency_ms": round(latency_ms, 2),
                                      "method": event.method})
        record_request_metrics(tenant_id, route, response.status_code, latency_ms)
        logger.remove_keys(["request_id", "tenant_id", "route", "key_id", "user_id"])
        return response
