"""The promotion cost simulator: the tenant admin (or its agency) asks what a proposed rule set would cost."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.api.registry import Request, Router
from chalicelib.api.routes.common import lazy_module, tenant_id_of
from chalicelib.domain.roles import Role
from chalicelib.schemas.reports import Report
from chalicelib.schemas.simulation import SimulationRequest, SimulationResult

if TYPE_CHECKING:
    from chalicelib.services.reporting import simulation_requests as simulation
else:
    simulation = lazy_module("chalicelib.services.reporting.simulation_requests")

router = Router("Simulation")
SUMMARY = ("Replay the program's receipts of the UTC days [from, to) through its current rules and a proposed "
           "program (the body PUT /v1/programs/{id} takes): extra points, expected redemption cost, liability "
           "change, customers affected. Up to 31 days and 2,000 receipts: 200 with the answer, nothing written; "
           "larger: 202 with a `simulation` report (CSV) to poll at /v1/reports/{id}.")


@router.route("POST", "/v1/programs/{program_id}/simulate", roles={Role.TENANT_ADMIN}, body=SimulationRequest,
              response=SimulationResult, errors=(404, 422, 503), summary=SUMMARY)
def simulate(req: Request) -> SimulationResult | tuple[int, Report]:
    return simulation.simulate(tenant_id_of(req.caller), req.path["program_id"], req.body, req.actor)


@router.route("POST", "/v1/agency/tenants/{tenant_id}/programs/{program_id}/simulate", roles={Role.AGENCY},
              body=SimulationRequest, response=SimulationResult, errors=(404, 422, 503), summary=SUMMARY)
def agency_simulate(req: Request) -> SimulationResult | tuple[int, Report]:
    return simulation.simulate_for_agency(req.caller.owner, req.path["tenant_id"], req.path["program_id"], req.body,
                                          req.actor)
