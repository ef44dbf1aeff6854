"""The Chalice authorizer: authentication only, never a decision about routes.

It resolves the bearer key (or a signed-in person's session token) to a principal and hands it to the route layer in
the authorizer context; an unknown, revoked or malformed key is passed on as
`auth_error`, and the route layer answers 401 in the API's own error shape.
Role checks (403) and tenant scoping (404) happen per route in the registry,
which the test suite checks for every role x route pair. Results are not
cached (ttl 0), so a revoked key fails on the very next request.

A successful authentication also names the caller's usage key (API Gateway's
`usageIdentifierKey`): one per tenant, one per agency, so API Gateway throttles
each of them on its own usage-plan bucket (chalicelib/domain/rate_limits.py).
"""

from __future__ import annotations

from typing import Any

from chalice.app import AuthRequest, AuthResponse, AuthRoute

from chalicelib.domain.identity import session_authorization
from chalicelib.domain.keys import bearer_token
from chalicelib.domain.principal import Principal
from chalicelib.domain.rate_limits import ANONYMOUS, usage_key, usage_owner
from chalicelib.observability import logger
from chalicelib.services.tenancy.keys import AuthFailure, authenticate
from chalicelib.settings import settings

USAGE_IDENTIFIER_KEY = "usageIdentifierKey"


class UsageAuthResponse(AuthResponse):
    """Chalice's AuthResponse plus API Gateway's `usageIdentifierKey`, which Chalice's `to_dict` does not know."""

    def __init__(self, routes: list[str | AuthRoute], principal_id: str, context: dict[str, str] | None = None,
                 usage_identifier_key: str | None = None) -> None:
        super().__init__(routes=routes, principal_id=principal_id, context=context)
        self.usage_identifier_key = usage_identifier_key

    def to_dict(self, request: AuthRequest) -> dict[str, Any]:
        result = super().to_dict(request)
        if self.usage_identifier_key:
            result[USAGE_IDENTIFIER_KEY] = self.usage_identifier_key
        return result


def usage_identifier(principal: Principal) -> str:
    kind, owner_id = usage_owner(principal)
    return usage_key(settings.stage, kind, owner_id)


def anonymous_usage_identifier() -> str:
    """The one usage key of every failed authentication, in the lowest plan.

    With no usage key, API Gateway would refuse the request itself (every
    authenticated route requires one) and the caller would get its bare 403
    instead of our 401 `invalid_key` / 503 `auth_unavailable`. Sharing one key
    means a flood of bad keys only throttles other bad keys.
    """
    return usage_key(settings.stage, *ANONYMOUS)


def authenticate_header(header: str | None) -> tuple[Principal, dict[str, str]]:
    """The principal of an `Authorization` header: a bearer API key, or a signed-in person's session token.

    A session's context also carries the hash its cookie must match: the
    authorizer cannot see cookies, so the route layer checks that part.
    """
    session_token = session_authorization(header)
    if session_token is None:
        principal = authenticate(bearer_token(header))
        return principal, principal.to_context()
    from chalicelib.services.identity import sessions  # API keys (every till) never pay for this import

    principal, cookie_hash = sessions.authenticate(session_token)
    return principal, {**principal.to_context(), "cookie_hash": cookie_hash}


def authorize(auth_request: AuthRequest) -> AuthResponse:
    """Never denies: a failed authentication carries its reason in the context and the anonymous usage key."""
    try:
        principal, context = authenticate_header(auth_request.token)
    except AuthFailure as failure:
        return UsageAuthResponse(routes=["*"], principal_id="anonymous",
                                 context={"auth_error": failure.code, "auth_message": failure.message},
                                 usage_identifier_key=anonymous_usage_identifier())
    except Exception:
        logger.exception("authorizer failed")
        return UsageAuthResponse(routes=["*"], principal_id="anonymous",
                                 context={"auth_error": "auth_unavailable",
                                          "auth_message": "Authentication is temporarily unavailable; retry."},
                                 usage_identifier_key=anonymous_usage_identifier())
    return UsageAuthResponse(routes=["*"], principal_id=principal.user_id or principal.key_id, context=context,
                             usage_identifier_key=usage_identifier(principal))
