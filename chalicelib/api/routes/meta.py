"""Public routes: the API description and a health check."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from chalice import Response

from chalicelib.api.registry import PUBLIC, Request, Router, routes
from chalicelib.api.routes.common import lazy_module
from chalicelib.schemas.common import Output

openapi = lazy_module("chalicelib.api.openapi")

router = Router("Meta")


class Health(Output):
    status: str
    version: str


@lru_cache(maxsize=1)
def _document() -> dict[str, Any]:
    return openapi.build(routes())


@router.route("GET", "/v1/openapi.json", roles=PUBLIC, summary="This API's OpenAPI 3.1 document.")
def openapi_document(req: Request) -> dict[str, Any]:
    return _document()


@router.route("GET", "/v1/docs", roles=PUBLIC, content_type="text/html", summary="Human-readable API reference.")
def docs(req: Request) -> Response:
    return Response(body=openapi.DOCS_HTML.format(spec_url="openapi.json"), status_code=200,
                    headers={"Content-Type": "text/html; charset=utf-8"})


@router.route("GET", "/v1/health", roles=PUBLIC, response=Health, summary="Liveness check; touches no data.")
def health(req: Request) -> Health:
    return Health(status="ok", version=openapi.API_VERSION)
