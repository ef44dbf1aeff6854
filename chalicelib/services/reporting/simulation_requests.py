"""A simulation request: the replay's answer at once, or a `simulation` report for a larger period.

Kept apart from simulation.py (the replay) because the report's rows are built
from the replay: reports.service -> reports.registry -> reports.simulation ->
simulation. Recording the report needs reports.service, so it lives here,
above both, and no module imports back.
"""

from __future__ import annotations

from chalicelib import clock
from chalicelib.domain.roles import Role
from chalicelib.errors import ApiError
from chalicelib.observability import logger
from chalicelib.schemas.reports import Report, ReportStatus
from chalicelib.schemas.simulation import SimulationRequest, SimulationResult
from chalicelib.services.reporting import simulation
from chalicelib.services.reporting.reports import service as reports
from chalicelib.services.tenancy import tenancy
from chalicelib.settings import settings
from chalicelib.storage import audit, queues, transactions
from chalicelib.storage import reports as report_store
from chalicelib.storage.documents.report import ReportDoc
from chalicelib.storage.transactions import Tx

REPORT_TYPE = "simulation"


def simulate(tenant_id: str, program_id: str, body: SimulationRequest, actor: str,
             role: Role = Role.TENANT_ADMIN) -> SimulationResult | tuple[int, Report]:
    """The replay's answer (nothing written), or 202 with a report for a period too large to answer at once."""
    answer = simulation.answer_at_once(tenant_id, program_id, body)
    if answer is not None:
        return answer
    return 202, _request_report(tenant_id, program_id, body, actor, role)


def simulate_for_agency(agency_id: str, tenant_id: str, program_id: str, body: SimulationRequest,
                        actor: str) -> SimulationResult | tuple[int, Report]:
    tenant = tenancy.require_tenant_of_agency(agency_id, tenant_id)
    return simulate(tenant.tenant_id, program_id, body, actor, Role.AGENCY)


def _request_report(tenant_id: str, program_id: str, body: SimulationRequest, actor: str, role: Role) -> Report:
    """Record a `simulation` report with its proposal, and queue it (as reports.service.create does)."""
    at = clock.now()
    report_id = reports.new_report_id()
    doc = ReportDoc.load({
        "report_id": report_id, "type": REPORT_TYPE, "program_id": program_id, "from": body.from_.isoformat(),
        "to": body.to.isoformat(), "format": "csv", "delimiter": ",", "status": ReportStatus.QUEUED.value,
        "created_at": at.isoformat(), "proposed": body.proposed.model_dump(mode="json"),
    })

    def build(tx: Tx) -> None:
        report_store.add(tx, tenant_id, report_id, doc, at)
        audit.add(tx, audit.entry(tenant_id, action="report.requested", actor=actor, at=at,
                                  target=f"report:{report_id}",
                                  detail={"type": REPORT_TYPE, "program_id": program_id, "format": "csv",
                                          "from": doc.from_, "to": doc.to}))

    transactions.write(build)
    try:
        queues.send(settings.reports_queue, reports.job_message(tenant_id, report_id))
    except Exception:
        logger.exception("report not queued", extra={"tenant_id": tenant_id, "report_id": report_id})
        loaded = report_store.get(tenant_id, report_id)
        if loaded is not None:
            failed = ReportDoc.load({
                **loaded.doc.dump(), "status": ReportStatus.FAILED.value, "completed_at": clock.now().isoformat(),
                "failure": {"code": "not_queued", "message": "The report could not be queued."}})
            report_store.save(tenant_id, report_id, failed, loaded.version, clock.now(), at)
        raise ApiError(503, "queue_unavailable", "The simulation could not be queued; try again.",
                       headers={"Retry-After": "5"}) from None
    return reports.get(tenant_id, report_id, role)
