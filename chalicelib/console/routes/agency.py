"""Agency pages: the agency's tenants (provision, edit, suspend, reactivate, delete, their people) and its staff.

The same services and input models as `/v1/agency/*` and the member routes
(chalicelib/api/routes/agency.py, people.py): a form is parsed as the API
parses its JSON body, so every rule, limit and message is the API's, shown
at its field with what the person typed kept. The agency is always the
signed-in person's own (`req.person.owner`); another agency's tenant is a
404 like a missing one (`tenancy.require_tenant_of_agency`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from chalice.app import Response
from pydantic import BaseModel, ValidationError

from chalicelib.console.pages import PageRequest, PageRouter, gettext, redirect
from chalicelib.domain.rate_limits import PLAN_LIMITS
from chalicelib.domain.roles import Role
from chalicelib.errors import ApiError
from chalicelib.lazy import lazy_module
from chalicelib.schemas.common import PageQuery
from chalicelib.schemas.identity import InvitationCreate, MemberUpdate
from chalicelib.schemas.tenancy import Plan, Tenant, TenantCreate, TenantUpdate
from chalicelib.services.tenancy.scopes import Scope

if TYPE_CHECKING:
    from chalicelib.services.identity import members
    from chalicelib.services.reporting import dashboard
    from chalicelib.services.tenancy import listings, tenancy
else:
    members = lazy_module("chalicelib.services.identity.members")
    dashboard = lazy_module("chalicelib.services.reporting.dashboard")
    listings = lazy_module("chalicelib.services.tenancy.listings")
    tenancy = lazy_module("chalicelib.services.tenancy.tenancy")

router = PageRouter("agency")
AGENCY = frozenset({Role.AGENCY})
router.section("/console/agency/tenants", "Tenants", roles=AGENCY, order=10)
router.section("/console/agency/members", "Agency members", roles=AGENCY, order=20)

PAGE_SIZE = 50
STORE_ROWS = 3
"""Empty store rows a new form offers; "More store rows" adds as many again (no script needed)."""
MAX_STORE_ROWS = 90
"""As many as TenantCreate takes in one go."""
TENANT_ROLES = ("tenant_admin", "support")
PLANS = tuple(p.value for p in Plan)


def _(message: str) -> str:
    """Marks a message for the catalogue; it is translated when shown (`_done`)."""
    return message


DONE = {
    "deleted": _("The tenant is being deleted: its keys stopped working and its data is being removed."),
    "saved": _("Saved."),
    "suspended": _("The tenant is suspended: its keys and people are refused until you reactivate it."),
    "active": _("The tenant is active again."),
    "invited": _("The invitation is on its way."),
    "resent": _("The invitation was sent again with a new link."),
    "revoked": _("The invitation was revoked."),
    "removed": _("The member was removed and their sessions ended."),
    "unchanged": _("Nothing changed."),
}
SERVICE_MESSAGES = (
    _("A scope must keep at least one active admin; make someone else admin first."),
    _("must equal the tenant id"),
    _("This tenant is being deleted."),
    _("This person is already a member here."),
)
"""The services' refusals these pages show, in the catalogue so a Russian reader gets them in Russian."""


# --- tenants ------------------------------------------------------------------------------------------------------

@router.page("GET", "/console/agency/tenants", roles=AGENCY)
def tenants(req: PageRequest) -> Response:
    cursor = _cursor(req.query.get("cursor"))
    items, next_cursor = listings.tenants_of_agency(_agency(req), PAGE_SIZE, cursor)
    return req.render("agency/tenants.html", tenants=items, next_cursor=next_cursor, first=cursor is None,
                      limits=PLAN_LIMITS, notice_text=_done(req))


@router.page("GET", "/console/agency/provision", roles=AGENCY)
def provision_form(req: PageRequest) -> Response:
    values = {"plan": Plan.STANDARD.value, "currency": "RUB", "timezone": "Europe/Moscow", "language": "ru"}
    return _provision_page(req, values, STORE_ROWS, {}, None, 200)


