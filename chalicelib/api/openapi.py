"""OpenAPI 3.1 document generated from the route table and the pydantic models."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from chalicelib.api.registry import RouteSpec
from chalicelib.schemas.common import ErrorResponse

API_VERSION = "1.0.0"
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
    500: "Internal error (logged with the request id).",
}


def _component_name(model: type[BaseModel]) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", model.__name__).strip("_")


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


def build(routes: list[RouteSpec], server_url: str | None = None) -> dict[str, Any]:
    models: set[type[BaseModel]] = {ErrorResponse}
    for spec in routes:
        models.update(m for m in (spec.body, spec.response) if m is not None)
    ordered = sorted(models, key=lambda m: m.__name__)
    keyed, defs = models_json_schema(
        [(m, "validation" if m is not ErrorResponse else "serialization") for m in ordered], ref_template=_REF
    )
    components = defs.get("$defs", {})

    def ref(model: type[BaseModel], mode: str) -> dict[str, Any]:
        return keyed[(model, mode)]

    paths: dict[str, dict[str, Any]] = {}
    for spec in routes:
        op: dict[str, Any] = {
            "operationId": spec.name,
            "summary": spec.summary,
            "tags": [spec.tag],
            "x-roles": sorted(r.value for r in spec.roles) if spec.roles else ["public"],
            "security": [] if spec.public else [{"apiKey": []}],
        }
        params = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in spec.path_params]
        if spec.query is not None:
            params += _query_parameters(spec.query)
        if params:
            op["parameters"] = params
        if spec.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(spec.body, "validation")}},
            }
        ok: dict[str, Any] = {"description": "Success"}
        if spec.response is not None:
            ok["content"] = {spec.content_type: {"schema": ref(spec.response, "validation")}}
        elif spec.content_type != "application/json":
            ok["content"] = {spec.content_type: {"schema": {"type": "string"}}}
        responses: dict[str, Any] = {str(spec.status): ok}
        codes = set(spec.errors) | {500}
        if spec.body is not None or spec.query is not None:
            codes |= {400}
        if spec.body is not None:
            codes |= {413, 415}
        if not spec.public:
            codes |= {401, 403}
        error_schema = {"application/json": {"schema": ref(ErrorResponse, "serialization")}}
        for code in sorted(codes):
            responses[str(code)] = {"description": ERROR_DESCRIPTIONS.get(code, "Error"), "content": error_schema}
        op["responses"] = responses
        paths.setdefault(spec.path, {})[spec.method.lower()] = op

    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Loyalty platform API",
            "version": API_VERSION,
            "description": "Multi-tenant loyalty programs: provisioning, keys, cards, purchases, campaigns. "
            "Send `Authorization: Bearer <key>`; each operation's `x-roles` lists the roles allowed. "
            'Every error has the shape `{"error": {"code", "message", "details", "request_id"}}`.',
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "An API key: lp_<role>_..."}
            },
        },
    }
    if server_url:
        document["servers"] = [{"url": server_url}]
    return document


DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Loyalty platform API</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><redoc spec-url="{spec_url}"></redoc>
<script src="https://cdn.redoc.ly/redoc/v2.1.5/bundles/redoc.standalone.js"></script>
<noscript>The machine-readable document is at <a href="{spec_url}">{spec_url}</a>.</noscript>
</body></html>"""
