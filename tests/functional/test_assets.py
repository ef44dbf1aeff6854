"""The tenant's image library: upload (type by magic bytes, size limits), list, delete, and the public image route."""

from __future__ import annotations

import base64
from typing import Any

from chalicelib.services.marketing import assets
from chalicelib.settings import settings
from chalicelib.storage import audit as audit_store
from chalicelib.storage.aws import client
from tests.functional.conftest import Api, TenantKeys
from tests.unit.test_email_html import GIF, png

PNG = png(4, 3)
BROWSER = {"Accept": "image/avif,image/webp,image/png,*/*;q=0.8"}
"""What a browser or mail client's image request accepts (a binary answer needs a matching Accept)."""


def upload(api: Api, key: str, data: bytes, filename: str = "logo.png", **extra: Any) -> Any:
    return api.post("/v1/assets", key, {"filename": filename, "data_base64": base64.b64encode(data).decode(),
                                        **extra})


def actions(tenant_id: str) -> list[str]:
    return [e.action for e in audit_store.list_entries(tenant_id, 50, None, action="asset.").items]


def test_upload_list_serve_and_delete(api: Api, tenant: TenantKeys) -> None:
    r = upload(api, tenant.admin, PNG, "  Логотип  кофейни.png ", content_type="image/jpeg")
    assert r.status_code == 201, r.data
    asset = r.data
    assert len(asset["id"]) == 24 and asset["id"].isalnum()
    assert {k: asset[k] for k in ("filename", "content_type", "size", "width", "height")} == {
        "filename": "Логотип кофейни.png", "content_type": "image/png", "size": len(PNG), "width": 4, "height": 3}
    assert asset["url"] == f"/v1/public/assets/{tenant.tenant_id}/{asset['id']}"
    gif = upload(api, tenant.admin, GIF, "banner.gif").data

    listed = api.get("/v1/assets", tenant.admin)
    assert listed.status_code == 200
    assert [a["id"] for a in listed.data["items"]] == [gif["id"], asset["id"]], "newest first"
    first = api.get("/v1/assets?limit=1", tenant.admin).data
    assert [a["id"] for a in first["items"]] == [gif["id"]] and first["has_more"]
    rest = api.get(f"/v1/assets?limit=1&cursor={first['cursor']}", tenant.admin).data
    assert [a["id"] for a in rest["items"]] == [asset["id"]] and not rest["has_more"]
    assert api.get(f"/v1/assets/{asset['id']}", tenant.admin).data == asset

    image = api.get(asset["url"], headers=BROWSER)
    assert image.status_code == 200 and image.body == PNG
    assert image.headers["Content-Type"] == "image/png"
    assert image.headers["X-Content-Type-Options"] == "nosniff"
    assert image.headers["Content-Security-Policy"] == "default-src 'none'"
    assert image.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    stored = client("s3").get_object(Bucket=settings.assets_bucket,
                                     Key=f"tenants/{tenant.tenant_id}/assets/{asset['id']}")
    assert stored["ContentType"] == "image/png" and stored["ServerSideEncryption"] == "AES256"

    assert api.delete(f"/v1/assets/{asset['id']}", tenant.admin).status_code == 204
    gone = api.get(asset["url"], headers=BROWSER)
    assert gone.status_code == 404 and gone.data["error"]["code"] == "asset_not_found"
    assert [a["id"] for a in api.get("/v1/assets", tenant.admin).data["items"]] == [gif["id"]]
    again = api.delete(f"/v1/assets/{asset['id']}", tenant.admin)
    assert (again.status_code, again.data["error"]["code"]) == (404, "asset_not_found")
    assert sorted(actions(tenant.tenant_id)) == ["asset.deleted", "asset.uploaded", "asset.uploaded"]


def test_only_real_images_within_two_megabytes(api: Api, tenant: TenantKeys) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
    r = upload(api, tenant.admin, svg, "logo.png", content_type="image/png")
    assert (r.status_code, r.data["error"]["code"]) == (422, "unsupported_image")
    assert r.data["error"]["details"] == [{"field": "data_base64", "issue": "not a PNG, JPEG, GIF or WebP image"}]
    big = PNG + b"\x00" * (assets.MAX_BYTES + 1 - len(PNG))
    r = upload(api, tenant.admin, big)
    assert (r.status_code, r.data["error"]["code"]) == (413, "asset_too_large"), r.data
    assert r.data["error"]["details"][0]["field"] == "data_base64"
    at_limit = PNG + b"\x00" * (assets.MAX_BYTES - len(PNG))
    assert upload(api, tenant.admin, at_limit).status_code == 201, "exactly 2 MB is accepted"
    r = api.post("/v1/assets", tenant.admin, {"filename": "x.png", "data_base64": "not base64!"})
    assert (r.status_code, r.data["error"]["code"]) == (422, "unsupported_image")
    assert [a["size"] for a in api.get("/v1/assets", tenant.admin).data["items"]] == [assets.MAX_BYTES]


def test_another_tenant_reaches_none_of_the_library(api: Api, tenant: TenantKeys, other_tenant: TenantKeys) -> None:
    asset = upload(api, tenant.admin, PNG).data
    for r in (api.get(f"/v1/assets/{asset['id']}", other_tenant.admin),
              api.delete(f"/v1/assets/{asset['id']}", other_tenant.admin),
              api.get(f"/v1/public/assets/{other_tenant.tenant_id}/{asset['id']}")):
        assert (r.status_code, r.data["error"]["code"]) == (404, "asset_not_found"), r.data
    assert api.get("/v1/assets", other_tenant.admin).data["items"] == []
    assert api.get(asset["url"], headers=BROWSER).status_code == 200, "still there for its tenant"
    for role in ("pos", "support"):
        assert api.get("/v1/assets", getattr(tenant, role)).status_code == 403
    assert api.get(f"/v1/public/assets/{tenant.tenant_id}/nope").status_code == 404
    assert api.get(f"/v1/public/assets/..%2F{tenant.tenant_id}/{asset['id']}").status_code == 404