@router.page("POST", "/console/agency/provision", roles=AGENCY)
def provision_submit(req: PageRequest) -> Response:
    values = {k: v for k, v in req.form.items() if k != "csrf"}
    rows = _store_rows(req.form)
    if req.form.get("action") == "more_rows":
        return _provision_page(req, values, min(rows + STORE_ROWS, MAX_STORE_ROWS), {}, None, 200)
    data, row_of = _tenant_data(req.form, rows)
    errors: dict[str, str] = {}
    spec = _parse(TenantCreate, data, errors, lambda loc: _provision_field(loc, row_of))
    invitation = _parse(InvitationCreate, {"email": req.form.get("admin_email", "").strip(), "role": "tenant_admin"},
                        errors, lambda loc: "admin_email")
    if spec is None or invitation is None:
        return _provision_page(req, values, rows, errors, None, 400)
    try:
        provisioned = tenancy.provision_tenant(_agency(req), spec, req.actor)
    except ApiError as err:
        field_errors, alert = _refusal(req, err, lambda path: _provision_field(_path_loc(path), row_of))
        return _provision_page(req, values, rows, field_errors, alert, err.status)
    tenant = provisioned.tenant
    invite_error = None
    try:
        sent = members.invite(Scope.tenant(tenant.tenant_id, tenant.agency_id), invitation, req.actor)
    except ApiError as err:
        sent, invite_error = None, _said(req, err.message)
    return req.render("agency/provisioned.html", 201, provisioned=provisioned, invitation=sent,
                      invite_error=invite_error)


@router.page("GET", "/console/agency/tenants/{tenant_id}", roles=AGENCY)
def tenant_page(req: PageRequest) -> Response:
    tenant = _tenant(req)
    return _tenant_page(req, tenant, _tenant_values(tenant), {}, None, 200)


@router.page("POST", "/console/agency/tenants/{tenant_id}", roles=AGENCY)
def tenant_edit(req: PageRequest) -> Response:
    tenant = _tenant(req)
    values = {"name": req.form.get("name", ""), "plan": req.form.get("plan", ""),
              "timezone": req.form.get("timezone", ""), "language": req.form.get("language") or tenant.language,
              "support_mfa": "on" if req.form.get("support_mfa") else ""}
    errors: dict[str, str] = {}
    data = {"name": values["name"], "plan": values["plan"], "timezone": values["timezone"],
            "language": values["language"], "support_mfa": bool(values["support_mfa"])}
    parsed = _parse(TenantUpdate, data, errors, lambda loc: str(loc[0]) if loc else "name")
    if parsed is None:
        return _tenant_page(req, tenant, values, errors, None, 400)
    current = {"name": tenant.name, "plan": tenant.plan.value, "timezone": tenant.timezone,
               "language": tenant.language, "support_mfa": tenant.support_mfa}
    changes = {k: v for k, v in parsed.model_dump(mode="json", exclude_none=True).items() if current.get(k) != v}
    if not changes:
        return redirect(_tenant_url(tenant.tenant_id, "unchanged"))
    try:
        tenancy.update_tenant(_agency(req), tenant.tenant_id, TenantUpdate.model_validate_json(json.dumps(changes)),
                              req.actor)
    except ApiError as err:
        field_errors, alert = _refusal(req, err, lambda path: path)
        return _tenant_page(req, tenant, values, field_errors, alert, err.status)
    return redirect(_tenant_url(tenant.tenant_id, "saved"))


@router.page("POST", "/console/agency/tenants/{tenant_id}/status", roles=AGENCY)
def tenant_status(req: PageRequest) -> Response:
    tenant = _tenant(req)
    errors: dict[str, str] = {}
    parsed = _parse(TenantUpdate, {"status": req.form.get("status", "")}, errors, lambda loc: "status")
    if parsed is None:
        return _tenant_page(req, tenant, _tenant_values(tenant), {}, errors.get("status"), 400)
    try:
        updated = tenancy.update_tenant(_agency(req), tenant.tenant_id, parsed, req.actor)
    except ApiError as err:
        return _tenant_page(req, tenant, _tenant_values(tenant), {}, _said(req, err.message), err.status)
    return redirect(_tenant_url(updated.tenant_id, updated.status.value))


