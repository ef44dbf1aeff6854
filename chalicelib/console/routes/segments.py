"""Segments: the tenant's saved filters, a builder with a live count, save, edit, duplicate, delete.

The same service and models as the API's `/v1/segments` routes: the form is
parsed into `SegmentIn` / `SegmentUpdate` (its filter into `SegmentFilter`),
the count is `segments.preview`, the service of POST /v1/segments/preview, so
validation, references and audit are the API's. Every page acts in the
signed-in person's own tenant: another tenant's segment id is the API's 404.
With htmx the form posts to the count route on every change and swaps the
number into a polite live region; without JavaScript the "Count" button posts
the form and the page comes back with the count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from chalice.app import Response
from pydantic import ValidationError

from chalicelib.console.pages import PageRequest, PageRouter, gettext, redirect
from chalicelib.domain.roles import Role
from chalicelib.errors import ApiError, not_found
from chalicelib.lazy import lazy_module
from chalicelib.schemas.customers import AcquisitionChannel
from chalicelib.schemas.segments import PreviewIn, SegmentFilter, SegmentIn, SegmentUpdate
from chalicelib.schemas.tenancy import Tenant

if TYPE_CHECKING:
    from chalicelib.services.marketing import segments
    from chalicelib.services.tenancy import tenancy
else:
    segments = lazy_module("chalicelib.services.marketing.segments")
    tenancy = lazy_module("chalicelib.services.tenancy.tenancy")

router = PageRouter("segments")
ADMIN = frozenset({Role.TENANT_ADMIN})
"""As the API's /v1/segments routes."""
router.section("/console/segments", "Segments", roles=ADMIN, order=45)
PAGE = 50
LISTS = ("tiers", "tags_any", "tags_all", "store_ids", "regions")
"""Conditions typed as comma-separated values."""
NUMBERS = ("birthday_within_days", "no_purchase_for_days", "purchased_within_days", "created_within_days",
           "spend_min", "spend_max", "points_expiring_within_days", "points_expiring_min")
TEXTS = ("program_id", "consent")
CHANNELS = tuple(c.value for c in AcquisitionChannel)
WHOLE_FILTER_ERRORS = (("spend_min must not exceed", "spend_max"),
                       ("points_expiring_min needs", "points_expiring_min"),
                       ("purchased_within_days must exceed", "purchased_within_days"))
"""A rule between two conditions, shown at the input it names last."""
COPY_SUFFIX = " (copy)"


@router.page("GET", "/console/segments", roles=ADMIN)
def segment_list(req: PageRequest) -> Response:
    tenant = _tenant(req)
    cursor = req.query.get("cursor")
    items, next_cursor = segments.list_segments(tenant.tenant_id, PAGE, cursor[:2048] if cursor else None)
    notice = {"deleted": gettext(req.locale, "The segment is deleted.")}.get(req.query.get("done", ""))
    return req.render("segments/list.html", tenant=tenant, items=items, cursor=next_cursor, notice_text=notice)


@router.page("GET", "/console/segments/new", roles=ADMIN)
def new_segment(req: PageRequest) -> Response:
    return _builder(req, _tenant(req), None, {}, {})


@router.page("POST", "/console/segments", roles=ADMIN)
def create_segment(req: PageRequest) -> Response:
    tenant = _tenant(req)
    values = _typed(req.form)
    if req.form.get("do") == "count":
        return _builder(req, tenant, None, values, *_count(req, tenant, values))
    parsed, errors = _parse(SegmentIn, values)
    if parsed is None:
        return _builder(req, tenant, None, values, errors, status=400)
    try:
        made = segments.create(tenant.tenant_id, parsed, req.actor)
    except ApiError as err:
        return _builder(req, tenant, None, values, _api_errors(req, err), status=err.status)
    return redirect(f"/console/segments/{made.segment_id}?done=saved")


@router.page("POST", "/console/segments/count", roles=ADMIN)
def count(req: PageRequest) -> Response:
    """The live count: only the count box's content (htmx swaps it into the form's live region)."""
    tenant = _tenant(req)
    errors, counted = _count(req, tenant, _typed(req.form))
    return req.render("segments/_count.html", 422 if errors and counted is None else 200, counted=counted,
                      count_errors=errors)


@router.page("GET", "/console/segments/{segment_id}", roles=ADMIN)
def segment(req: PageRequest) -> Response:
    tenant = _tenant(req)
    current = segments.get(tenant.tenant_id, req.path["segment_id"])
    counted = segments.count(tenant.tenant_id, current.segment_id).count
    notice = {"saved": gettext(req.locale, "The segment is saved."),
              "copied": gettext(req.locale, "This is a copy: change it and save.")}.get(req.query.get("done", ""))
    return _builder(req, tenant, current, _values_of(current), {}, counted, notice=notice)


@router.page("POST", "/console/segments/{segment_id}", roles=ADMIN)
def save_segment(req: PageRequest) -> Response:
    tenant = _tenant(req)
    current = segments.get(tenant.tenant_id, req.path["segment_id"])  # another tenant's id: 404 before anything else
    values = _typed(req.form)
    if req.form.get("do") == "count":
        return _builder(req, tenant, current, values, *_count(req, tenant, values))
    parsed, errors = _parse(SegmentUpdate, {**values, "version": req.form.get("version") or None})
    if parsed is None:
        return _builder(req, tenant, current, values, errors, status=400)
    try:
        saved = segments.update(tenant.tenant_id, current.segment_id, parsed, req.actor)
    except ApiError as err:
        return _builder(req, tenant, current, values, _api_errors(req, err), status=err.status)
    return redirect(f"/console/segments/{saved.segment_id}?done=saved")


