"""Make `chalice local` answer gateway-level errors the way the deployed API Gateway does.

Deployed, API Gateway itself answers some requests before any Lambda runs (no
Authorization header, authorizer deny, unknown route); the GatewayResponses in
`infra/resources.json` give those our error shape. Chalice's local gateway raises
`LocalGatewayException`s with AWS's raw bodies instead, so without this the local
stack and the tests would see a shape no deployed client ever gets.
"""

from __future__ import annotations

import functools
import json
import uuid
from typing import Any

from chalice.local import LocalGateway, LocalGatewayException

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
    """Wrap `LocalGateway.handle_request` once per process; calling again is a no-op."""
    original = LocalGateway.handle_request
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def handle_request(self: LocalGateway, method: str, path: str, headers: Any, body: bytes | None) -> Any:
        try:
            return original(self, method, path, headers, body)
        except GatewayResponseError:
            raise
        except LocalGatewayException as exc:
            raise gateway_response(exc) from exc

    setattr(handle_request, _MARK, True)
    LocalGateway.handle_request = handle_request  # type: ignore[method-assign]