@router.page("POST", "/console/agency/tenants/{tenant_id}/delete", roles=AGENCY)
def tenant_delete(req: PageRequest) -> Response:
    tenant = _tenant(req)
    confirm = req.form.get("confirm", "").strip()[:40]
    try:
        tenancy.request_deletion(_agency(req), tenant.tenant_id, confirm, req.actor)
    except ApiError as err:
        field_errors, alert = _refusal(req, err, lambda path: path)
        return _tenant_page(req, tenant, _tenant_values(tenant), field_errors, alert, err.status, confirm=confirm)
    return redirect("/console/agency/tenants?done=deleted")


@router.page("POST", "/console/agency/tenants/{tenant_id}/invitations", roles=AGENCY)
def tenant_invite(req: PageRequest) -> Response:
    tenant = _tenant(req)
    invite_values = {"email": req.form.get("email", "").strip(), "role": req.form.get("role", "")}
    errors: dict[str, str] = {}
    parsed = _parse(InvitationCreate, invite_values, errors, lambda loc: str(loc[0]) if loc else "email")
    if parsed is None:
        return _tenant_page(req, tenant, _tenant_values(tenant), errors, None, 400, invite=invite_values)
    try:
        members.invite(Scope.tenant(tenant.tenant_id, tenant.agency_id), parsed, req.actor)
    except ApiError as err:
        field_errors, alert = _refusal(req, err, lambda path: path)
        return _tenant_page(req, tenant, _tenant_values(tenant), field_errors, alert, err.status,
                            invite=invite_values)
    return redirect(_tenant_url(tenant.tenant_id, "invited"))


# --- agency members -----------------------------------------------------------------------------------------------

@router.page("GET", "/console/agency/members", roles=AGENCY)
def agency_members(req: PageRequest) -> Response:
    return _members_page(req, {}, None, 200, {"email": ""})


@router.page("POST", "/console/agency/members/invite", roles=AGENCY)
def agency_invite(req: PageRequest) -> Response:
    values = {"email": req.form.get("email", "").strip()}
    errors: dict[str, str] = {}
    parsed = _parse(InvitationCreate, {**values, "role": Role.AGENCY.value}, errors,
                    lambda loc: str(loc[0]) if loc else "email")
    if parsed is None:
        return _members_page(req, errors, None, 400, values)
    try:
        members.invite(_agency_scope(req), parsed, req.actor)
    except ApiError as err:
        field_errors, alert = _refusal(req, err, lambda path: path)
        return _members_page(req, field_errors, alert, err.status, values)
    return redirect("/console/agency/members?done=invited")


@router.page("POST", "/console/agency/members/{user_id}/status", roles=AGENCY)
def agency_member_status(req: PageRequest) -> Response:
    errors: dict[str, str] = {}
    parsed = _parse(MemberUpdate, {"status": req.form.get("status", "")}, errors, lambda loc: "status")
    if parsed is None:
        return _members_page(req, {}, errors.get("status"), 400, {"email": ""})
    try:
        members.update_member(_agency_scope(req), req.path["user_id"], parsed, req.actor)
    except ApiError as err:
        if err.status == 404:
            raise
        return _members_page(req, {}, _said(req, err.message), err.status, {"email": ""})
    return redirect("/console/agency/members?done=saved")


@router.page("POST", "/console/agency/members/{user_id}/remove", roles=AGENCY)
def agency_member_remove(req: PageRequest) -> Response:
    try:
        members.remove_member(_agency_scope(req), req.path["user_id"], req.actor)
    except ApiError as err:
        if err.status == 404:
            raise
        return _members_page(req, {}, _said(req, err.message), err.status, {"email": ""})
    return redirect("/console/agency/members?done=removed")


@router.page("POST", "/console/agency/invitations/{invitation_id}/resend", roles=AGENCY)
def agency_invitation_resend(req: PageRequest) -> Response:
    return _invitation_action(req, members.resend, "resent")


@router.page("POST", "/console/agency/invitations/{invitation_id}/revoke", roles=AGENCY)
def agency_invitation_revoke(req: PageRequest) -> Response:
    return _invitation_action(req, members.revoke_invitation, "revoked")


