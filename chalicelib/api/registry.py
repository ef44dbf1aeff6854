"""The route table. Every route is declared here with its roles and models.

`Router.route` records a `RouteSpec` (the source for the OpenAPI document and
the role x route test matrix) and wraps the handler so that, before it runs,
the caller is authenticated and authorised and the body and query string are
parsed with pydantic. `register(app, authorizer)` adds every declared route to
the Chalice app; a route added any other way has no declaration and fails the
suite.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalice.app import Chalice, Response
from pydantic import BaseModel, ValidationError

from chalicelib.domain.customers import reference_only
from chalicelib.domain.grammar import article
from chalicelib.domain.identity import person_actor
from chalicelib.domain.principal import Principal
from chalicelib.domain.roles import Role
from chalicelib.errors import (
    ApiError,
    ErrorDetail,
    api_error_body,
    forbidden,
    storage_unavailable,
    unauthorized,
    validation_error,
)
from chalicelib.observability import logger
from chalicelib.services.pos import idempotency
from chalicelib.services.tenancy.scopes import own_scope
from chalicelib.settings import settings

PUBLIC: frozenset[Role] = frozenset()
MAX_PATH_PARAM_BYTES = 256
"""Every id is far shorter; a longer one cannot exist, and DynamoDB refuses keys over 2048 (sort keys 1024) bytes."""


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    roles: frozenset[Role]
    """Roles allowed to call; empty for public routes (no authorizer)."""
    summary: str
    tag: str
    status: int = 200
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    content_type: str = "application/json"
    errors: tuple[int, ...] = ()
    name: str = ""
    accepts: tuple[str, ...] = ("application/json",)
    """Request content types API Gateway lets through (a form post for RFC 8058 one-click unsubscribe)."""
    browser: bool = False
    """A public route a browser calls to sign in (sets the session cookie): a foreign Origin is refused."""
    sessions_only: bool = False
    """Only a signed-in person may call it (their own session, sign-out): an API key gets 403 session_required."""
    max_body_bytes: int | None = None
    """A larger body limit than MAX_BODY_BYTES for this route (an image upload); None: the setting."""
    personal: Callable[[Principal, Any], Any] | None = None
    """For answers that carry personal data: re-reads the answer from a kept reference on a replay.

    The idempotency record then keeps only `{"customer_id"}` (see
    domain.customers.reference_only), so erasure leaves no copy of personal
    fields behind in it, and a replay shows the customer as they are now.
    """

    @property
    def public(self) -> bool:
        return not self.roles

    @property
    def path_params(self) -> list[str]:
        return [part[1:-1] for part in self.path.split("/") if part.startswith("{")]


@dataclass
class Request:
    """What a handler gets: the caller, the parsed input, and the request id."""

    principal: Principal | None
    path: dict[str, str]
    body: Any
    query: Any
    request_id: str
    headers: dict[str, str] = field(default_factory=dict)
    source_ip: str = "-"
    """The client's address as API Gateway saw it (rate limits on public routes)."""

    @property
    def caller(self) -> Principal:
        assert self.principal is not None, "public routes have no caller"
        return self.principal

    @property
    def actor(self) -> str:
        """How the audit trail names the caller: the person (id and e-mail) or the key."""
        if self.principal is None:
            return "anonymous"
        if self.principal.user_id is not None:
            return person_actor(self.principal.user_id, self.principal.email or "")
        return f"{self.caller.role.value}:{self.caller.key_id}"


Handler = Callable[[Request], Any]


@dataclass
class _Entry:
    spec: RouteSpec
    view: Callable[..., Response]


_ENTRIES: list[_Entry] = []


def routes() -> list[RouteSpec]:
    return [e.spec for e in _ENTRIES]


def _loc(loc: tuple[Any, ...], prefix: str = "") -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def _pydantic_details(err: ValidationError, prefix: str = "") -> list[ErrorDetail]:
    details = []
    for item in err.errors(include_url=False):
        loc = tuple(p for p in item["loc"] if p not in ("function-after", "function-before"))
        details.append(ErrorDetail(_loc(loc, prefix), item["msg"]))
    return details


def _not_json_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON value")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A repeated key would let a proxy and this API read different values from one body."""
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise ValueError(f"duplicate key {name[:50]!r}")
        out[name] = value
    return out


def _malformed(issue: str) -> ApiError:
    return ApiError(400, "malformed_json", "The body is not valid UTF-8 JSON.", [ErrorDetail("body", issue[:200])])


