"""The Chalice authorizer: authentication only, never a decision about routes.

It resolves the bearer key to a principal and hands it to the route layer in
the authorizer context; an unknown, revoked or malformed key is passed on as
`auth_error`, and the route layer answers 401 in the API's own error shape.
Role checks (403) and tenant scoping (404) happen per route in the registry,
which the test suite checks for every role x route pair. Results are not
cached (ttl 0), so a revoked key fails on the very next request.
"""

from __future__ import annotations

from chalice.app import AuthRequest, AuthResponse

from chalicelib.domain.api_keys import bearer_token
from chalicelib.observability import logger
from chalicelib.services.api_keys import AuthFailure, authenticate


def authorize(auth_request: AuthRequest) -> AuthResponse:
    try:
        principal = authenticate(bearer_token(auth_request.token))
    except AuthFailure as failure:
        return AuthResponse(routes=["*"], principal_id="anonymous",
                            context={"auth_error": failure.code, "auth_message": failure.message})
    except Exception:
        logger.exception("authorizer failed")
        return AuthResponse(routes=["*"], principal_id="anonymous",
                            context={"auth_error": "auth_unavailable",
                                     "auth_message": "Authentication is temporarily unavailable; retry."})
    return AuthResponse(routes=["*"], principal_id=principal.key_id, context=principal.to_context())