# --- helpers ------------------------------------------------------------------------------------------------------

def _agency(req: PageRequest) -> str:
    return req.person.owner


def _agency_scope(req: PageRequest) -> Scope:
    return Scope.agency(_agency(req))


def _tenant(req: PageRequest) -> Tenant:
    """The agency's own tenant named by the path; anyone else's is a 404 like a missing one."""
    return tenancy.require_tenant_of_agency(_agency(req), req.path["tenant_id"][:40])


def _tenant_url(tenant_id: str, done: str) -> str:
    return f"/console/agency/tenants/{quote(tenant_id)}?done={done}"


def _tenant_values(tenant: Tenant) -> dict[str, str]:
    return {"name": tenant.name, "plan": tenant.plan.value, "timezone": tenant.timezone,
            "language": tenant.language, "support_mfa": "on" if tenant.support_mfa else ""}


def _tenant_page(req: PageRequest, tenant: Tenant, values: dict[str, str], errors: dict[str, str],
                 alert: str | None, status: int, *, confirm: str = "",
                 invite: dict[str, str] | None = None) -> Response:
    scope = Scope.tenant(tenant.tenant_id, tenant.agency_id)
    people, people_next = members.list_members(scope, PAGE_SIZE, _cursor(req.query.get("members")))
    invitations, invitations_next = members.list_invitations(scope, PAGE_SIZE,
                                                             _cursor(req.query.get("invitations")))
    figures = None
    if tenant.status.value != "deleting":
        try:
            figures = dashboard.dashboard(tenant.tenant_id)
        except ApiError:
            figures = None
    return req.render("agency/tenant.html", status, tenant=tenant, values=values, errors=errors, error=alert,
                      confirm=confirm, invite=invite or {"email": "", "role": "tenant_admin"}, people=people,
                      people_next=people_next, invitations=invitations, invitations_next=invitations_next,
                      figures=figures, limits=PLAN_LIMITS[tenant.plan.value], plans=PLANS, plan_limits_of=PLAN_LIMITS,
                      tenant_roles=TENANT_ROLES, role_names=_role_names(req), notice_text=_done(req))


def _members_page(req: PageRequest, errors: dict[str, str], alert: str | None, status: int,
                  values: dict[str, str]) -> Response:
    scope = _agency_scope(req)
    people, people_next = members.list_members(scope, PAGE_SIZE, _cursor(req.query.get("members")))
    invitations, invitations_next = members.list_invitations(scope, PAGE_SIZE,
                                                             _cursor(req.query.get("invitations")))
    return req.render("agency/members.html", status, people=people, people_next=people_next,
                      invitations=invitations, invitations_next=invitations_next, errors=errors, error=alert,
                      values=values, role_names=_role_names(req), notice_text=_done(req) if status == 200 else None)


def _invitation_action(req: PageRequest, action: Callable[[Scope, str, str], Any], done: str) -> Response:
    try:
        action(_agency_scope(req), req.path["invitation_id"][:40], req.actor)
    except ApiError as err:
        if err.status == 404:
            raise
        return _members_page(req, {}, _said(req, err.message), err.status, {"email": ""})
    return redirect(f"/console/agency/members?done={done}")


def _provision_page(req: PageRequest, values: dict[str, str], rows: int, errors: dict[str, str],
                    alert: str | None, status: int) -> Response:
    return req.render("agency/provision.html", status, values=values, rows=rows, errors=errors, error=alert,
                      plans=PLANS, limits=PLAN_LIMITS, max_rows=MAX_STORE_ROWS)


def _store_rows(form: dict[str, str]) -> int:
    raw = form.get("store_rows", "")
    rows = int(raw) if raw.isdigit() and len(raw) <= 3 else STORE_ROWS
    return max(1, min(rows, MAX_STORE_ROWS))


_INTEGER = re.compile(r"^-?[0-9]{1,15}$")


def _integer(raw: str) -> int | str:
    """A number typed in a form as the JSON integer the API takes; anything else stays text (the model says why)."""
    value = raw.strip()
    return int(value) if _INTEGER.match(value) else value


