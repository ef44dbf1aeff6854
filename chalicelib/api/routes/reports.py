"""Reports: requested by the tenant admin, or by the agency for one of its tenants; built by the reports worker."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.api.registry import Request, Router
from chalicelib.api.routes.common import lazy_module, tenant_id_of
from chalicelib.domain.roles import Role
from chalicelib.schemas.common import Page, PageQuery
from chalicelib.schemas.reports import Report, ReportCreate

if TYPE_CHECKING:
    from chalicelib.services.reporting.reports import service
else:
    service = lazy_module("chalicelib.services.reporting.reports.service")

router = Router("Reports")
ADMIN = {Role.TENANT_ADMIN}
AGENCY = {Role.AGENCY}
CREATE_SUMMARY = ("Request a report over the UTC days [from, to) as CSV or XLSX (202; poll the report until "
                  "`ready`). Types by subject: program_id for ledger, members (tenant admin only: personal data), "
                  "program_summary, tier_distribution; campaign_id (optional) for campaign_results; survey_id for "
                  "survey_results; coalition_id for coalition_settlement.")


@router.route("POST", "/v1/reports", roles=ADMIN, body=ReportCreate, response=Report, status=202,
              errors=(403, 404, 422, 503), summary=CREATE_SUMMARY)
def create_report(req: Request) -> tuple[int, Report]:
    return service.create(tenant_id_of(req.caller), req.body, req.actor, req.caller.role)


@router.route("GET", "/v1/reports", roles=ADMIN, query=PageQuery, response=Page[Report],
              summary="The tenant's reports, newest first.")
def list_reports(req: Request) -> Page[Report]:
    return service.list_all(tenant_id_of(req.caller), req.query.limit, req.query.cursor)


@router.route("GET", "/v1/reports/{report_id}", roles=ADMIN, response=Report, errors=(404,),
              summary="A report's status; when ready, a download link valid for 15 minutes.")
def get_report(req: Request) -> Report:
    return service.get(tenant_id_of(req.caller), req.path["report_id"])


@router.route("POST", "/v1/agency/tenants/{tenant_id}/reports", roles=AGENCY, body=ReportCreate, response=Report,
              status=202, errors=(403, 404, 422, 503), summary=CREATE_SUMMARY)
def agency_create_report(req: Request) -> tuple[int, Report]:
    return service.create_for_agency(req.caller.owner, req.path["tenant_id"], req.body, req.actor)


@router.route("GET", "/v1/agency/tenants/{tenant_id}/reports", roles=AGENCY, query=PageQuery,
              response=Page[Report], errors=(404,), summary="A tenant's reports, newest first.")
def agency_list_reports(req: Request) -> Page[Report]:
    return service.list_for_agency(req.caller.owner, req.path["tenant_id"], req.query.limit, req.query.cursor)


@router.route("GET", "/v1/agency/tenants/{tenant_id}/reports/{report_id}", roles=AGENCY, response=Report,
              errors=(404,), summary="A tenant's report; when ready, a download link valid for 15 minutes.")
def agency_get_report(req: Request) -> Report:
    return service.get_for_agency(req.caller.owner, req.path["tenant_id"], req.path["report_id"])
