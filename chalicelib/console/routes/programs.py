"""Programs and stores: the rules in a form, the diff against the rules in force, publishing, history; stores.

The same services and models as the API's `/v1/programs` and `/v1/stores`
routes: a program's form is parsed into `ProgramUpdate` (or `ProgramSpec` for
a new one) and published with `tenancy.replace_program`, the service behind
`PUT /v1/programs/{id}`, so its checks, versioning and audit are the API's.
Every page acts in the signed-in person's own tenant: another tenant's
program or store id is the API's 404. Changing rules is the tenant admin's
(the API's ADMIN); these pages are the admin's only.

Publishing is two steps: the form is checked and its differences from the
rules in force are shown (old -> new per field); the confirm form carries the
same fields and the version it was compared with, so a version published by
someone else meanwhile is shown again rather than overwritten unseen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from chalice.app import Response
from pydantic import ValidationError

from chalicelib.console import program_form as rules_form
from chalicelib.console.pages import PageRequest, PageRouter, gettext, redirect
from chalicelib.domain.roles import Role
from chalicelib.errors import ApiError, not_found
from chalicelib.lazy import lazy_module
from chalicelib.schemas.tenancy import Program, ProgramSpec, ProgramUpdate, Store, StoreSpec, StoreUpdate, Tenant

if TYPE_CHECKING:
    from chalicelib.services.program import catalog
    from chalicelib.services.tenancy import listings, tenancy
else:
    catalog = lazy_module("chalicelib.services.program.catalog")
    listings = lazy_module("chalicelib.services.tenancy.listings")
    tenancy = lazy_module("chalicelib.services.tenancy.tenancy")

router = PageRouter("programs")
ADMIN = frozenset({Role.TENANT_ADMIN})
"""As the API's writes of programs and stores; the support role has the customer pages only."""
router.section("/console/programs", "Programs", roles=ADMIN, order=20)
router.section("/console/stores", "Stores", roles=ADMIN, order=25)
PAGE = 50
CARRIED_OUT = ("csrf", "add", "back", "base_version")
"""Form fields the confirm step does not carry over as rules."""


# --- programs ---------------------------------------------------------------------------------------------------

@router.page("GET", "/console/programs", roles=ADMIN)
def programs(req: PageRequest) -> Response:
    tenant = _tenant(req)
    if "new" in req.query:
        return _new_form(req, tenant, _starting_values(), {}, {}, 200)
    found, cursor = listings.programs(tenant.tenant_id, PAGE, _cursor(req))
    notice = gettext(req.locale, "The program is created.") if req.query.get("done") == "created" else None
    return req.render("programs/list.html", tenant=tenant, programs=found, cursor=cursor, notice_text=notice)


@router.page("POST", "/console/programs", roles=ADMIN)
def create_program(req: PageRequest) -> Response:
    """Create a program (POST /v1/programs), or show the form again with more blank rows."""
    tenant = _tenant(req)
    values = _typed(req.form)
    extra = _extra(req.form)
    if req.form.get("add"):
        return _new_form(req, tenant, values, {}, extra, 200)
    parsed = _parse(ProgramSpec, req.form, tenant, with_id=True)
    if parsed.model is None:
        return _new_form(req, tenant, values, parsed.errors, extra, 400)
    try:
        tenancy.create_program(tenant.tenant_id, parsed.model, req.actor)
    except ApiError as err:
        return _new_form(req, tenant, values, rules_form.api_errors(err, parsed.places), extra, err.status)
    return redirect(f"/console/programs/{parsed.model.id}?done=created")


@router.page("GET", "/console/programs/{program_id}", roles=ADMIN)
def program(req: PageRequest) -> Response:
    tenant = _tenant(req)
    head = tenancy.require_program(tenant.tenant_id, req.path["program_id"])
    done = req.query.get("done")
    notice = gettext(req.locale, "The new rules are published.") if done == "published" else \
        gettext(req.locale, "The program is created.") if done == "created" else None
    return _edit_form(req, tenant, head, rules_form.values_of(head, tenant.timezone), {}, {}, 200, notice)


@router.page("POST", "/console/programs/{program_id}/edit", roles=ADMIN)
def edit_again(req: PageRequest) -> Response:
    """The form again with what the person typed: after "change the rules" on the review, or to add rows."""
    tenant = _tenant(req)
    head = tenancy.require_program(tenant.tenant_id, req.path["program_id"])
    return _edit_form(req, tenant, head, _typed(req.form), {}, _extra(req.form), 200)


