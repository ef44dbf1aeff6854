"""Public routes: the API description, its human-readable reference, and a health check.

The reference page renders with Redoc served by this API itself (files under
chalicelib/api/static/), so it works offline and on a locked-down network, and
the page can carry a strict Content-Security-Policy: same-origin scripts only.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from chalice.app import Response

from chalicelib.api.registry import PUBLIC, Handler, Request, Router, routes
from chalicelib.api.routes.common import lazy_module
from chalicelib.schemas.common import Output

openapi = lazy_module("chalicelib.api.openapi")

router = Router("Meta")

STATIC = Path(__file__).resolve().parents[1] / "static"
"""The vendored renderer and its initializer (deployed: only app.py, chalicelib/ and requirements.txt ship)."""

REDOC_VERSION = "2.5.4"
"""The vendored Redoc release (chalicelib/api/static/README.md says how to upgrade it)."""

INITIALIZER_FINGERPRINT = "5bfb89f4ccfe"
"""The first 12 hex digits of api-docs.js's SHA-256: a new file gets a new URL, so a year's caching is safe."""

JS = "text/javascript; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Asset:
    """One file of the reference page: the URL names the release or the content, never changes meaning."""

    name: str
    """Under /v1/docs/assets/."""
    file: str
    """Under chalicelib/api/static/."""
    content_type: str

    @property
    def path(self) -> str:
        return f"/v1/docs/assets/{self.name}"


RENDERER = Asset(f"redoc-{REDOC_VERSION}/redoc.standalone.js", "redoc.standalone.js", JS)
INITIALIZER = Asset(f"api-docs.{INITIALIZER_FINGERPRINT}.js", "api-docs.js", JS)
ASSETS: tuple[Asset, ...] = (
    RENDERER,
    # The bundle's first line points to this file, next to it, for the licences of what it bundles.
    Asset(f"redoc-{REDOC_VERSION}/redoc.standalone.js.LICENSE.txt", "redoc.standalone.js.LICENSE.txt", TEXT),
    INITIALIZER,
)
"""The allow-list: one route per file, so no request can name any other file."""

DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Loyalty platform API</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main id="redoc" data-spec-url="openapi.json"></main>
<noscript>The machine-readable document is at <a href="openapi.json">openapi.json</a>.</noscript>
<script src="{renderer}"></script>
<script src="{initializer}" nonce="{nonce}"></script>
</body></html>"""
"""Relative URLs (the page is /v1/docs), so the page works under any stage path or custom domain."""


def content_security_policy(nonce: str) -> str:
    """Same-origin scripts only, no inline script and no eval; each directive below is what Redoc needs.

    style-src: Redoc styles itself with styled-components, which creates <style>
    elements at run time; only those carrying this response's nonce apply (Redoc
    copies it from the initializer's script element), so injected markup cannot
    add styles. Style properties Redoc sets from script are not governed by CSP.
    img-src data: one icon in Redoc's CSS is a data: SVG.
    worker-src blob: the search index runs in a Web Worker Redoc builds from a
    blob: URL; only script already allowed on the page can create one.
    connect-src 'self': the page fetches /v1/openapi.json.
    """
    return "; ".join((
        "default-src 'none'",
        "script-src 'self'",
        f"style-src 'nonce-{nonce}'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "worker-src blob:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ))


class Health(Output):
    status: str
    version: str


@lru_cache(maxsize=1)
def _document() -> dict[str, Any]:
    document: dict[str, Any] = openapi.build(routes())
    return document


@lru_cache(maxsize=len(ASSETS))
def _read(file: str) -> str:
    """Read once per container, on the first request for it: the cold start never pays for the 1 MB bundle."""
    return (STATIC / file).read_text(encoding="utf-8")


@router.route("GET", "/v1/openapi.json", roles=PUBLIC, summary="This API's OpenAPI 3.1 document.")
def openapi_document(req: Request) -> dict[str, Any]:
    return _document()


@router.route("GET", "/v1/docs", roles=PUBLIC, content_type="text/html; charset=utf-8",
              summary="Human-readable API reference (Redoc, served by this API).")
def docs(req: Request) -> Response:
    nonce = secrets.token_urlsafe(18)
    page = DOCS_PAGE.format(renderer=RENDERER.path.removeprefix("/v1/"),
                            initializer=INITIALIZER.path.removeprefix("/v1/"), nonce=nonce)
    # A nonce is good for one response only: the page must not be cached.
    return Response(body=page, status_code=200, headers={
        "Content-Security-Policy": content_security_policy(nonce), "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})


def _asset_handler(asset: Asset) -> Handler:
    def serve(req: Request) -> Response:
        return Response(body=_read(asset.file), status_code=200,
                        headers={"Cache-Control": IMMUTABLE, "X-Content-Type-Options": "nosniff"})

    # The registry names each route after its handler; every asset needs its own name.
    serve.__name__ = "docs_asset_" + "".join(c if c.isalnum() else "_" for c in asset.name)
    return serve


for _asset in ASSETS:
    router.route("GET", _asset.path, roles=PUBLIC, content_type=_asset.content_type,
                 summary=f"A file of the API reference page: {_asset.file}.")(_asset_handler(_asset))


@router.route("GET", "/v1/health", roles=PUBLIC, response=Health, summary="Liveness check; touches no data.")
def health(req: Request) -> Health:
    return Health(status="ok", version=openapi.API_VERSION)
