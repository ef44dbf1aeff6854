"""Reports in the console: request any report type for a period, follow its progress, download the file through
the presigned link, and the list of past reports until their files expire.

The same service, model and roles as `/v1/reports` (the tenant admin's): the form is parsed with `ReportCreate`
(its errors at the field, the typed values kept), the request is recorded and queued by `service.create` with
its audit entry, and the reports worker builds it. A report's page polls itself with htmx while the report is
queued or running (and has a plain link to check again without JavaScript). Another tenant's report id is the
same 404 as an unknown one.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from chalice.app import Response
from pydantic import ValidationError

from chalicelib.console.pages import PageRequest, PageRouter, gettext, listed, redirect
from chalicelib.console.routes.customers import said_at_fields, tenant_of
from chalicelib.domain.reporting import FILE_LIFETIME
from chalicelib.domain.roles import Role
from chalicelib.errors import ApiError
from chalicelib.lazy import lazy_module
from chalicelib.schemas.reports import ReportCreate
from chalicelib.schemas.tenancy import ProgramStatus

if TYPE_CHECKING:
    from chalicelib.services.customers import surveys
    from chalicelib.services.marketing import campaigns
    from chalicelib.services.program import coalitions
    from chalicelib.services.reporting.reports import service
    from chalicelib.services.tenancy import listings
else:
    service = lazy_module("chalicelib.services.reporting.reports.service")
    listings = lazy_module("chalicelib.services.tenancy.listings")
    campaigns = lazy_module("chalicelib.services.marketing.campaigns")
    surveys = lazy_module("chalicelib.services.customers.surveys")
    coalitions = lazy_module("chalicelib.services.program.coalitions")

router = PageRouter("reports")
ADMIN = {Role.TENANT_ADMIN}
"""The API's roles for `/v1/reports` (an agency requests its tenants' reports through its own routes)."""
router.section("/console/reports", "Reports", roles=ADMIN, order=70)

PAGE = 25
LIST_MAX = 100
_ = str
"""Marks msgids for the catalogue; the templates translate these labels when they render them."""
TYPES: tuple[tuple[str, str, str], ...] = (
    # (type, label, the subject field it takes)
    ("ledger", _("Points ledger"), "program_id"),
    ("members", _("Members"), "program_id"),
    ("program_summary", _("Program summary by day"), "program_id"),
    ("tier_distribution", _("Tier distribution"), "program_id"),
    ("campaign_results", _("Campaign results"), "campaign_id"),
    ("survey_results", _("Survey results"), "survey_id"),
    ("coalition_settlement", _("Coalition settlement"), "coalition_id"),
)
OTHER_LABELS = {"simulation": _("Promotion simulation")}
"""Types requested elsewhere (the simulator) that show in the list."""
SUBJECT_OF = {name: subject for name, _label, subject in TYPES}
SUBJECTS = ("program_id", "campaign_id", "survey_id", "coalition_id")
FIELDS = ("type", "from", "to", "format", "delimiter", *SUBJECTS)
ACTIVE = ("queued", "running")
STATUS_LABELS = {"queued": _("Queued"), "running": _("Being built"), "ready": _("Ready"), "failed": _("Failed"),
                 "expired": _("Expired")}


@router.page("GET", "/console/reports", roles=ADMIN)
def report_list(req: PageRequest) -> Response:
    typed = {name: "" for name in FIELDS}
    typed.update(type="ledger", format="csv", delimiter=",")
    return _list(req, {}, typed, None, 200)


@router.page("POST", "/console/reports", roles=ADMIN)
def request_report(req: PageRequest) -> Response:
    """Request a report (`POST /v1/reports`): the model's errors at the field, then the report's page."""
    typed = {name: req.form.get(name, "").strip() for name in FIELDS}
    wanted = SUBJECT_OF.get(typed["type"])
    data: dict[str, Any] = {"type": typed["type"], "from": typed["from"] or None, "to": typed["to"] or None,
                            "format": typed["format"] or "csv", "delimiter": typed["delimiter"] or ","}
    if wanted and typed[wanted]:
        data[wanted] = typed[wanted]  # only the subject the chosen type takes; the other selects are ignored
    errors: dict[str, str] = {}
    try:
        spec = ReportCreate.model_validate_json(json.dumps(data))
    except ValidationError as err:
        for item in err.errors(include_url=False):
            where = str(item["loc"][0]) if item["loc"] else "to"  # the period rule is about `to`
            errors.setdefault(where if where in FIELDS else "to", _message(item["msg"]))
        return _list(req, errors, typed, None, 400)
    try:
        _, report = service.create(tenant_of(req).tenant_id, spec, req.actor, req.person.role)
    except ApiError as err:
        shown = {"type", "from", "to", "format", "delimiter", wanted or "program_id"}
        errors, alert = said_at_fields(req, err, shown)
        return _list(req, errors, typed, alert, err.status if err.status < 500 else 400)
    return redirect(f"/console/reports/{quote(report.report_id, safe='')}?done=requested")


@router.page("GET", "/console/reports/{report_id}", roles=ADMIN)
def report_page(req: PageRequest) -> Response:
    tenant = tenant_of(req)
    report = service.get(tenant.tenant_id, req.path["report_id"], req.person.role)
    notice = {"requested": gettext(req.locale, "The report is requested; it is built in the background.")}.get(
        req.query.get("done", ""))
    return req.render("reports/report.html", tenant=tenant, report=report, notice_text=notice,
                      type_label=_type_label(report.type), status_label=STATUS_LABELS.get(report.status.value, ""),
                      active=report.status.value in ACTIVE, file_expires=_file_expires(report.completed_at),
                      self_url=f"/console/reports/{quote(report.report_id, safe='')}")


# --- helpers ----------------------------------------------------------------------------------------------------

def _message(msg: str) -> str:
    """pydantic's message without its 'Value error, ' prefix."""
    return msg.removeprefix("Value error, ")