@router.page("POST", "/console/segments/{segment_id}/duplicate", roles=ADMIN)
def duplicate(req: PageRequest) -> Response:
    tenant = _tenant(req)
    current = segments.get(tenant.tenant_id, req.path["segment_id"])
    name = current.name[:120 - len(COPY_SUFFIX)].rstrip() + COPY_SUFFIX
    copy = SegmentIn(name=name, description=current.description, filter=current.filter)
    made = segments.create(tenant.tenant_id, copy, req.actor)
    return redirect(f"/console/segments/{made.segment_id}?done=copied")


@router.page("POST", "/console/segments/{segment_id}/delete", roles=ADMIN)
def delete(req: PageRequest) -> Response:
    tenant = _tenant(req)
    current = segments.get(tenant.tenant_id, req.path["segment_id"])
    try:
        segments.delete(tenant.tenant_id, current.segment_id, req.actor)
    except ApiError as err:
        return _builder(req, tenant, current, _values_of(current), {"form": gettext(req.locale, err.message)},
                        status=err.status)
    return redirect("/console/segments?done=deleted")


# --- helpers ----------------------------------------------------------------------------------------------------

def _tenant(req: PageRequest) -> Tenant:
    tenant_id = req.person.tenant_id
    if tenant_id is None:
        raise not_found("Tenant")
    return tenancy.require_tenant(tenant_id)


def _builder(req: PageRequest, tenant: Tenant, current: Any, values: dict[str, str], errors: dict[str, str],
             counted: int | None = None, *, status: int | None = None, notice: str | None = None) -> Response:
    if status is None:
        status = 400 if errors else 200
    return req.render("segments/builder.html", status, tenant=tenant, current=current, values=values,
                      errors=errors, counted=counted, count_errors=errors, channels=CHANNELS, notice_text=notice)


def _typed(form: Mapping[str, str]) -> dict[str, str]:
    """What the person typed, by field (kept as typed to show it again)."""
    names = ("name", "description", *LISTS, *NUMBERS, *TEXTS)
    values = {n: form.get(n, "")[:2000] for n in names}
    for channel in CHANNELS:
        if form.get(f"channel_{channel}"):
            values[f"channel_{channel}"] = "on"
    return values


def _filter_data(values: Mapping[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for n in LISTS:
        items = [v.strip() for v in values.get(n, "").split(",") if v.strip()]
        if items:
            data[n] = items
    for n in NUMBERS:
        text = values.get(n, "").strip().replace(" ", "").replace("\u00a0", "")
        if text:
            data[n] = text  # the model says what is not a whole number
    for n in TEXTS:
        if values.get(n, "").strip():
            data[n] = values[n].strip()
    chosen = [c for c in CHANNELS if values.get(f"channel_{c}")]
    if chosen:
        data["acquisition_channels"] = chosen
    return data


def _model_data(values: Mapping[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {"name": values.get("name", "").strip(), "filter": _filter_data(values)}
    if values.get("description", "").strip():
        data["description"] = values["description"].strip()
    if values.get("version"):
        data["version"] = values["version"]
    return data


def _parse(model: Any, values: Mapping[str, Any]) -> tuple[Any, dict[str, str]]:
    """The form as the API's own model, or the model's errors at their inputs (the first one each)."""
    try:
        return model.model_validate(_model_data(values), strict=False), {}
    except ValidationError as err:
        return None, _errors(err)


def _errors(err: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for item in err.errors(include_url=False):
        loc = [str(p) for p in item["loc"]]
        if loc and loc[0] == "filter":
            loc = loc[1:]
        name = loc[0] if loc else ""
        if name == "acquisition_channels":
            name = "channels"
        if not name:
            message = str(item["msg"])
            name = next((field for text, field in WHOLE_FILTER_ERRORS if text in message), "form")
        errors.setdefault(name, str(item["msg"]))
    return errors


def _api_errors(req: PageRequest, err: ApiError) -> dict[str, str]:
    """A refusal of the service at the input its detail names, else above the form."""
    message = gettext(req.locale, err.message)
    for detail in err.details or []:
        name = detail.field.removeprefix("filter.")
        if name in (*LISTS, *NUMBERS, *TEXTS, "name", "description"):
            return {name: message}
    return {"form": message}


def _count(req: PageRequest, tenant: Tenant, values: Mapping[str, str]) -> tuple[dict[str, str], int | None]:
    """The count of the filter typed (the service of POST /v1/segments/preview), or the errors of its inputs."""
    try:
        body = PreviewIn.model_validate({"filter": _filter_data(values)}, strict=False)
    except ValidationError as err:
        return _errors(err), None
    try:
        return {}, segments.preview(tenant.tenant_id, body.filter).count
    except ApiError as err:
        return _api_errors(req, err), None


def _values_of(current: Any) -> dict[str, str]:
    """A saved segment as the form's values."""
    flt: SegmentFilter = current.filter
    values = {"name": current.name, "description": current.description or ""}
    for n in LISTS:
        values[n] = ", ".join(getattr(flt, n) or [])
    for n in NUMBERS:
        value = getattr(flt, n)
        values[n] = "" if value is None else str(value)
    for n in TEXTS:
        values[n] = getattr(flt, n) or ""
    for channel in flt.acquisition_channels or []:
        values[f"channel_{channel}"] = "on"
    return values
