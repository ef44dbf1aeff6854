"""The tenant's image library for HTML e-mail (tenant admins), and the public route mail clients load images from."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice.app import Response

from chalicelib.api.registry import PUBLIC, Request, Router
from chalicelib.api.routes.common import lazy_module, page, tenant_id_of
from chalicelib.domain.roles import Role
from chalicelib.errors import ApiError, ErrorDetail
from chalicelib.schemas.assets import UPLOAD_BODY_BYTES, AssetIn, AssetListQuery, AssetOut
from chalicelib.schemas.common import Page

if TYPE_CHECKING:
    from chalicelib.services.marketing import assets
else:
    assets = lazy_module("chalicelib.services.marketing.assets")

router = Router("Assets")
ADMIN = {Role.TENANT_ADMIN}
IMAGE_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'",
                 "Cache-Control": "public, max-age=31536000, immutable", "Cross-Origin-Resource-Policy": "cross-origin"}
"""An image id never changes content (ids are not reused): cached for a year; never sniffed or run as a page."""


@router.route("POST", "/v1/assets", roles=ADMIN, body=AssetIn, response=AssetOut, status=201,
              errors=(400, 409, 413, 422), max_body_bytes=UPLOAD_BODY_BYTES,
              summary="Upload an image (JSON with the file in base64, at most 2 MB decoded): PNG, JPEG, GIF or WebP, "
                      "recognised by its first bytes; 413 `asset_too_large`, 422 `unsupported_image`.")
def upload_asset(req: Request) -> AssetOut:
    body: AssetIn = req.body
    data = assets.decode(body.data_base64)
    return assets.upload(tenant_id_of(req.caller), req.actor, body.filename, body.content_type, data)


@router.route("GET", "/v1/assets", roles=ADMIN, query=AssetListQuery, response=Page[AssetOut],
              summary="The tenant's image library, newest first (at most 500 images).")
def list_assets(req: Request) -> Page[AssetOut]:
    items, cursor = assets.list_page(tenant_id_of(req.caller), req.query.limit, req.query.cursor)
    return page(items, cursor)


@router.route("GET", "/v1/assets/{asset_id}", roles=ADMIN, response=AssetOut, errors=(404,),
              summary="One image of the library: its name, type, size, pixels and public URL.")
def get_asset(req: Request) -> AssetOut:
    return assets.get(tenant_id_of(req.caller), req.path["asset_id"])


@router.route("DELETE", "/v1/assets/{asset_id}", roles=ADMIN, status=204, errors=(404,),
              summary="Delete an image (audited); messages already sent show it broken from then on.")
def delete_asset(req: Request) -> tuple[int, None]:
    assets.delete(tenant_id_of(req.caller), req.actor, req.path["asset_id"])
    return 204, None


@router.route("GET", "/v1/public/assets/{tenant_id}/{asset_id}", roles=PUBLIC, content_type="image/png", errors=(404,),
              summary="An image of a tenant's library, as mail clients load it (public, no key; the id is "
                      "unguessable). Served with its own type, `nosniff`, `default-src 'none'`, cached for a year.")
def serve_asset(req: Request) -> Response:
    found = assets.content(req.path["tenant_id"], req.path["asset_id"])
    if found is None:
        raise ApiError(404, "asset_not_found", "No such image.", [ErrorDetail("asset_id", "not found")])
    data, content_type = found
    return Response(body=data, status_code=200, headers={"Content-Type": content_type, **IMAGE_HEADERS})
