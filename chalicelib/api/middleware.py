"""HTTP middleware: request id, one access-log line and metrics per request, one error shape.

Errors raised before a route handler runs (405, 415 and Chalice's own
500) come back in Chalice's `{"Code", "Message"}` shape; they are rewritten
here into the API's error shape so clients parse one format.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from chalice import Chalice, Response
from chalice.app import Request as ChaliceRequest

from chalicelib.api.registry import request_id
from chalicelib.errors import gateway_error
from chalicelib.observability import logger, record_request_metrics


def _is_foreign_error(response: Response) -> bool:
    return response.status_code >= 400 and isinstance(response.body, dict) and "Code" in response.body


def install(app: Chalice) -> None:
    @app.middleware("http")
    def observe(event: ChaliceRequest, get_response: Callable[[ChaliceRequest], Response]) -> Response:
        started = time.perf_counter()
        rid = request_id(app)
        ctx: dict[str, Any] = (event.context or {}).get("authorizer") or {}
        owner = ctx.get("owner")
        tenant_id = owner if ctx.get("role") in ("tenant_admin", "pos", "support") else None
        route = f"{event.method} {event.context.get('resourcePath', event.path)}"
        logger.append_keys(request_id=rid, tenant_id=tenant_id, route=route, key_id=ctx.get("key_id"))
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
        latency_ms = (time.perf_counter() - started) * 1000
        logger.info("request", extra={"status": response.status_code, "latency_ms": round(latency_ms, 2),
                                      "method": event.method})
        record_request_metrics(tenant_id, route, response.status_code, latency_ms)
        logger.remove_keys(["request_id", "tenant_id", "route", "key_id"])
        return response
