"""A simulation request: the replay's answer at once, or a `simulation` report for a larger period.

Kept apart from simulation.py (the replay) because the report's rows are built
from the replay: reports.service -> reports.registry -> reports.simulation ->
simulation. Recording the report needs reports.service, so it lives here,
above both, and no module imports back.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date

from chalicelib import clock
from chalicelib.domain.roles import Role
from chalicelib.errors import ApiError
from chalicelib.observability import logger
from chalicelib.schemas.reports import Report, ReportStatus
from chalicelib.schemas.simulation import (
    SimulatedCategory,
    SimulatedDay,
    SimulatedFigures,
    SimulatedTier,
    SimulationRequest,
    SimulationResult,
)
from chalicelib.schemas.tenancy import ProgramBody
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


# --- a finished simulation report, read back (the console's simulator shows it like a synchronous answer) --------

@dataclass(frozen=True)
class ReportedReplay:
    """The figures of a `ready` simulation report, as its CSV file has them (see reports/simulation.py)."""

    report_id: str
    program_id: str
    proposal: ProgramBody
    totals: SimulatedFigures
    customers_affected: int
    rate_bps: int
    basis: str
    by_day: list[SimulatedDay] = field(default_factory=list)
    by_category: list[SimulatedCategory] = field(default_factory=list)
    tiers: list[SimulatedTier] = field(default_factory=list)


def proposal_of_report(tenant_id: str, report_id: str) -> tuple[str, ProgramBody] | None:
    """(program id, proposal) of one of the tenant's simulation reports; None for another report or none."""
    loaded = report_store.get(tenant_id, report_id)
    if loaded is None or loaded.doc.type != REPORT_TYPE or not loaded.doc.proposed:
        return None
    return str(loaded.doc.program_id), ProgramBody.model_validate(loaded.doc.proposed, strict=False)


def reported_replay(tenant_id: str, report_id: str) -> ReportedReplay | None:
    """A ready simulation report's figures read from its file; None while it is not ready (or not a simulation)."""
    found = proposal_of_report(tenant_id, report_id)
    loaded = report_store.get(tenant_id, report_id)
    if found is None or loaded is None or loaded.doc.status != ReportStatus.READY.value:
        return None
    text = report_store.read_file(tenant_id, report_id, "csv").decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text), delimiter=str(loaded.doc.delimiter or ",")))
    figures = ("receipts", "points_current", "points_proposed", "extra_points", "expected_redemption_cost",
               "liability_change")

    def numbers(row: dict[str, str]) -> dict[str, int]:
        return {f: int(row[f]) for f in figures}

    total = next((r for r in rows if r["section"] == "total"), None)
    if total is None:
        return None
    return ReportedReplay(
        report_id=report_id, program_id=found[0], proposal=found[1], totals=SimulatedFigures(**numbers(total)),
        customers_affected=int(total["customers_affected"] or 0), rate_bps=int(total["redemption_rate_bps"] or 0),
        basis=total["redemption_rate_basis"],
        by_day=[SimulatedDay(day=date.fromisoformat(r["key"]), **numbers(r)) for r in rows if r["section"] == "day"],
        by_category=[SimulatedCategory(category=r["key"], **numbers(r)) for r in rows if r["section"] == "category"],
        tiers=[SimulatedTier(tier=r["key"], cards_current=int(r["cards_current"]),
                             cards_proposed=int(r["cards_proposed"])) for r in rows if r["section"] == "tier"])
