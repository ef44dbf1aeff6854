"""The one error shape every failure uses, and the exceptions that produce it.

`{"error": {"code", "message", "details": [{"field", "issue"}], "request_id"}}`.
Services raise `ApiError` subclasses; the route layer and the HTTP middleware
turn them (and anything unexpected) into this body, so a client never sees a
stack trace or a framework-specific shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ErrorDetail:
    field: str
    issue: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "issue": self.issue}


@dataclass
class ApiError(Exception):
    status: int
    code: str
    message: str
    details: list[ErrorDetail] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


def validation_error(message: str, details: list[ErrorDetail] | None = None) -> ApiError:
    return ApiError(400, "validation_error", message, details or [])


def field_error(field_name: str, issue: str, status: int = 400, code: str = "validation_error") -> ApiError:
    return ApiError(status, code, issue, [ErrorDetail(field_name, issue)])


def unauthorized(message: str = "A valid API key is required.", code: str = "unauthorized") -> ApiError:
    return ApiError(401, code, message, headers={"WWW-Authenticate": 'Bearer realm="loyalty"'})


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} was not found.")


def card_busy(what: str = "The card") -> ApiError:
    """A write that kept losing the version race: the client re-sends after Retry-After (the key is not kept)."""
    return ApiError(409, "card_busy", f"{what} is being changed by other requests; retry shortly.",
                    headers={"Retry-After": "1"})


def conflict(code: str, message: str, field_name: str | None = None) -> ApiError:
    details = [ErrorDetail(field_name, message)] if field_name else []
    return ApiError(409, code, message, details)


UNAVAILABLE_CODES = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException",
                               "RequestLimitExceeded", "InternalServerError", "ServiceUnavailable"})
"""AWS error codes that mean "busy or briefly down": the SDK retried them and ran out of attempts."""


UNREACHABLE_ERRORS = frozenset({"ConnectionError", "HTTPClientError"})
"""botocore's bases of the errors raised when no answer came (EndpointConnectionError, ConnectTimeoutError,
ReadTimeoutError, ConnectionClosedError): the request may or may not have been applied."""


def _unreachable(exc: BaseException) -> bool:
    return any(cls.__module__ == "botocore.exceptions" and cls.__name__ in UNREACHABLE_ERRORS
               for cls in type(exc).__mro__)


def storage_unavailable(exc: BaseException) -> ApiError | None:
    """A 503 for an AWS call that was throttled, or got no answer, on every retry, else None.

    Duck-typed (botocore's `response` and class names, PynamoDB's
    `cause_response_code`, along `__cause__`) so this module imports no SDK.
    Every write is exactly-once by its ids or Idempotency-Key, so retrying
    after `Retry-After` is safe, also when the lost answer hid a write that
    landed (the retry gets the stored answer); a 500 would tell the till the
    opposite.
    """
    seen: BaseException | None = exc
    while seen is not None:
        code = getattr(seen, "cause_response_code", None)
        response = getattr(seen, "response", None)
        if code is None and isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
        if code in UNAVAILABLE_CODES:
            return ApiError(503, "storage_unavailable", "The database is busy; retry shortly (retrying with the "
                            "same ids is safe).", headers={"Retry-After": "1"})
        if _unreachable(seen):
            return ApiError(503, "storage_unavailable", "The database did not answer; retry shortly (retrying "
                            "with the same ids is safe: a write that landed is not applied twice).",
                            headers={"Retry-After": "1"})
        seen = seen.__cause__ or seen.__context__
    return None


def error_body(
    code: str,
    message: str,
    details: list[dict[str, str]] | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message, "details": details or []}
    if request_id:
        body["request_id"] = request_id
    return {"error": body}


def api_error_body(err: ApiError, request_id: str | None) -> dict[str, Any]:
    return error_body(err.code, err.message, [d.as_dict() for d in err.details], request_id)


# Chalice and the (local or real) API Gateway produce some errors before our
# code runs; these map their status codes to our codes so the middleware and
# the gateway responses in infra/ can reshape them.
GATEWAY_ERROR_CODES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The request could not be understood."),
    401: ("unauthorized", "A valid API key is required."),
    403: ("forbidden", "This key may not call this route."),
    404: ("not_found", "No such route."),
    405: ("method_not_allowed", "This method is not allowed on this route."),
    413: ("payload_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Send the body as application/json."),
    429: ("rate_limited", "Too many requests; retry later."),
    500: ("internal_error", "An internal error occurred; it has been logged."),
    502: ("bad_gateway", "The backend failed to respond."),
    504: ("timeout", "The backend did not respond in time."),
}


def gateway_error(status: int, request_id: str | None = None, message: str | None = None) -> dict[str, Any]:
    code, default_message = GATEWAY_ERROR_CODES.get(
        status, ("internal_error" if status >= 500 else "bad_request", "The request failed.")
    )
    return error_body(code, message or default_message, [], request_id)