@router.page("POST", "/console/programs/{program_id}/review", roles=ADMIN)
def review(req: PageRequest) -> Response:
    """Check the form with the API's model; show its differences from the rules in force before publishing."""
    tenant = _tenant(req)
    head = tenancy.require_program(tenant.tenant_id, req.path["program_id"])
    if req.form.get("add"):
        return edit_again(req)
    parsed = _parse(ProgramUpdate, req.form, tenant)
    if parsed.model is None:
        return _edit_form(req, tenant, head, _typed(req.form), parsed.errors, _extra(req.form), 400)
    return _review(req, tenant, head, parsed.model, 200, None)


@router.page("POST", "/console/programs/{program_id}/publish", roles=ADMIN)
def publish(req: PageRequest) -> Response:
    """Publish the reviewed rules with the service of PUT /v1/programs/{id}: a new rule version."""
    tenant = _tenant(req)
    head = tenancy.require_program(tenant.tenant_id, req.path["program_id"])
    parsed = _parse(ProgramUpdate, req.form, tenant)
    if parsed.model is None:
        return _edit_form(req, tenant, head, _typed(req.form), parsed.errors, {}, 400)
    if req.form.get("base_version") != str(head.version):
        said = gettext(req.locale, "Someone published other rules meanwhile. Here are the differences from the "
                                   "rules in force now; review them again.")
        return _review(req, tenant, head, parsed.model, 409, said)
    update: ProgramUpdate = parsed.model
    try:
        published = tenancy.replace_program(tenant.tenant_id, update.with_id(head.id), req.actor, update.effective_at)
    except ApiError as err:
        errors = rules_form.api_errors(err, parsed.places)
        return _edit_form(req, tenant, head, _typed(req.form), errors, {}, err.status)
    return redirect(f"/console/programs/{head.id}?done=published&version={published.version}")


@router.page("GET", "/console/programs/{program_id}/versions", roles=ADMIN)
def versions(req: PageRequest) -> Response:
    tenant = _tenant(req)
    head = tenancy.require_program(tenant.tenant_id, req.path["program_id"])
    found, cursor = tenancy.program_versions(tenant.tenant_id, head.id, PAGE, _cursor(req))
    in_force = _in_force(tenant, head)
    return req.render("programs/versions.html", tenant=tenant, program=head, versions=found, cursor=cursor,
                      in_force=in_force.version)


@router.page("GET", "/console/programs/{program_id}/versions/{version}", roles=ADMIN)
def version(req: PageRequest) -> Response:
    tenant = _tenant(req)
    head = tenancy.require_program(tenant.tenant_id, req.path["program_id"])
    shown = tenancy.require_program_version(tenant.tenant_id, head.id, req.path["version"])
    before = None
    if shown.version > 1:
        try:
            before = tenancy.require_program_version(tenant.tenant_id, head.id, str(shown.version - 1))
        except ApiError:
            before = None
    args = (tenant.timezone, req.locale, tenant.currency)
    changes = rules_form.diff(before, shown, *args) if before else None
    return req.render("programs/version.html", tenant=tenant, program=head, shown=shown, before=before,
                      changes=changes, lines=rules_form.lines(shown, *args), in_force=_in_force(tenant, head).version)


# --- stores -----------------------------------------------------------------------------------------------------

@router.page("GET", "/console/stores", roles=ADMIN)
def stores(req: PageRequest) -> Response:
    tenant = _tenant(req)
    notice = {"created": gettext(req.locale, "The store is added."),
              "closed": gettext(req.locale, "The store is closed."),
              "reopened": gettext(req.locale, "The store is open again.")}.get(req.query.get("done", ""))
    return _stores_page(req, tenant, {"active": "on"}, {}, 200, notice)


@router.page("POST", "/console/stores", roles=ADMIN)
def create_store(req: PageRequest) -> Response:
    tenant = _tenant(req)
    values = _store_values(req.form)
    try:
        spec = StoreSpec.model_validate(_store_data(req.form, with_id=True), strict=False)
    except ValidationError as err:
        return _stores_page(req, tenant, values, _model_errors(err), 400, None)
    try:
        tenancy.create_store(tenant.tenant_id, spec, req.actor)
    except ApiError as err:
        return _stores_page(req, tenant, values, _detail_errors(err), err.status, None)
    return redirect("/console/stores?done=created")