def _tenant_data(form: dict[str, str], rows: int) -> tuple[dict[str, Any], list[int]]:
    """The form as the body of POST /v1/agency/tenants, and the form row of each store sent (empty rows left out)."""
    stores: list[dict[str, str]] = []
    row_of: list[int] = []
    for row in range(rows):
        store = {"id": form.get(f"store_id_{row}", "").strip(), "name": form.get(f"store_name_{row}", "").strip(),
                 "region": form.get(f"store_region_{row}", "").strip()}
        if any(store.values()):
            stores.append(store)
            row_of.append(row)
    data: dict[str, Any] = {
        "tenant_id": form.get("tenant_id", "").strip(),
        "name": form.get("name", "").strip(),
        "plan": form.get("plan", ""),
        "currency": form.get("currency", "").strip().upper(),
        "timezone": form.get("timezone", "").strip(),
        "language": form.get("language") or "ru",
        "program": {"id": form.get("program_id", "").strip(), "name": form.get("program_name", "").strip(),
                    "earning": {"rate_bps": _integer(form.get("program_rate_bps", ""))}},
        "stores": stores,
    }
    return data, row_of


def _provision_field(loc: tuple[Any, ...], row_of: list[int]) -> str:
    """The form field of a TenantCreate error location (program.earning.rate_bps, stores[1].id, ...)."""
    if not loc:
        return "stores"  # the whole body's checks are about stores (unique ids)
    head = str(loc[0])
    if head == "program":
        part = str(loc[1]) if len(loc) > 1 else ""
        return {"id": "program_id", "name": "program_name"}.get(part, "program_rate_bps")
    if head == "stores":
        if len(loc) >= 3 and isinstance(loc[1], int) and loc[1] < len(row_of) and loc[2] in ("id", "name", "region"):
            return f"store_{loc[2]}_{row_of[loc[1]]}"
        return "stores"
    if head in ("tenant_id", "name", "plan", "currency", "timezone", "language"):
        return head
    return "tenant_id"


def _path_loc(path: str) -> tuple[Any, ...]:
    """An API error's field path (`stores[1].id`) as a location tuple."""
    loc: list[Any] = []
    for part in path.split("."):
        name, _, rest = part.partition("[")
        if name:
            loc.append(name)
        for index in re.findall(r"(\d+)\]", "[" + rest if rest else ""):
            loc.append(int(index))
    return tuple(loc)


def _parse(model: type[BaseModel], data: dict[str, Any], errors: dict[str, str],
           field_of: Callable[[tuple[Any, ...]], str]) -> Any:
    """The form as the API's own model, parsed as the API parses a JSON body; its errors go to their fields."""
    try:
        return model.model_validate_json(json.dumps(data))
    except ValidationError as err:
        for item in err.errors(include_url=False):
            loc = tuple(p for p in item["loc"] if p not in ("function-after", "function-before"))
            errors.setdefault(field_of(loc), item["msg"])
        return None


def _refusal(req: PageRequest, err: ApiError, field_of: Callable[[str], str]) -> tuple[dict[str, str], str | None]:
    """A service's refusal at its field when it names one (its own words there), else above the form."""
    errors: dict[str, str] = {}
    for detail in err.details:
        if detail.field:
            errors.setdefault(field_of(detail.field), _said(req, detail.issue))
    return errors, None if errors else _said(req, err.message)


def _said(req: PageRequest, message: str) -> str:
    return gettext(req.locale, message)


def _cursor(raw: str | None) -> str | None:
    """A page's cursor from the query string, checked as the API's PageQuery checks it."""
    if not raw:
        return None
    try:
        return PageQuery.model_validate({"cursor": raw}).cursor
    except ValidationError:
        raise ApiError(400, "invalid_cursor", "") from None


def _done(req: PageRequest) -> str | None:
    message = DONE.get(req.query.get("done", ""))
    return gettext(req.locale, message) if message else None


def _role_names(req: PageRequest) -> dict[str, str]:
    names = {"platform": gettext(req.locale, "platform operator"), "agency": gettext(req.locale, "agency staff"),
             "tenant_admin": gettext(req.locale, "administrator"),
             "support": gettext(req.locale, "support operator")}
    return names
