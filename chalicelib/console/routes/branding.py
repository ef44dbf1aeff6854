"""The member site's branding: the tenant admin's colours, logo and sign-up program (`/console/branding`).

The same service as `tenants/*.yaml` and the agency's `PATCH /v1/agency/tenants/{id}` (`branding`): colours are
`#rrggbb` only, the logo an image of the tenant's own library, the program one of its active points programs.
Errors at the field, what was typed kept; the member site shows the change within a minute (settings cache).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice.app import Response
from pydantic import ValidationError

from chalicelib.console.pages import PageRequest, PageRouter, gettext, redirect
from chalicelib.domain.roles import Role
from chalicelib.errors import ApiError, not_found
from chalicelib.schemas.assets import public_path
from chalicelib.schemas.tenancy import Branding

if TYPE_CHECKING:
    from chalicelib.services.marketing import assets
    from chalicelib.services.tenancy import branding
else:
    from chalicelib.lazy import lazy_module

    assets = lazy_module("chalicelib.services.marketing.assets")
    branding = lazy_module("chalicelib.services.tenancy.branding")

router = PageRouter("branding")
ADMIN = frozenset({Role.TENANT_ADMIN})
router.section("/console/branding", "Member site", roles=ADMIN, order=78)
FIELDS = ("primary_colour", "accent_colour", "logo_asset_id", "sign_up_program_id")
ISSUES = {
    "primary_colour": "Enter a colour as # and six hex digits, e.g. #1f5f8b.",
    "accent_colour": "Enter a colour as # and six hex digits, e.g. #1f5f8b.",
    "logo_asset_id": "Choose an image of your library.",
    "sign_up_program_id": "Choose an active points program of yours.",
}


@router.page("GET", "/console/branding", roles=ADMIN)
def form(req: PageRequest) -> Response:
    current = branding.get(_tenant_id(req)).model_dump(mode="json")
    typed = {k: str(current.get(k) or "") for k in FIELDS}
    notice = gettext(req.locale, "Saved. The member site shows it within a minute.") if req.query.get("saved") else None
    return _form(req, typed, {}, notice=notice)


@router.page("POST", "/console/branding", roles=ADMIN)
def save(req: PageRequest) -> Response:
    tenant_id = _tenant_id(req)
    typed = {k: req.form.get(k, "").strip()[:100] for k in FIELDS}
    try:
        spec = Branding.model_validate({k: v for k, v in typed.items() if v}, strict=False)
    except ValidationError as err:
        errors = {str(e["loc"][0]): gettext(req.locale, ISSUES[str(e["loc"][0])])
                  for e in err.errors(include_url=False) if e["loc"] and str(e["loc"][0]) in ISSUES}
        return _form(req, typed, errors or {"primary_colour": gettext(req.locale, ISSUES["primary_colour"])})
    try:
        branding.update(tenant_id, spec, req.actor)
    except ApiError as err:
        errors = {d.field: gettext(req.locale, ISSUES[d.field]) for d in err.details or [] if d.field in ISSUES}
        alert = None if errors else gettext(req.locale, "The member site was changed elsewhere at the same time. "
                                                        "What you typed is kept: save it again.")
        return _form(req, typed, errors, status=err.status, alert=alert)
    return redirect("/console/branding?saved=1")


def _form(req: PageRequest, typed: dict[str, str], errors: dict[str, str], *, status: int | None = None,
          notice: str | None = None, alert: str | None = None) -> Response:
    tenant_id = _tenant_id(req)
    images = [(a.id, a.filename) for a in assets.list_assets(tenant_id)]
    programs = [(p.id, p.name) for p in branding.card_programs(tenant_id)]
    return req.render("branding/form.html", status or (400 if errors else 200), typed=typed, errors=errors,
                      images=images, programs=programs, notice_text=notice, alert_text=alert,
                      site=f"/m/{tenant_id}/sign-in",
                      logo=public_path(tenant_id, typed["logo_asset_id"]) if typed.get("logo_asset_id") else None)


def _tenant_id(req: PageRequest) -> str:
    if req.person.tenant_id is None:
        raise not_found("Tenant")
    return req.person.tenant_id