@router.page("GET", "/console/stores/{store_id}", roles=ADMIN)
def store(req: PageRequest) -> Response:
    tenant = _tenant(req)
    found = tenancy.require_store(tenant.tenant_id, req.path["store_id"])
    notice = gettext(req.locale, "The store is saved.") if req.query.get("done") == "saved" else None
    return _store_page(req, tenant, found, _store_values_of(found), {}, 200, notice)


@router.page("POST", "/console/stores/{store_id}", roles=ADMIN)
def save_store(req: PageRequest) -> Response:
    """Replace the store's details (PUT /v1/stores/{id})."""
    tenant = _tenant(req)
    found = tenancy.require_store(tenant.tenant_id, req.path["store_id"])
    values = _store_values(req.form)
    try:
        update = StoreUpdate.model_validate(_store_data(req.form), strict=False)
    except ValidationError as err:
        return _store_page(req, tenant, found, values, _model_errors(err), 400, None)
    try:
        tenancy.replace_store(tenant.tenant_id, update.with_id(found.id), req.actor)
    except ApiError as err:
        return _store_page(req, tenant, found, values, _detail_errors(err), err.status, None)
    return redirect(f"/console/stores/{found.id}?done=saved")


@router.page("POST", "/console/stores/{store_id}/close", roles=ADMIN)
def close_store(req: PageRequest) -> Response:
    """Close a store: the API's `active: false` (its details kept), by the same service as PUT /v1/stores/{id}."""
    return _set_active(req, False)


@router.page("POST", "/console/stores/{store_id}/reopen", roles=ADMIN)
def reopen_store(req: PageRequest) -> Response:
    return _set_active(req, True)


# --- helpers ----------------------------------------------------------------------------------------------------

def _tenant(req: PageRequest) -> Tenant:
    tenant_id = req.person.tenant_id
    if tenant_id is None:
        raise not_found("Tenant")
    return tenancy.require_tenant(tenant_id)


def _cursor(req: PageRequest) -> str | None:
    value = req.query.get("cursor")
    return value[:2048] if value else None


def _parse(model: Any, form: Mapping[str, str], tenant: Tenant, with_id: bool = False) -> rules_form.Parsed:
    return rules_form.parse(model, form, tenant.timezone, catalog.stores(tenant.tenant_id), with_id=with_id)


def _typed(form: Mapping[str, str]) -> dict[str, str]:
    """What the person typed, to show again (never the CSRF token or the buttons)."""
    return {k: v for k, v in form.items() if k not in CARRIED_OUT and not k.startswith("extra.")}


def _extra(form: Mapping[str, str]) -> dict[str, int]:
    """Blank rows asked for per list: those already shown plus one for the list whose "add" was pressed."""
    extra: dict[str, int] = {}
    for path in rules_form.ROWS:
        shown = form.get(f"extra.{path}", "0")
        extra[path] = min(int(shown), 20) if shown.isdigit() else 0
    added = form.get("add")
    if added in extra:
        extra[added] += 1
    return extra


def _in_force(tenant: Tenant, head: Program) -> Program:
    return catalog.program(tenant.tenant_id, head.id) or head


def _form_context(req: PageRequest, tenant: Tenant, values: dict[str, str], errors: dict[str, str],
                  extra: dict[str, int]) -> dict[str, Any]:
    all_stores = sorted(catalog.stores(tenant.tenant_id).values(), key=lambda s: (s.name.lower(), s.id))
    rows = {path: rules_form.row_count(r, values, extra.get(path, 0)) for path, r in rules_form.ROWS.items()}
    return {"tenant": tenant, "rule_sections": rules_form.SECTIONS, "values": values, "errors": errors, "rows": rows,
            "extra": extra, "stores": all_stores, "summary": _summary(req, errors),
            "effective": rules_form.EFFECTIVE, "id_control": rules_form.PROGRAM_ID}


def _edit_form(req: PageRequest, tenant: Tenant, head: Program, values: dict[str, str], errors: dict[str, str],
               extra: dict[str, int], status: int, notice: str | None = None) -> Response:
    in_force = _in_force(tenant, head)
    return req.render("programs/program.html", status, program=head, in_force=in_force, notice_text=notice,
                      **_form_context(req, tenant, values, errors, extra))


def _new_form(req: PageRequest, tenant: Tenant, values: dict[str, str], errors: dict[str, str],
              extra: dict[str, int], status: int) -> Response:
    return req.render("programs/new.html", status, **_form_context(req, tenant, values, errors, extra))