def _type_label(name: str) -> str:
    return next((label for t, label, _s in TYPES if t == name), OTHER_LABELS.get(name, name))


def _file_expires(completed_at: datetime | None) -> datetime | None:
    return completed_at + FILE_LIFETIME if completed_at else None


def _list(req: PageRequest, errors: dict[str, str], typed: dict[str, str], alert: str | None,
          status: int) -> Response:
    tenant = tenant_of(req)
    tenant_id = tenant.tenant_id
    cursor = req.query.get("cursor") or None
    page = service.list_all(tenant_id, PAGE, cursor[:2000] if cursor else None, req.person.role)
    more = "/console/reports?" + urlencode({"cursor": page.cursor}) if page.has_more and page.cursor else None
    options = {
        "program_id": [(p.id, f"{p.name} ({p.id})") for p in listed(listings.programs, tenant_id, LIST_MAX)
                       if p.status is not ProgramStatus.ARCHIVED],
        "campaign_id": [(c.id, f"{c.name} ({c.id})") for c in listed(campaigns.list_all, tenant_id, LIST_MAX)],
        "survey_id": [(s.id, f"{s.title} ({s.id})") for s in listed(surveys.list_all, tenant_id, LIST_MAX)],
        "coalition_id": [(c.coalition_id, f"{c.name} ({c.coalition_id})")
                         for c in coalitions.of_tenant(tenant_id)],
    }
    rows = [{"report": r, "type_label": _type_label(r.type), "status_label": STATUS_LABELS.get(r.status.value, ""),
             "file_expires": _file_expires(r.completed_at) if r.status.value == "ready" else None}
            for r in page.items]
    return req.render("reports/reports.html", status, tenant=tenant, rows=rows, more=more, types=TYPES,
                      options=options, errors=errors, form=typed, error=alert)
