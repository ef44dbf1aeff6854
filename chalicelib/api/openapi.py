"""OpenAPI 3.1 document generated from the route table and the pydantic models."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import BaseModel
from pydantic.json_schema import (
    CoreModeRef,
    CoreRef,
    DefsRef,
    GenerateJsonSchema,
    JsonSchemaMode,
    JsonSchemaValue,
    models_json_schema,
)

from chalicelib.api.registry import RouteSpec
from chalicelib.domain.roles import Role
from chalicelib.schemas.common import ErrorResponse
from chalicelib.schemas.reports import Report

API_VERSION = "1.0.0"
CHANGELOG = "docs/API_CHANGELOG.md"
_REF = "#/components/schemas/{model}"

ERROR_DESCRIPTIONS = {
    400: "Invalid input (malformed JSON, wrong types, unknown fields).",
    401: "Missing, unknown, malformed or revoked API key.",
    403: "The key's role may not call this route.",
    404: "Not found (including another tenant's resource).",
    409: "Conflict with the current state.",
    413: "Body too large.",
    415: "Body is not application/json.",
    422: "Well-formed but refused by a business rule.",
    429: "Over the plan's request limit; retry after `Retry-After` seconds.",
    500: "Internal error (logged with the request id).",
    503: "Storage, authentication or a queue is busy or briefly unavailable; retry after `Retry-After` seconds "
         "(writes are exactly-once by their ids, so retrying is safe).",
}

# Success answers a route gives besides its declared status, with their model (None: the route's own).
# The route table declares one status per route; these are the others its handlers return, so a client
# (and the schema fuzzer, tests/e2e/test_schema_fuzz.py) finds every answer it can get documented.
OTHER_SUCCESS: dict[tuple[str, str], dict[int, type[BaseModel] | None]] = {
    ("POST", "/v1/cards"): {200: None},  # a pre-printed card registered to a customer
    ("POST", "/v1/pos/batches"): {200: None},  # the same upload again
    ("POST", "/v1/gift-cards"): {200: None},  # a retried sale_id
    ("POST", "/v1/gift-cards/{number}/top-ups"): {200: None},  # a retried topup_id
    ("POST", "/v1/card-series"): {202: None},  # a series too large to create at once
    ("POST", "/v1/agency/tenants/{tenant_id}/card-series"): {202: None},
    ("POST", "/v1/coupon-campaigns"): {202: None},  # unique codes, generated in the background
    ("POST", "/v1/programs/{program_id}/simulate"): {202: Report},  # a period too large: a report to poll
    ("POST", "/v1/agency/tenants/{tenant_id}/programs/{program_id}/simulate"): {202: Report},
}


def _full_name(tp: Any) -> str:
    """`module.Qualname[args...]` with every generic argument named by its module too: unique and stable."""
    meta = getattr(tp, "__pydantic_generic_metadata__", None) or {}
    origin, args = meta.get("origin"), meta.get("args") or ()
    if origin is not None:
        return f"{_full_name(origin)}[{','.join(_full_name(a) for a in args)}]"
    return f"{getattr(tp, '__module__', '')}.{getattr(tp, '__qualname__', repr(tp))}"


_ARG = re.compile(r"(?<=[\[,])([^.\[\],:]+):(\d+)")


class _StableNames(GenerateJsonSchema):
    """Component names that do not depend on the order models are met in.

    Pydantic names a parametrised generic by its arguments' bare class names
    (`Page[Campaign]`), so `Page[campaigns.Campaign]` and `Page[coupons.Campaign]`
    collide and were told apart by a `__1`/`__2` suffix in encounter order,
    which changed between processes. Here every generic argument is qualified
    by its module (known from the types met so far and the route models), so
    no two schemas collide and no suffix is needed.
    """

    known: ClassVar[dict[int, str]] = {}

    def get_defs_ref(self, core_mode_ref: CoreModeRef) -> DefsRef:
        core_ref, mode = core_mode_ref
        for part in re.split(r"[\][,]", core_ref):
            name, _, ident = part.rpartition(":")
            if "." in name and ident.isdigit():
                self.known.setdefault(int(ident), name)
        qualified = _ARG.sub(lambda m: f"{self.known.get(int(m.group(2)), m.group(1))}:{m.group(2)}", core_ref)
        return super().get_defs_ref((CoreRef(qualified), mode))


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        prop = {k: v for k, v in prop.items() if k != "title"}
        description = prop.pop("description", None)
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if description:
            param["description"] = description
        params.append(param)
    return params


Refs = dict[tuple[Any, JsonSchemaMode], JsonSchemaValue]
"""Each model's `$ref` by (model, mode), as models_json_schema keys them."""


def build(routes: list[RouteSpec], server_url: str | None = None) -> dict[str, Any]:
    """The whole document: every model's schema once under components, then one operation per route."""
    refs, components = _schemas(_models(routes))
    paths: dict[str, dict[str, Any]] = {}
    for spec in routes:
        paths.setdefault(spec.path, {})[spec.method.lower()] = _operation(spec, refs)
    return _document(paths, components, server_url)


