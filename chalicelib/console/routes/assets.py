"""The image library: the tenant's logos and pictures for HTML e-mail, uploaded, listed and deleted.

The same service as the API's `/v1/assets` routes (type read from the file's own bytes, PNG, JPEG, GIF or
WebP, at most 2 MB, audited). The upload is an ordinary `multipart/form-data` form (pages.py reads it, at most
2.5 MB a body); a refused file is said at the file input. The images are shown from our own public route, the
address e-mails use; the e-mail builder's image and header blocks choose from this library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from chalice.app import Response

from chalicelib.console.pages import PageRequest, PageRouter, gettext, redirect
from chalicelib.domain.roles import Role
from chalicelib.errors import ApiError, not_found
from chalicelib.schemas.assets import public_path
from chalicelib.schemas.tenancy import Tenant

if TYPE_CHECKING:
    from chalicelib.services.marketing import assets
    from chalicelib.services.tenancy import tenancy
else:
    from chalicelib.lazy import lazy_module

    assets = lazy_module("chalicelib.services.marketing.assets")
    tenancy = lazy_module("chalicelib.services.tenancy.tenancy")

router = PageRouter("assets")
ADMIN = frozenset({Role.TENANT_ADMIN})
"""As the API's /v1/assets routes."""
router.section("/console/images", "Images", roles=ADMIN, order=47)
ACCEPT = "image/png,image/jpeg,image/gif,image/webp"


@router.page("GET", "/console/images", roles=ADMIN)
def library(req: PageRequest) -> Response:
    notice = {"uploaded": gettext(req.locale, "The image is in the library."),
              "deleted": gettext(req.locale, "The image is deleted.")}.get(req.query.get("done", ""))
    return _library(req, _tenant(req), {}, notice=notice)


@router.page("POST", "/console/images", roles=ADMIN, upload=True)
def upload(req: PageRequest) -> Response:
    tenant = _tenant(req)
    sent = req.files.get("file")
    if sent is None or not sent.data:
        return _library(req, tenant, {"file": gettext(req.locale, "Choose an image file to upload.")}, status=400)
    try:
        assets.upload(tenant.tenant_id, req.actor, sent.filename or "image", sent.content_type or None, sent.data)
    except ApiError as err:
        return _library(req, tenant, {"file": gettext(req.locale, err.message)}, status=err.status)
    return redirect("/console/images?done=uploaded")


@router.page("GET", "/console/images/{asset_id}/delete", roles=ADMIN)
def confirm_delete(req: PageRequest) -> Response:
    tenant = _tenant(req)
    image = assets.get(tenant.tenant_id, req.path["asset_id"])
    return req.render("templates/image_delete.html", tenant=tenant, image=image, src=_src(tenant, image.id))


@router.page("POST", "/console/images/{asset_id}/delete", roles=ADMIN)
def delete(req: PageRequest) -> Response:
    tenant = _tenant(req)
    image = assets.get(tenant.tenant_id, req.path["asset_id"])  # another tenant's id: 404 before anything
    assets.delete(tenant.tenant_id, req.actor, image.id)
    return redirect("/console/images?done=deleted")


def _library(req: PageRequest, tenant: Tenant, errors: dict[str, str], *, status: int | None = None,
             notice: str | None = None) -> Response:
    items = assets.list_assets(tenant.tenant_id)
    shown = [(image, _src(tenant, image.id)) for image in items]
    return req.render("templates/images.html", status or (400 if errors else 200), tenant=tenant, items=shown,
                      errors=errors, notice_text=notice, accept=ACCEPT, max_mb=assets.MAX_BYTES // (1024 * 1024))


def _src(tenant: Tenant, asset_id: str) -> str:
    """The image from our own origin (the page's CSP allows no other), by the public route e-mails use."""
    return public_path(quote(tenant.tenant_id, safe=''), quote(asset_id, safe=''))


def _tenant(req: PageRequest) -> Tenant:
    tenant_id = req.person.tenant_id
    if tenant_id is None:
        raise not_found("Tenant")
    return tenancy.require_tenant(tenant_id)