def parse_body(model: type[BaseModel], raw: bytes | None, limit: int | None = None) -> BaseModel:
    if raw is None or not raw.strip():
        raw = b"{}"
    limit = limit or settings.max_body_bytes
    if len(raw) > limit:
        raise ApiError(413, "payload_too_large", f"The body exceeds {limit} bytes.")
    try:
        text = raw.decode("utf-8")
        json.loads(text, parse_constant=_not_json_constant, object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _malformed(str(exc)) from None
    except RecursionError:
        raise _malformed("nested too deeply") from None
    try:
        return model.model_validate_json(text)
    except ValidationError as err:
        invalid = [e["msg"] for e in err.errors(include_url=False) if e["type"] == "json_invalid"]
        if invalid:
            raise _malformed(invalid[0]) from None
        raise validation_error("The request body is invalid.", _pydantic_details(err)) from None


def parse_query(model: type[BaseModel], params: dict[str, str] | None) -> BaseModel:
    try:
        return model.model_validate(params or {})
    except ValidationError as err:
        raise validation_error("The query string is invalid.", _pydantic_details(err)) from None


class Router:
    """Collects routes for one area of the API (a module under chalicelib/api/routes)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def route(
        self,
        method: str,
        path: str,
        *,
        roles: frozenset[Role] | set[Role],
        summary: str,
        status: int = 200,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        content_type: str = "application/json",
        errors: tuple[int, ...] = (),
        personal: Callable[[Principal, Any], Any] | None = None,
        accepts: tuple[str, ...] = ("application/json",),
        browser: bool = False,
        sessions_only: bool = False,
        max_body_bytes: int | None = None,
    ) -> Callable[[Handler], Handler]:
        def decorator(handler: Handler) -> Handler:
            spec = RouteSpec(
                method=method.upper(), path=path, roles=frozenset(roles), summary=summary, tag=self.tag,
                status=status, body=body, query=query, response=response, content_type=content_type,
                errors=errors, name=f"{self.tag.lower().replace(' ', '_')}_{handler.__name__}", personal=personal,
                accepts=accepts, browser=browser, sessions_only=sessions_only, max_body_bytes=max_body_bytes,
            )
            _ENTRIES.append(_Entry(spec, _make_view(spec, handler)))
            return handler

        return decorator


# Filled in by register(): the app whose current_request the views read.
_app: Chalice | None = None


def current_principal(app: Chalice) -> tuple[Principal | None, ApiError | None]:
    """The authorizer's verdict, as passed through the request context."""
    request = app.current_request
    ctx = ((request.context if request is not None else None) or {}).get("authorizer") or {}
    if ctx.get("auth_error") == "auth_unavailable":
        return None, ApiError(503, "auth_unavailable", str(ctx.get("auth_message")), headers={"Retry-After": "1"})
    if ctx.get("auth_error"):
        return None, unauthorized(str(ctx.get("auth_message") or "The API key is not valid."), str(ctx["auth_error"]))
    principal = Principal.from_context(ctx)
    if principal is None:
        return None, unauthorized()
    return principal, None


def request_id(app: Chalice) -> str:
    request = app.current_request
    rid = (request.context or {}).get("requestId") if request is not None else None
    if not rid and app.lambda_context is not None:
        rid = getattr(app.lambda_context, "aws_request_id", None)
    return str(rid or "-")


def _authorise(spec: RouteSpec) -> Principal | None:
    assert _app is not None
    if spec.public:
        if spec.browser:
            _check_origin()
        return None
    principal, auth_error = current_principal(_app)
    if auth_error is not None:
        raise auth_error
    assert principal is not None
    if principal.is_person:
        _check_session_cookie(principal)
        if spec.method not in ("GET", "HEAD"):
            _check_origin()
    if principal.role not in spec.roles:
        allowed = ", ".join(sorted(r.value for r in spec.roles))
        who = (f"A person acting as {principal.role.value}" if principal.is_person
               else f"{article(principal.role.value, capital=True)} key")
        raise forbidden(f"{who} may not call {spec.method} {spec.path} (allowed: {allowed}).")
    if spec.sessions_only and not principal.is_person:
        raise ApiError(403, "session_required", "Only a signed-in person has a session; an API key has none.")
    return principal


def _check_session_cookie(principal: Principal) -> None:
    """A session's CSRF token (the authorizer checked it) is only good with the cookie of the same session."""
    from chalicelib.services.identity import sessions  # only signed-in people pay for the import

    assert _app is not None and _app.current_request is not None
    request = _app.current_request
    ctx = (request.context or {}).get("authorizer") or {}
    if not sessions.cookie_matches(request.headers.get("cookie"), principal, str(ctx.get("cookie_hash") or "")):
        raise unauthorized("The session cookie is missing or belongs to another session; sign in again.",
                           "invalid_session")


def _check_origin() -> None:
    """Refuse a browser request sent from another site (a signed-in person's state-changing calls, sign-in)."""
    from chalicelib.services.identity.sessions import foreign_origin  # only browser routes pay for the import

    assert _app is not None and _app.current_request is not None
    origin = foreign_origin(_app.current_request.headers, settings.stage, settings.console_origins)
    if origin is not None:
        raise ApiError(403, "cross_site_request", "This request came from another site and was refused.",
                       [ErrorDetail("Origin", origin[:100])])


def _json_response(status: int, body: Any, headers: dict[str, str], rid: str, content_type: str) -> Response:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = {"error": {**body["error"], "request_id": rid}}
    return Response(body=body, status_code=status,
                    headers={"Content-Type": content_type, **headers, "X-Request-Id": rid})


def _make_view(spec: RouteSpec, handler: Handler) -> Callable[..., Response]:
    @functools.wraps(handler)
    def view(**path_params: str) -> Response:
        assert _app is not None
        rid = request_id(_app)
        try:
            principal = _authorise(spec)
            req = _app.current_request
            assert req is not None, "a view runs inside a request"

            def execute() -> tuple[int, Any, dict[str, Any]]:
                """The route's answer as (status, body, headers); business errors are answers too."""
                try:
                    too_long = [k for k, v in path_params.items() if len(v.encode()) > MAX_PATH_PARAM_BYTES]
                    if too_long:
                        raise ApiError(404, "not_found", "No resource has an id this long.",
                                       [ErrorDetail(k, f"longer than {MAX_PATH_PARAM_BYTES} bytes") for k in too_long])
                    if spec.query is None and req.query_params:
                        raise validation_error("This route takes no query parameters.",
                                               [ErrorDetail(k, "unknown parameter") for k in req.query_params])
                    query = parse_query(spec.query, dict(req.query_params or {})) if spec.query else None
                    body = parse_body(spec.body, _raw(req.raw_body), spec.max_body_bytes) if spec.body else None
                    identity = (req.context or {}).get("identity") or {}
                    result = handler(Request(principal, dict(path_params), body, query, rid, dict(req.headers),
                                             str(identity.get("sourceIp") or "-")))
                    response = _to_response(spec, result, rid)
                    # A handler's own Response may set its type (an image of the asset library); else the spec's.
                    own_type = isinstance(result, Response)
                    extra = {k: v for k, v in response.headers.items()
                             if k != "X-Request-Id" and (k != "Content-Type" or own_type)}
                    return response.status_code, response.body, extra
                except ApiError as err:
                    return err.status, api_error_body(err, None), dict(err.headers)

            key = req.headers.get("idempotency-key") if spec.method == "POST" and principal else None
            if key is None or principal is None:
                status, body, headers = execute()
            else:
                print_ = idempotency.fingerprint(spec.method, req.path, _raw(req.raw_body))
                stored, replayed = idempotency.run(own_scope(principal).partition, f"{spec.method} {spec.path}", key,
                                                   print_, execute, keep=reference_only if spec.personal else None)
                status, body, headers = stored.status, stored.body, dict(stored.headers)
                if replayed:
                    headers["Idempotent-Replayed"] = "true"
                    if spec.personal is not None and status < 400:
                        body = _to_response(spec, spec.personal(principal, body), rid).body
            content_type = spec.content_type if status < 400 else "application/json"
            if spec.browser or (principal is not None and principal.is_person):
                headers.setdefault("Cache-Control", "no-store")  # a person's data stays out of shared caches
            return _json_response(status, body, headers, rid, content_type)
        except ApiError as err:
            return _json_response(err.status, api_error_body(err, rid), dict(err.headers), rid, "application/json")
        except Exception as exc:
            busy = storage_unavailable(exc)
            if busy is not None:
                logger.warning("storage unavailable", extra={"route": f"{spec.method} {spec.path}"})
                return _json_response(503, api_error_body(busy, rid), dict(busy.headers), rid, "application/json")
            logger.exception("unhandled error", extra={"route": f"{spec.method} {spec.path}"})
            internal = ApiError(500, "internal_error", "An internal error occurred; it has been logged.")
            return _json_response(500, api_error_body(internal, rid), {}, rid, "application/json")

    return view


def _raw(body: str | bytes | None) -> bytes | None:
    """The request body as bytes (Chalice gives bytes, or text in some local paths)."""
    return body.encode() if isinstance(body, str) else body


def _to_response(spec: RouteSpec, result: Any, rid: str) -> Response:
    if isinstance(result, Response):
        result.headers.setdefault("X-Request-Id", rid)
        return result
    status, headers = spec.status, dict[str, str]()
    if isinstance(result, tuple):
        status, result, *extra = result
        headers = extra[0] if extra else {}
    if isinstance(result, BaseModel):
        payload: Any = result.model_dump(mode="json")
    else:
        payload = result
    return Response(body=payload, status_code=status,
                    headers={"Content-Type": spec.content_type, "X-Request-Id": rid, **headers})


def register(app: Chalice, authorizer: Any) -> None:
    """Add every declared route to the app, with the authorizer unless public."""
    global _app
    _app = app
    seen: set[tuple[str, str]] = set()
    for entry in _ENTRIES:
        spec = entry.spec
        key = (spec.method, spec.path)
        if key in seen:
            raise RuntimeError(f"route declared twice: {spec.method} {spec.path}")
        seen.add(key)
        kwargs: dict[str, Any] = {"methods": [spec.method], "name": spec.name, "content_types": list(spec.accepts)}
        if not spec.public:
            # Deployed, API Gateway meters the usage key the authorizer returns (per-tenant usage plans).
            kwargs.update(authorizer=authorizer, api_key_required=True)
        app.route(spec.path, **kwargs)(entry.view)