def _models(routes: list[RouteSpec]) -> list[type[BaseModel]]:
    """Every model a route takes or answers with (the error model too), in a stable order."""
    models: set[type[BaseModel]] = {ErrorResponse}
    for spec in routes:
        models.update(m for m in (spec.body, spec.response) if m is not None)
        models.update(m for m in OTHER_SUCCESS.get((spec.method, spec.path), {}).values() if m is not None)
    return sorted(models, key=_full_name)


def _schemas(ordered: list[type[BaseModel]]) -> tuple[Refs, dict[str, Any]]:
    """(each model's ref, the component schemas), named by _StableNames with the generic arguments known."""
    known = {id(arg): _full_name(arg) for m in ordered
             for arg in (getattr(m, "__pydantic_generic_metadata__", None) or {}).get("args") or ()}
    generator = type("_Names", (_StableNames,), {"known": known})
    keyed, defs = models_json_schema(
        [(m, "validation" if m is not ErrorResponse else "serialization") for m in ordered], ref_template=_REF,
        schema_generator=generator,
    )
    components: dict[str, Any] = defs.get("$defs", {})
    return keyed, components


def _security(spec: RouteSpec) -> list[dict[str, list[str]]]:
    """A key or a signed-in person's session (its token header and its cookie together); sessions only where so."""
    session: dict[str, list[str]] = {"sessionToken": [], "sessionCookie": []}
    if spec.public:
        return []
    if spec.sessions_only:
        return [session]
    if set(spec.roles) & {Role.PLATFORM, Role.AGENCY, Role.TENANT_ADMIN, Role.SUPPORT}:
        return [{"apiKey": []}, session]
    return [{"apiKey": []}]


def _operation(spec: RouteSpec, refs: Refs) -> dict[str, Any]:
    """One route's operation: who may call it, what it takes, and every answer it can give."""
    op: dict[str, Any] = {
        "operationId": spec.name,
        "summary": spec.summary,
        "tags": [spec.tag],
        "x-roles": sorted(r.value for r in spec.roles) if spec.roles else ["public"],
        "security": _security(spec),
    }
    params = _parameters(spec)
    if params:
        op["parameters"] = params
    if spec.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(spec.body, "validation")]}},
        }
    op["responses"] = {**_success_responses(spec, refs), **_error_responses(spec, refs)}
    return op


def _parameters(spec: RouteSpec) -> list[dict[str, Any]]:
    """The path parameters (all strings), then the query model's fields."""
    params = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in spec.path_params]
    if spec.query is not None:
        params += _query_parameters(spec.query)
    return params


def _success_responses(spec: RouteSpec, refs: Refs) -> dict[str, Any]:
    """The declared status first, then the other successes the route's handler gives (OTHER_SUCCESS)."""
    ok: dict[str, Any] = {"description": "Success"}
    if spec.response is not None:
        ok["content"] = {spec.content_type: {"schema": refs[(spec.response, "validation")]}}
    elif spec.content_type != "application/json":
        ok["content"] = {spec.content_type: {"schema": {"type": "string"}}}
    responses: dict[str, Any] = {str(spec.status): ok}
    for status, model in sorted(OTHER_SUCCESS.get((spec.method, spec.path), {}).items()):
        other = model or spec.response
        responses[str(status)] = {"description": "Success", "content": {
            spec.content_type: {"schema": refs[(other, "validation")]}}} if other is not None else ok
    return responses


def _error_codes(spec: RouteSpec) -> set[int]:
    """The route's declared errors and those every route of its kind can give (input, body, authentication)."""
    codes = set(spec.errors) | {500, 503}
    if spec.body is not None or spec.query is not None:
        codes |= {400}
    if spec.body is not None:
        codes |= {413, 415}
    if not spec.public:
        codes |= {401, 403, 429}
    return codes


def _error_responses(spec: RouteSpec, refs: Refs) -> dict[str, Any]:
    error_schema = {"application/json": {"schema": refs[(ErrorResponse, "serialization")]}}
    return {str(code): {"description": ERROR_DESCRIPTIONS.get(code, "Error"), "content": error_schema}
            for code in sorted(_error_codes(spec))}


def _document(paths: dict[str, Any], components: dict[str, Any], server_url: str | None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Loyalty platform API",
            "version": API_VERSION,
            "description": "Multi-tenant loyalty programs: provisioning, keys, cards, purchases, campaigns. "
            "Send `Authorization: Bearer <key>`, or as a signed-in person `Authorization: Session <token>` with the "
            "session cookie; each operation's `x-roles` lists the roles allowed. "
            'Every error has the shape `{"error": {"code", "message", "details", "request_id"}}`. '
            "Authenticated answers carry `RateLimit-Policy` (the caller's plan). Within `/v1` changes are additive "
            f"only; their history and the version policy are in `{CHANGELOG}`.",
            "x-changelog": CHANGELOG,
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "An API key: lp_<role>_..."},
                "sessionToken": {"type": "apiKey", "in": "header", "name": "Authorization",
                                 "description": "A signed-in person's CSRF token as `Session <token>` (from the "
                                                "sign-in answer); valid only with the session cookie."},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "__Host-lp_session",
                                  "description": "The HttpOnly session cookie set by sign-in."},
            },
        },
    }
    if server_url:
        document["servers"] = [{"url": server_url}]
    return document