def _review(req: PageRequest, tenant: Tenant, head: Program, update: ProgramUpdate, status: int,
            said: str | None) -> Response:
    in_force = _in_force(tenant, head)
    changes = rules_form.diff(in_force, update.with_id(head.id), tenant.timezone, req.locale, tenant.currency)
    carry = sorted(_typed(req.form).items())
    return req.render("programs/review.html", status, tenant=tenant, program=head, in_force=in_force,
                      changes=changes, carry=carry, base_version=head.version, effective_at=update.effective_at,
                      alert_text=said)


def _starting_values() -> dict[str, str]:
    """A new program's form: the model's defaults, with a 5 percent earning rate to start from."""
    sample = ProgramSpec.model_validate({"id": "new", "name": "new", "earning": {"rate_bps": 500}})
    return {**rules_form.values_of(sample, "UTC"), "id": "", "name": ""}


def _summary(req: PageRequest, errors: dict[str, str]) -> list[tuple[str, str, str]]:
    """Every error of the form, first at the top (anchor, what, message), linking to its input."""
    out = []
    for name, message in errors.items():
        control = rules_form.CONTROLS.get(name)
        found = rules_form.ROW_PATTERN.match(name)
        if control is not None:
            what = gettext(req.locale, control.label)
        elif found and found["rows"] in rules_form.ROWS:
            rows = rules_form.ROWS[found["rows"]]
            label = next((f.label for f in rows.fields if f.path == found["field"]), "")
            what = f"{gettext(req.locale, rows.label)} {int(found['index']) + 1} · {gettext(req.locale, label)}"
        elif name in rules_form.ROWS:
            what = gettext(req.locale, rules_form.ROWS[name].label)
        else:
            what = gettext(req.locale, rules_form.GROUP_LABELS.get(name.split(".")[0], "Program"))
        anchor = f"f-{name}" if rules_form.is_input(name) else f"g-{name}"
        out.append((anchor, what, message))
    return out


def _stores_page(req: PageRequest, tenant: Tenant, values: dict[str, str], errors: dict[str, str], status: int,
                 notice: str | None) -> Response:
    found, cursor = listings.stores(tenant.tenant_id, PAGE, _cursor(req))
    return req.render("programs/stores.html", status, tenant=tenant, stores=found, cursor=cursor, values=values,
                      errors=errors, notice_text=notice)


def _store_page(req: PageRequest, tenant: Tenant, found: Store, values: dict[str, str], errors: dict[str, str],
                status: int, notice: str | None) -> Response:
    return req.render("programs/store.html", status, tenant=tenant, store=found, values=values, errors=errors,
                      notice_text=notice)


STORE_FIELDS = ("id", "name", "region", "address", "partner_id")


def _store_values(form: Mapping[str, str]) -> dict[str, str]:
    return {**{k: form.get(k, "") for k in STORE_FIELDS}, "active": "on" if form.get("active") == "on" else ""}


def _store_values_of(found: Store) -> dict[str, str]:
    return {"id": found.id, "name": found.name, "region": found.region, "address": found.address,
            "partner_id": found.partner_id or "", "active": "on" if found.active else ""}


def _store_data(form: Mapping[str, str], with_id: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {k: form.get(k, "") for k in ("name", "region", "address")}
    data["partner_id"] = form.get("partner_id") or None
    data["active"] = form.get("active") == "on"
    if with_id:
        data["id"] = form.get("id", "").strip()
    return data


def _model_errors(err: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for item in err.errors(include_url=False):
        parts = [str(p) for p in item["loc"] if not str(p).startswith("function-")]
        errors.setdefault(parts[0] if parts else "form", str(item["msg"]))
    return errors


def _detail_errors(err: ApiError) -> dict[str, str]:
    errors = {d.field: err.message for d in err.details if d.field in (*STORE_FIELDS, "active")}
    return errors or {"form": err.message}


def _set_active(req: PageRequest, active: bool) -> Response:
    tenant = _tenant(req)
    found = tenancy.require_store(tenant.tenant_id, req.path["store_id"])
    spec = found.model_dump(include=set(StoreSpec.model_fields))
    tenancy.replace_store(tenant.tenant_id, StoreSpec.model_validate({**spec, "active": active}, strict=False),
                          req.actor)
    return redirect(f"/console/stores?done={'reopened' if active else 'closed'}")
