"""The tenant's image library: logos and pictures for HTML e-mail, kept in S3 and served from our own origin.

An upload is trusted by nothing it claims: its type comes from its magic
bytes (PNG, JPEG, GIF or WebP only; an SVG could carry script), its pixel size
from its header, and its id is random (24 characters of a 33-letter alphabet,
~121 bits), so an image URL cannot be guessed from another. Images are public
once uploaded (mail clients fetch them without credentials), which is why the
ids are unguessable and the library holds no personal data.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from chalicelib import clock
from chalicelib.domain import images
from chalicelib.domain.ids import is_slug, new_id
from chalicelib.errors import ApiError, ErrorDetail
from chalicelib.schemas.assets import MAX_ASSET_BYTES, AssetOut, public_path
from chalicelib.settings import settings
from chalicelib.storage import assets as store
from chalicelib.storage import audit
from chalicelib.storage.documents.asset import AssetDoc

MAX_BYTES = MAX_ASSET_BYTES
TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
MAX_ASSETS = 500
"""A library of logos and banners per tenant, not a photo archive (the list is one query)."""
ID_LENGTH = 24


def not_found(asset_id: str) -> ApiError:
    return ApiError(404, "asset_not_found", f"Image {asset_id[:80]!r} does not exist.",
                    [ErrorDetail("asset_id", "not found")])


def public_url(tenant_id: str, asset_id: str) -> str:
    """Where a mail client loads the image: our public route (absolute once PUBLIC_BASE_URL is set)."""
    return f"{settings.public_base_url}{public_path(tenant_id, asset_id)}"


def _out(tenant_id: str, found: store.StoredAsset) -> AssetOut:
    doc = found.doc
    return AssetOut(id=found.asset_id, filename=doc.filename, content_type=doc.content_type, size=doc.size,
                    width=doc.width, height=doc.height, url=public_url(tenant_id, found.asset_id),
                    created_at=datetime.fromisoformat(doc.created_at))


def decode(data_base64: str) -> bytes:
    """The file of a JSON upload; 413 past the size before decoding all of it, 422 if it is not base64."""
    if len(data_base64) > (MAX_BYTES // 3 + 2) * 4 + len(data_base64) // 76 * 2:
        raise too_large()
    try:
        return base64.b64decode("".join(data_base64.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, "unsupported_image", "The file is not valid base64.",
                       [ErrorDetail("data_base64", "not base64")]) from None


def too_large() -> ApiError:
    return ApiError(413, "asset_too_large", f"The image is larger than {MAX_BYTES // (1024 * 1024)} MB.",
                    [ErrorDetail("data_base64", f"at most {MAX_BYTES} bytes")])


def upload(tenant_id: str, actor: str, filename: str, content_type: str | None, data: bytes) -> AssetOut:
    """Add an image to the library. `content_type` is only the client's hint: the bytes decide."""
    del content_type  # the magic bytes decide; a wrong hint is not an error
    if len(data) > MAX_BYTES:
        raise too_large()
    info = images.sniff(data)
    if info is None:
        raise ApiError(422, "unsupported_image", "Only PNG, JPEG, GIF and WebP images can be uploaded "
                       f"(at most {images.MAX_PIXELS_SIDE} px a side); this file is none of them.",
                       [ErrorDetail("data_base64", "not a PNG, JPEG, GIF or WebP image")])
    if store.count(tenant_id) >= MAX_ASSETS:
        raise ApiError(409, "asset_library_full", f"The library holds at most {MAX_ASSETS} images; delete some "
                       "first.", [ErrorDetail("data_base64", "library full")])
    at = clock.now()
    name = " ".join(filename.split())[:200] or "image"
    doc = AssetDoc(filename=name, content_type=info.content_type, size=len(data), width=info.width,
                         height=info.height, created_at=at.isoformat(), created_by=actor)
    asset_id = new_id(ID_LENGTH)
    entry = audit.entry(tenant_id, action="asset.uploaded", actor=actor, at=at, target=f"asset:{asset_id}",
                        detail={"filename": name, "content_type": info.content_type, "size": len(data)})
    if not store.put(tenant_id, asset_id, doc, data, at, entry):
        raise ApiError(409, "asset_exists", "An image with this id exists; upload again.")
    return _out(tenant_id, store.StoredAsset(asset_id, doc))


def list_assets(tenant_id: str) -> list[AssetOut]:
    """The whole library, newest first (at most MAX_ASSETS)."""
    found = sorted(store.list_all(tenant_id), key=lambda a: (a.doc.created_at, a.asset_id), reverse=True)
    return [_out(tenant_id, a) for a in found]


def list_page(tenant_id: str, limit: int, cursor: str | None) -> tuple[list[AssetOut], str | None]:
    """One page of the library, newest first; the cursor is the last image's (time, id), so a deletion between
    pages neither skips nor repeats an image."""
    items = list_assets(tenant_id)
    if cursor:
        after = cursor.split("|", 1)
        items = [a for a in items if (a.created_at.isoformat(), a.id) < (after[0], after[-1])]
    shown = items[:limit]
    more = len(items) > limit
    return shown, (f"{shown[-1].created_at.isoformat()}|{shown[-1].id}" if more and shown else None)


def get(tenant_id: str, asset_id: str) -> AssetOut:
    found = store.get(tenant_id, asset_id)
    if found is None:
        raise not_found(asset_id)
    return _out(tenant_id, found)


def exists(tenant_id: str, asset_id: str) -> bool:
    return store.get(tenant_id, asset_id) is not None


def delete(tenant_id: str, actor: str, asset_id: str) -> None:
    """Remove the image (audited). Messages already sent that show it show a broken image from then on."""
    if store.get(tenant_id, asset_id) is None:
        raise not_found(asset_id)
    at = clock.now()
    entry = audit.entry(tenant_id, action="asset.deleted", actor=actor, at=at, target=f"asset:{asset_id}")
    if not store.delete(tenant_id, asset_id, entry):
        raise not_found(asset_id)


def content(tenant_id: str, asset_id: str) -> tuple[bytes, str] | None:
    """(bytes, content type) for the public route; None for an unknown tenant, id or a deleted image."""
    if not (0 < len(asset_id) <= 64 and asset_id.isalnum() and is_slug(tenant_id)):
        return None
    found = store.get(tenant_id, asset_id)
    if found is None or found.doc.content_type not in TYPES:
        return None
    data = store.read(tenant_id, asset_id)
    return None if data is None else (data, found.doc.content_type)
