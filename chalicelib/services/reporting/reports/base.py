"""What a report type is: its columns, its rows for a period, who may ask for it, and its formats."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from chalicelib.domain.roles import Role
from chalicelib.schemas.tenancy import Program
from chalicelib.services.reporting.reports.output import Charts

ADMIN_AND_AGENCY: frozenset[Role] = frozenset({Role.TENANT_ADMIN, Role.AGENCY})
ADMIN_ONLY: frozenset[Role] = frozenset({Role.TENANT_ADMIN})
"""For reports with personal data: the agency runs the program but is not the data controller's staff."""

Subject = Literal["program", "campaign", "survey", "coalition"]
"""What a report is about; the request names it in `<subject>_id` (program_id, campaign_id, ...)."""


class ReportError(Exception):
    """An expected reason a report cannot be built; its code and message are shown to the client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ReportContext:
    """One report to build: the tenant (its own scope), its subject, the days [start, end) in UTC."""

    tenant_id: str
    report_id: str
    start: date
    end: date
    subject_id: str | None = None
    """The program, campaign, survey or coalition id; None for an optional subject not given (all campaigns)."""
    subject_program: Program | None = None
    """The program, loaded for `program` reports only."""
    role: Role = Role.TENANT_ADMIN
    """Who asked: an agency may get a fuller view (see ReportType.agency_view)."""
    notes: dict[str, Any] = field(default_factory=dict)
    """What `rows` learnt that `charts` needs (e.g. how many rows a chart spans); filled while rows are written."""

    @property
    def program(self) -> Program:
        """The report's program; only `program` reports have one."""
        if self.subject_program is None:
            raise ReportError("no_program", "This report type is not about a program.")
        return self.subject_program


@dataclass(frozen=True)
class ReportType:
    """A report type. `rows` yields the data rows lazily (the writers stream them), matching `columns`."""

    name: str
    description: str
    columns: Sequence[str]
    rows: Callable[[ReportContext], Iterable[Sequence[Any]]]
    roles: frozenset[Role] = ADMIN_AND_AGENCY
    formats: frozenset[str] = field(default_factory=lambda: frozenset({"csv", "xlsx"}))
    charts: Charts | None = None
    """XLSX only: native charts over the data sheet (e.g. a line chart of members over time)."""
    subject: Subject = "program"
    subject_optional: bool = False
    """The subject id may be left out (e.g. campaign results of every campaign started in the period)."""
    max_days: int | None = None
    """A shorter period limit than the request's own (e.g. the settlement routes' 366 days)."""
    agency_view: bool = False
    """Requested by the agency, the file holds what only the agency may see (every partner's settlement line):
    only agency keys get its link."""
