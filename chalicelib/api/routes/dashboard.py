"""Live numbers: the tenant admin's dashboard, and the same for the agency of one of its tenants."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.api.registry import Request, Router
from chalicelib.api.routes.common import lazy_module, tenant_id_of
from chalicelib.domain.roles import Role
from chalicelib.schemas.dashboard import Dashboard, DashboardQuery

if TYPE_CHECKING:
    from chalicelib.services.reporting import dashboard
    from chalicelib.services.tenancy import tenancy
else:
    dashboard = lazy_module("chalicelib.services.reporting.dashboard")
    tenancy = lazy_module("chalicelib.services.tenancy.tenancy")

router = Router("Dashboard")
SUMMARY = ("Today's and this month's key figures (local time of the tenant), from counters kept as purchases, "
           "refunds, cards and customers are written; `program_id` narrows them to one program.")


@router.route("GET", "/v1/dashboard", roles={Role.TENANT_ADMIN}, query=DashboardQuery, response=Dashboard,
              errors=(404,), summary=SUMMARY)
def get_dashboard(req: Request) -> Dashboard:
    return dashboard.dashboard(tenant_id_of(req.caller), req.query.program_id)


@router.route("GET", "/v1/agency/tenants/{tenant_id}/dashboard", roles={Role.AGENCY}, query=DashboardQuery,
              response=Dashboard, errors=(404,), summary=SUMMARY)
def agency_dashboard(req: Request) -> Dashboard:
    tenant = tenancy.require_tenant_of_agency(req.caller.owner, req.path["tenant_id"])
    return dashboard.dashboard(tenant.tenant_id, req.query.program_id)
